//! The server binary on a free loopback port, serving the real SmolLM2 model, driven over HTTP:
//! raw requests (the product page's curl shape, errors, management, concurrency, disconnects,
//! shutdown), the official `openai` Python and npm packages, and the trial page in headless
//! Chromium. `make test` in this directory installs the Python and npm packages first.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use modelservice_test_models::smollm2;
use serde_json::{json, Value};

const USER_KEY: &str = "sk-test-user-3f9a1c";
const ADMIN_KEY: &str = "sk-test-admin-81d2e7";
const MODEL: &str = "u-8105f7322477/test";
/// SmolLM2's `<|endoftext|>` and `<|im_end|>`: banned with `logit_bias` where a test needs a
/// generation that does not end on its own.
const NO_EOS: &str = r#"{"0": -100, "2": -100}"#;

fn server_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("modelservice-server");
    std::fs::create_dir_all(&dir).expect("artifact directory");
    dir
}

/// A running server process. Dropping it sends SIGTERM and waits for the exit.
struct Server {
    child: Option<Child>,
    base: String,
    log: PathBuf,
}

/// Service settings small enough for quick tests. Each server uses one thread, as the tests
/// run side by side on small machines.
#[derive(Clone, Copy)]
struct Settings {
    slots: usize,
    queue_size: usize,
    admin: bool,
    max_body_bytes: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            slots: 4,
            queue_size: 64,
            admin: false,
            max_body_bytes: 64 * 1024,
        }
    }
}

impl Server {
    fn start(label: &str, settings: Settings) -> Server {
        let model = smollm2();
        let dir = artifacts();
        let admin = if settings.admin {
            format!("admin_keys = [\"{ADMIN_KEY}\"]\n")
        } else {
            String::new()
        };
        let config = format!(
            "listen = \"127.0.0.1:0\"\napi_keys = [\"{USER_KEY}\"]\n{admin}max_body_bytes = {}\n\n\
             [[services]]\nname = \"test\"\naccess_name = \"{MODEL}\"\nmodel = {:?}\n\
             slots = {}\ncontext_length = 1024\nqueue_size = {}\nthreads = 1\n",
            settings.max_body_bytes,
            model.display().to_string(),
            settings.slots,
            settings.queue_size,
        );
        let config_path = dir.join(format!("{label}.toml"));
        std::fs::write(&config_path, config).expect("write config");
        let log = dir.join(format!("{label}.log"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_modelservice-server"))
            .arg("--config")
            .arg(&config_path)
            .env_remove("MODELSERVICE_API_KEYS")
            .env_remove("MODELSERVICE_ADMIN_KEYS")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start the server binary");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read stdout");
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                panic!(
                    "server did not start: {line:?}; log: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            })
            .to_owned();
        Server {
            child: Some(child),
            base,
            log,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits for the process to exit and returns whether it exited successfully.
    fn wait_exit(&mut self, timeout: Duration) -> bool {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("server did not exit within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .expect("client")
}

async fn post_raw(server: &Server, path: &str, key: Option<&str>, body: String) -> (u16, Value) {
    let mut request = http()
        .post(server.url(path))
        .header("Content-Type", "application/json")
        .body(body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")),
    )
}

/// Posts a streamed chat completion with the user key; the response, once it is a 200.
async fn open_stream(server: &Server, body: String) -> reqwest::Response {
    let response = http()
        .post(server.url("/v1/chat/completions"))
        .bearer_auth(USER_KEY)
        .body(body)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    response
}

async fn call(
    server: &Server,
    method: &str,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = http().request(method, server.url(path)).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")),
    )
}

fn chat_body(model: &str, max_tokens: u32) -> Value {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": "Say this is a test!"}],
        "temperature": 0,
        "max_tokens": max_tokens,
    })
}

/// Asserts an OpenAI error envelope with this status, type, code and param.
fn assert_error(
    got: &(u16, Value),
    status: u16,
    kind: &str,
    code: Option<&str>,
    param: Option<&str>,
) {
    let (s, body) = got;
    assert_eq!(*s, status, "status of {body}");
    let error = &body["error"];
    assert_eq!(error["type"], kind, "type of {body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(error["code"].as_str(), code, "code of {body}");
    assert_eq!(error["param"].as_str(), param, "param of {body}");
}

/// A small completion succeeds: the server is still serving.
async fn assert_serving(server: &Server) {
    let got = call(
        server,
        "POST",
        "/v1/chat/completions",
        USER_KEY,
        Some(chat_body(MODEL, 4)),
    )
    .await;
    assert_eq!(got.0, 200, "{}", got.1);
    assert_eq!(got.1["object"], "chat.completion");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn product_page_curl_request_gets_the_documented_shape() {
    let server = Server::start("curl", Settings::default());
    // The product page's request, byte for byte, but for a `max_tokens` bound to keep it quick.
    let body = r#"{
    "model": "u-8105f7322477/test",
    "messages": [{"role": "user", "content": "Say this is a test!"}],
    "temperature": 0.7,
    "max_tokens": 48
  }"#;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let response = http()
        .post(server.url("/v1/chat/completions"))
        .header("Content-Type", "application/json")
        .header("Authorization", format!("Bearer {USER_KEY}"))
        .body(body)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let v: Value = response.json().await.expect("JSON");
    assert!(v["id"].as_str().is_some_and(|id| !id.is_empty()), "{v}");
    assert_eq!(v["object"], "chat.completion");
    assert!(v["created"].as_u64().unwrap() >= before, "{v}");
    assert_eq!(v["model"], MODEL);
    let choice = &v["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    assert!(
        choice["message"]["content"]
            .as_str()
            .is_some_and(|c| !c.trim().is_empty()),
        "{v}"
    );
    let usage = &v["usage"];
    let (p, c, t) = (
        usage["prompt_tokens"].as_u64().unwrap(),
        usage["completion_tokens"].as_u64().unwrap(),
        usage["total_tokens"].as_u64().unwrap(),
    );
    assert!(p > 0 && (1..=48).contains(&c) && t == p + c, "{usage}");

    // The same request streamed: `data: {chunk}` events, then `data: [DONE]`.
    let mut streamed: Value = serde_json::from_str(body).unwrap();
    streamed["stream"] = json!(true);
    streamed["temperature"] = json!(0);
    let response = http()
        .post(server.url("/v1/chat/completions"))
        .bearer_auth(USER_KEY)
        .json(&streamed)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let text = response.text().await.expect("body");
    let data: Vec<&str> = text
        .split("\n\n")
        .filter_map(|event| event.trim().strip_prefix("data: "))
        .collect();
    assert_eq!(data.last(), Some(&"[DONE]"), "{text}");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).expect("chunk JSON"))
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk" && c["id"] == chunks[0]["id"]));
    let finish = chunks.last().unwrap()["choices"][0]["finish_reason"].clone();
    assert!(finish == "stop" || finish == "length", "{finish}");
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(!content.trim().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_openai_errors_and_leave_the_server_serving() {
    let server = Server::start("errors", Settings::default());
    let good = chat_body(MODEL, 4).to_string();

    // Health is public; everything under /v1 needs a key.
    let health = http().get(server.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    let missing = post_raw(&server, "/v1/chat/completions", None, good.clone()).await;
    assert_error(
        &missing,
        401,
        "authentication_error",
        Some("invalid_api_key"),
        None,
    );
    assert_serving(&server).await;
    let wrong = post_raw(
        &server,
        "/v1/chat/completions",
        Some("sk-wrong"),
        good.clone(),
    )
    .await;
    assert_error(
        &wrong,
        401,
        "authentication_error",
        Some("invalid_api_key"),
        None,
    );
    // A key is not leaked back in the message.
    assert!(!wrong.1.to_string().contains("sk-wrong"));
    let prefix = post_raw(
        &server,
        "/v1/chat/completions",
        Some(&USER_KEY[..8]),
        good.clone(),
    )
    .await;
    assert_eq!(prefix.0, 401);
    let models_without_key = http().get(server.url("/v1/models")).send().await.unwrap();
    assert_eq!(models_without_key.status(), 401);
    assert_eq!(models_without_key.headers()["www-authenticate"], "Bearer");
    assert_serving(&server).await;

    let unknown = call(
        &server,
        "POST",
        "/v1/chat/completions",
        USER_KEY,
        Some(chat_body("u-nobody/none", 4)),
    )
    .await;
    assert_error(
        &unknown,
        404,
        "invalid_request_error",
        Some("model_not_found"),
        Some("model"),
    );
    let unknown_model = call(&server, "GET", "/v1/models/u-nobody/none", USER_KEY, None).await;
    assert_error(
        &unknown_model,
        404,
        "invalid_request_error",
        Some("model_not_found"),
        Some("model"),
    );
    assert_serving(&server).await;

    let malformed = post_raw(
        &server,
        "/v1/chat/completions",
        Some(USER_KEY),
        "{\"model\": ".into(),
    )
    .await;
    assert_error(
        &malformed,
        400,
        "invalid_request_error",
        Some("invalid_value"),
        None,
    );
    let not_object = post_raw(
        &server,
        "/v1/chat/completions",
        Some(USER_KEY),
        "{bad".into(),
    )
    .await;
    assert_error(
        &not_object,
        400,
        "invalid_request_error",
        Some("invalid_value"),
        None,
    );
    assert_serving(&server).await;

    let mut wrong_type = chat_body(MODEL, 4);
    wrong_type["temperature"] = json!("hot");
    let got = call(
        &server,
        "POST",
        "/v1/chat/completions",
        USER_KEY,
        Some(wrong_type),
    )
    .await;
    assert_error(
        &got,
        400,
        "invalid_request_error",
        Some("invalid_value"),
        Some("temperature"),
    );
    let mut out_of_range = chat_body(MODEL, 4);
    out_of_range["temperature"] = json!(3.5);
    let got = call(
        &server,
        "POST",
        "/v1/chat/completions",
        USER_KEY,
        Some(out_of_range),
    )
    .await;
    assert_error(
        &got,
        400,
        "invalid_request_error",
        Some("invalid_value"),
        Some("temperature"),
    );
    let mut bad_role = chat_body(MODEL, 4);
    bad_role["messages"][0]["role"] = json!("wizard");
    let got = call(
        &server,
        "POST",
        "/v1/chat/completions",
        USER_KEY,
        Some(bad_role),
    )
    .await;
    assert_error(
        &got,
        400,
        "invalid_request_error",
        Some("invalid_value"),
        Some("messages[0].role"),
    );
    let mut no_messages = chat_body(MODEL, 4);
    no_messages["messages"] = json!([]);
    let got = call(
        &server,
        "POST",
        "/v1/chat/completions",
        USER_KEY,
        Some(no_messages),
    )
    .await;
    assert_error(
        &got,
        400,
        "invalid_request_error",
        Some("invalid_value"),
        Some("messages"),
    );
    let mut too_long = chat_body(MODEL, 4);
    too_long["max_tokens"] = json!(5000);
    let got = call(
        &server,
        "POST",
        "/v1/chat/completions",
        USER_KEY,
        Some(too_long),
    )
    .await;
    assert_error(
        &got,
        400,
        "invalid_request_error",
        Some("context_length_exceeded"),
        Some("max_tokens"),
    );
    assert_serving(&server).await;

    // Over the 64 KiB limit, declared (Content-Length) and streamed (chunked, no length).
    let mut huge = chat_body(MODEL, 4);
    huge["messages"][0]["content"] = json!("a".repeat(2 << 20));
    let got = call(
        &server,
        "POST",
        "/v1/chat/completions",
        USER_KEY,
        Some(huge.clone()),
    )
    .await;
    assert_error(
        &got,
        413,
        "invalid_request_error",
        Some("payload_too_large"),
        None,
    );
    let bytes = huge.to_string().into_bytes();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(16 * 1024).map(|c| Ok(c.to_vec())).collect();
    let response = http()
        .post(server.url("/v1/chat/completions"))
        .bearer_auth(USER_KEY)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 413);
    let v: Value = response.json().await.unwrap();
    assert_eq!(v["error"]["code"], "payload_too_large");
    assert_serving(&server).await;

    let route = call(&server, "GET", "/v1/nowhere", USER_KEY, None).await;
    assert_error(
        &route,
        404,
        "invalid_request_error",
        Some("invalid_value"),
        None,
    );
    let method = call(&server, "DELETE", "/v1/models", USER_KEY, None).await;
    assert_error(
        &method,
        405,
        "invalid_request_error",
        Some("invalid_value"),
        None,
    );
    assert_serving(&server).await;

    // No key ever reaches the log.
    let log = std::fs::read_to_string(&server.log).unwrap_or_default();
    assert!(
        !log.contains(USER_KEY) && !log.contains("sk-wrong"),
        "a key was logged"
    );
}

/// Runs a test client script and returns the JSON object it printed.
fn run_client(program: &str, script: &str, server: &Server) -> Value {
    let out = Command::new(program)
        .arg(server_dir().join("tests").join(script))
        .current_dir(server_dir())
        .env("MODELSERVICE_BASE_URL", server.url("/v1"))
        .env("MODELSERVICE_API_KEY", USER_KEY)
        .env("MODELSERVICE_MODEL", MODEL)
        .output()
        .expect("client runs");
    assert!(
        out.status.success(),
        "{script} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    serde_json::from_str(stdout.trim().lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{script} printed no JSON ({e}): {stdout}"))
}

/// What the `openai` Python and Node scripts must have seen.
fn check_sdk_run(v: &Value) {
    let content = v["content"].as_str().expect("content");
    assert!(!content.trim().is_empty(), "{v}");
    let pieces: Vec<&str> = v["pieces"]
        .as_array()
        .expect("pieces")
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(pieces.len() >= 2, "the stream came in one piece: {v}");
    // Greedy decoding: the streamed answer is the whole one, piece by piece.
    assert_eq!(pieces.concat(), content, "{v}");
    let usage = &v["usage"];
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );
    assert_eq!(v["models"], json!([MODEL]));
    assert_eq!(v["retrieved"], MODEL);
    assert_eq!(
        v["errors"]["auth"],
        json!([401, "authentication_error"]),
        "{v}"
    );
    assert_eq!(
        v["errors"]["not_found"],
        json!([404, "model_not_found"]),
        "{v}"
    );
    assert_eq!(
        v["errors"]["bad_request"],
        json!([400, "temperature"]),
        "{v}"
    );
}

#[test]
fn official_openai_python_package() {
    let server = Server::start("python", Settings::default());
    let python = server_dir().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make -C examples/server deps` (or `make test`) first",
        python.display()
    );
    let v = run_client(python.to_str().unwrap(), "openai_client.py", &server);
    check_sdk_run(&v);
}

#[test]
fn official_openai_npm_package() {
    let server = Server::start("node", Settings::default());
    assert!(
        server_dir().join("node_modules/openai").exists(),
        "node_modules/openai is missing: run `make -C examples/server deps` (or `make test`) first"
    );
    let v = run_client("node", "openai_client.mjs", &server);
    check_sdk_run(&v);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_scale_and_delete_over_http() {
    let server = Server::start(
        "manage",
        Settings {
            admin: true,
            ..Settings::default()
        },
    );
    let model = smollm2();
    let second = "u-8105f7322477/second";

    // Management needs the admin key; the user key may chat but not manage.
    let got = call(&server, "GET", "/v1/services", USER_KEY, None).await;
    assert_error(
        &got,
        401,
        "authentication_error",
        Some("invalid_api_key"),
        None,
    );
    let spec = json!({"name": "second", "access_name": second, "model": model, "slots": 2, "context_length": 512});
    let got = call(
        &server,
        "POST",
        "/v1/services",
        USER_KEY,
        Some(spec.clone()),
    )
    .await;
    assert_eq!(got.0, 401);

    let (status, info) = call(
        &server,
        "POST",
        "/v1/services",
        ADMIN_KEY,
        Some(spec.clone()),
    )
    .await;
    assert_eq!(status, 201, "{info}");
    assert_eq!(info["access_name"], second);
    assert_eq!(info["name"], "second");
    assert_eq!(info["status"], "running");
    assert_eq!(info["instances"], 1);
    assert_eq!(info["slots_per_instance"], 2);
    assert_eq!(info["base_model"]["architecture"], "llama");

    let again = call(&server, "POST", "/v1/services", ADMIN_KEY, Some(spec)).await;
    assert_error(
        &again,
        409,
        "invalid_request_error",
        Some("service_exists"),
        Some("access_name"),
    );
    let bad_spec = call(
        &server,
        "POST",
        "/v1/services",
        ADMIN_KEY,
        Some(json!({"name": "x", "access_name": "u/x", "model": 7})),
    )
    .await;
    assert_error(
        &bad_spec,
        400,
        "invalid_request_error",
        Some("invalid_value"),
        Some("model"),
    );
    let no_file = json!({"name": "x", "access_name": "u/x", "model": "/nonexistent/model.gguf"});
    let got = call(&server, "POST", "/v1/services", ADMIN_KEY, Some(no_file)).await;
    assert_error(
        &got,
        400,
        "invalid_request_error",
        Some("model_load_failed"),
        Some("model"),
    );

    let (status, list) = call(&server, "GET", "/v1/services", ADMIN_KEY, None).await;
    assert_eq!(status, 200);
    assert_eq!(list["object"], "list");
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["access_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [second, MODEL]);
    let (_, models) = call(&server, "GET", "/v1/models", USER_KEY, None).await;
    assert_eq!(models["data"].as_array().unwrap().len(), 2);
    let (status, one) = call(
        &server,
        "GET",
        &format!("/v1/services/{second}"),
        ADMIN_KEY,
        None,
    )
    .await;
    assert_eq!((status, &one["id"]), (200, &info["id"]));

    // The new service answers with the user key.
    let got = call(
        &server,
        "POST",
        "/v1/chat/completions",
        USER_KEY,
        Some(chat_body(second, 4)),
    )
    .await;
    assert_eq!(got.0, 200, "{}", got.1);
    assert_eq!(got.1["model"], second);

    // Scale: POST .../scale and PATCH.
    let (status, scaled) = call(
        &server,
        "POST",
        &format!("/v1/services/{second}/scale"),
        ADMIN_KEY,
        Some(json!({"instances": 2})),
    )
    .await;
    assert_eq!(status, 200, "{scaled}");
    assert_eq!(scaled["instances"], 2);
    assert_eq!(scaled["id"], info["id"]);
    let got = call(
        &server,
        "POST",
        "/v1/chat/completions",
        USER_KEY,
        Some(chat_body(second, 4)),
    )
    .await;
    assert_eq!(got.0, 200);
    let (status, scaled) = call(
        &server,
        "PATCH",
        &format!("/v1/services/{second}"),
        ADMIN_KEY,
        Some(json!({"instances": 1})),
    )
    .await;
    assert_eq!((status, &scaled["instances"]), (200, &json!(1)));
    let got = call(
        &server,
        "PATCH",
        &format!("/v1/services/{second}"),
        ADMIN_KEY,
        Some(json!({"instances": "many"})),
    )
    .await;
    assert_error(
        &got,
        400,
        "invalid_request_error",
        Some("invalid_value"),
        Some("instances"),
    );
    let got = call(
        &server,
        "PATCH",
        &format!("/v1/services/{second}"),
        ADMIN_KEY,
        Some(json!({"instances": 0})),
    )
    .await;
    assert_error(
        &got,
        400,
        "invalid_request_error",
        Some("invalid_value"),
        Some("instances"),
    );
    let got = call(
        &server,
        "POST",
        "/v1/services/u-nobody/none/scale",
        ADMIN_KEY,
        Some(json!({"instances": 2})),
    )
    .await;
    assert_error(
        &got,
        404,
        "invalid_request_error",
        Some("model_not_found"),
        Some("model"),
    );

    // Delete needs the display name as confirmation.
    let got = call(
        &server,
        "DELETE",
        &format!("/v1/services/{second}"),
        ADMIN_KEY,
        None,
    )
    .await;
    assert_error(
        &got,
        400,
        "invalid_request_error",
        Some("invalid_value"),
        Some("confirm"),
    );
    let got = call(
        &server,
        "DELETE",
        &format!("/v1/services/{second}?confirm=test"),
        ADMIN_KEY,
        None,
    )
    .await;
    assert_error(
        &got,
        400,
        "invalid_request_error",
        Some("invalid_value"),
        Some("confirm"),
    );
    let (status, deleted) = call(
        &server,
        "DELETE",
        &format!("/v1/services/{second}?confirm=second"),
        ADMIN_KEY,
        None,
    )
    .await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["id"], info["id"]);
    assert_eq!(deleted["usage"]["requests"], 2);
    let got = call(
        &server,
        "GET",
        &format!("/v1/services/{second}"),
        ADMIN_KEY,
        None,
    )
    .await;
    assert_error(
        &got,
        404,
        "invalid_request_error",
        Some("model_not_found"),
        Some("model"),
    );
    let got = call(
        &server,
        "POST",
        "/v1/chat/completions",
        USER_KEY,
        Some(chat_body(second, 4)),
    )
    .await;
    assert_error(
        &got,
        404,
        "invalid_request_error",
        Some("model_not_found"),
        Some("model"),
    );

    // Confirmation in a JSON body works too.
    let (status, _) = call(
        &server,
        "DELETE",
        &format!("/v1/services/{MODEL}"),
        ADMIN_KEY,
        Some(json!({"confirm": "test"})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, models) = call(&server, "GET", "/v1/models", USER_KEY, None).await;
    assert_eq!(models["data"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_clients_sixty_four_requests_each_answered_or_refused() {
    // 2 slots and a queue of 2: at most 4 requests are taken at once, the rest must get 429.
    let server = Arc::new(Server::start(
        "concurrency",
        Settings {
            slots: 2,
            queue_size: 2,
            ..Settings::default()
        },
    ));
    let client = http();
    let barrier = Arc::new(tokio::sync::Barrier::new(16));
    let mut tasks = Vec::new();
    for c in 0..16 {
        let (server, client, barrier) = (server.clone(), client.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut results = Vec::new();
            for r in 0..4 {
                let body = json!({
                    "model": MODEL,
                    "messages": [{"role": "user", "content": format!("Client {c}, request {r}: name a colour.")}],
                    "temperature": 0,
                    "max_tokens": 12,
                });
                let response = client
                    .post(server.url("/v1/chat/completions"))
                    .bearer_auth(USER_KEY)
                    .json(&body)
                    .send()
                    .await
                    .expect("every request gets an answer");
                let status = response.status().as_u16();
                let v: Value = response.json().await.expect("JSON body");
                results.push((status, v));
            }
            results
        }));
    }
    let mut ok = 0;
    let mut refused = 0;
    for task in tasks {
        for (status, v) in task.await.expect("client task") {
            match status {
                200 => {
                    assert_eq!(v["object"], "chat.completion");
                    assert!(v["usage"]["completion_tokens"].as_u64().unwrap() >= 1);
                    ok += 1;
                }
                429 => {
                    assert_error(
                        &(status, v),
                        429,
                        "rate_limit_error",
                        Some("queue_full"),
                        Some("model"),
                    );
                    refused += 1;
                }
                other => panic!("unexpected status {other}: {v}"),
            }
        }
    }
    eprintln!("64 requests from 16 clients: {ok} answered, {refused} refused with 429");
    assert_eq!(ok + refused, 64, "a request was lost");
    assert!(ok >= 4, "too few answered: {ok}");
    assert!(refused >= 1, "a queue of 2 with 16 clients never filled");
    // The server counted exactly the answered ones, and still serves.
    let (_, info) = call(
        &server,
        "GET",
        &format!("/v1/services/{MODEL}"),
        USER_KEY,
        None,
    )
    .await;
    assert_eq!(
        info["usage"]["requests"].as_u64().unwrap(),
        ok as u64,
        "{info}"
    );
    assert_serving(&server).await;
}

/// Reads SSE `data:` payloads from a streaming response until `want` have arrived.
async fn read_events<B: AsRef<[u8]>>(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<B>> + Unpin),
    buffer: &mut String,
    want: usize,
) -> Vec<String> {
    let mut events = Vec::new();
    while events.len() < want {
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if let Some(data) = event.trim().strip_prefix("data: ") {
                events.push(data.to_owned());
            }
        }
        if events.len() >= want {
            break;
        }
        match stream.next().await {
            Some(bytes) => {
                buffer.push_str(std::str::from_utf8(bytes.expect("body").as_ref()).expect("utf-8"))
            }
            None => break,
        }
    }
    events
}

async fn tokens_decoded(server: &Server) -> u64 {
    let (_, info) = call(
        server,
        "GET",
        &format!("/v1/services/{MODEL}"),
        USER_KEY,
        None,
    )
    .await;
    info["stats"]["tokens_decoded"].as_u64().expect("stats")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_disconnect_stops_the_generation() {
    let server = Server::start("disconnect", Settings::default());
    let body = format!(
        r#"{{"model": "{MODEL}", "messages": [{{"role": "user", "content": "Tell a very long story."}}],
            "max_tokens": 900, "stream": true, "logit_bias": {NO_EOS}}}"#
    );
    let mut stream = open_stream(&server, body).await.bytes_stream();
    let mut buffer = String::new();
    let events = read_events(&mut stream, &mut buffer, 4).await;
    assert_eq!(events.len(), 4);
    // Hang up mid-stream.
    drop(stream);
    let mut last = tokens_decoded(&server).await;
    let mut stable_since = Instant::now();
    // The count must stop growing long before the 900 tokens would be reached.
    while stable_since.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = tokens_decoded(&server).await;
        if now != last {
            last = now;
            stable_since = Instant::now();
        }
    }
    assert!(
        last < 300,
        "generation went on after the client left: {last} tokens decoded"
    );
    assert_serving(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_requests_in_flight_then_exits() {
    let mut server = Server::start("shutdown", Settings::default());
    let body = format!(
        r#"{{"model": "{MODEL}", "messages": [{{"role": "user", "content": "Count to fifty."}}],
            "max_tokens": 40, "stream": true, "logit_bias": {NO_EOS}}}"#
    );
    let mut stream = open_stream(&server, body).await.bytes_stream();
    let mut buffer = String::new();
    let first = read_events(&mut stream, &mut buffer, 2).await;
    assert_eq!(first.len(), 2);
    server.signal("TERM");
    // The request in flight still runs to its end.
    let rest = read_events(&mut stream, &mut buffer, usize::MAX).await;
    assert_eq!(rest.last().map(String::as_str), Some("[DONE]"), "{rest:?}");
    let finish: Value = serde_json::from_str(&rest[rest.len() - 2]).unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "length");
    let pieces = first.len() - 1 + rest.len() - 2;
    assert!(pieces >= 30, "only {pieces} content chunks for 40 tokens");
    let base = server.base.clone();
    assert!(
        server.wait_exit(Duration::from_secs(30)),
        "exit status was not success"
    );
    assert!(
        http().get(format!("{base}/health")).send().await.is_err(),
        "still accepting after exit"
    );
}

#[test]
fn trial_page_streams_an_answer_in_headless_chromium() {
    let server = Server::start("playground", Settings::default());
    assert!(
        server_dir().join("node_modules/playwright-core").exists(),
        "node_modules/playwright-core is missing: run `make -C examples/server deps` (or `make test`) first"
    );
    let screenshot = artifacts().join("playground.png");
    let _ = std::fs::remove_file(&screenshot);
    let out = Command::new("node")
        .arg(server_dir().join("tests/playground.mjs"))
        .current_dir(server_dir())
        .env("MODELSERVICE_URL", server.url("/"))
        .env("MODELSERVICE_API_KEY", USER_KEY)
        .env("MODELSERVICE_MODEL", MODEL)
        .env("MODELSERVICE_SCREENSHOT", &screenshot)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "playground.mjs failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["services"], json!([MODEL]));
    assert_eq!(v["status"], "done", "{v}");
    assert_eq!(v["consoleErrors"], json!([]));
    let answer = v["answer"].as_str().unwrap();
    assert!(!answer.trim().is_empty(), "{v}");
    // Streamed: the page showed the answer growing, prefix by prefix, before the whole of it.
    let seen: Vec<&str> = v["seen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let partial: Vec<&&str> = seen
        .iter()
        .filter(|s| !s.is_empty() && **s != answer)
        .collect();
    assert!(
        partial.len() >= 2,
        "the answer appeared all at once: {seen:?}"
    );
    assert!(partial.iter().all(|p| answer.starts_with(**p)), "{seen:?}");
    let png = std::fs::read(&screenshot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "screenshot is not a real PNG"
    );
    eprintln!("trial page screenshot: {}", screenshot.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_shortcut_with_keys_from_the_environment() {
    let model = smollm2();
    let binary = env!("CARGO_BIN_EXE_modelservice-server");
    // No key anywhere: the server refuses to start, and says how to give one.
    let out = Command::new(binary)
        .args(["--listen", "127.0.0.1:0", "--model"])
        .arg(&model)
        .env_remove("MODELSERVICE_API_KEYS")
        .env_remove("MODELSERVICE_ADMIN_KEYS")
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("MODELSERVICE_API_KEYS"));

    let log = artifacts().join("shortcut.log");
    let mut child = Command::new(binary)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--access-name",
            "u-1/short",
            "--name",
            "short",
        ])
        .args([
            "--slots",
            "1",
            "--context-length",
            "512",
            "--threads",
            "1",
            "--model",
        ])
        .arg(&model)
        .env("MODELSERVICE_API_KEYS", "env-key-1, env-key-2")
        .env_remove("MODELSERVICE_ADMIN_KEYS")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let server = Server {
        child: Some(child),
        base: line
            .trim()
            .strip_prefix("listening on ")
            .expect("listening")
            .to_owned(),
        log,
    };
    let (status, models) = call(&server, "GET", "/v1/models", "env-key-2", None).await;
    assert_eq!(status, 200);
    assert_eq!(models["data"][0]["id"], "u-1/short");
    let (status, info) = call(&server, "GET", "/v1/services/u-1/short", "env-key-1", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            &info["name"],
            &info["slots_per_instance"],
            &info["context_length"]
        ),
        (&json!("short"), &json!(1), &json!(512))
    );
    let got = call(
        &server,
        "POST",
        "/v1/chat/completions",
        "env-key-1",
        Some(chat_body("u-1/short", 4)),
    )
    .await;
    assert_eq!(got.0, 200, "{}", got.1);
}
