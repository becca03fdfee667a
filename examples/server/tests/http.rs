//! The server binary on a free loopback port, serving the real SmolLM2 model, driven over HTTP:
//! raw requests (the product page's curl shape, errors, management, the repository's corpus of
//! bad requests and every route of the route table, concurrency, disconnects, shutdown), the official `openai` Python and npm packages, and the trial page in headless
//! Chromium. `make test` in this directory installs the Python and npm packages first.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use modelservice_test_models::{minilm, smollm2};
use serde_json::{json, Value};

// The server's own route table, so the tests send each operation where the server routes it.
#[allow(dead_code)]
#[path = "../src/route_table.rs"]
mod route_table;
use route_table::{Route, ROUTES};

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
    /// Also serve the MiniLM embedding model as `EMBEDDER`.
    embedder: bool,
    request_timeout_secs: u64,
    idle_timeout_secs: u64,
    max_connections: usize,
    /// The server's `RUST_LOG`, when not its default.
    log_filter: Option<&'static str>,
}

/// The access name of the embedding service when `Settings::embedder` is set.
const EMBEDDER: &str = "u-8105f7322477/minilm";

impl Default for Settings {
    fn default() -> Self {
        Settings {
            slots: 4,
            queue_size: 64,
            admin: false,
            max_body_bytes: 64 * 1024,
            embedder: false,
            request_timeout_secs: 600,
            idle_timeout_secs: 30,
            max_connections: 512,
            log_filter: None,
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
            "listen = \"127.0.0.1:0\"\napi_keys = [\"{USER_KEY}\"]\n{admin}max_body_bytes = {}\n\
             request_timeout_secs = {}\nidle_timeout_secs = {}\nmax_connections = {}\n\n\
             [[services]]\nname = \"test\"\naccess_name = \"{MODEL}\"\nmodel = {:?}\n\
             slots = {}\ncontext_length = 1024\nqueue_size = {}\nthreads = 1\n",
            settings.max_body_bytes,
            settings.request_timeout_secs,
            settings.idle_timeout_secs,
            settings.max_connections,
            model.display().to_string(),
            settings.slots,
            settings.queue_size,
        );
        let mut config = config;
        if settings.embedder {
            config.push_str(&format!(
                "\n[[services]]\nname = \"minilm\"\naccess_name = \"{EMBEDDER}\"\nmodel = {:?}\nthreads = 1\n",
                minilm().display().to_string()
            ));
        }
        let config_path = dir.join(format!("{label}.toml"));
        std::fs::write(&config_path, config).expect("write config");
        let log = dir.join(format!("{label}.log"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_modelservice-server"));
        if let Some(filter) = settings.log_filter {
            command.env("RUST_LOG", filter);
        }
        let mut child = command
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

/// What a test request carries as its body.
#[derive(Clone)]
enum Payload {
    Nothing,
    Json(Value),
    Text(String),
    /// Sent chunked, with no Content-Length.
    Chunked(Vec<u8>),
}

/// Sends `method path` with this key, query and body; the status, headers and JSON answer.
async fn send(
    server: &Server,
    method: &str,
    path: &str,
    key: Option<&str>,
    query: &[(String, String)],
    payload: Payload,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = http().request(method, server.url(path)).query(query);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request = match payload {
        Payload::Nothing => request,
        Payload::Json(body) => request.json(&body),
        Payload::Text(text) => request
            .header("Content-Type", "application/json")
            .body(text),
        Payload::Chunked(bytes) => {
            let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                bytes.chunks(16 * 1024).map(|c| Ok(c.to_vec())).collect();
            request.body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                chunks,
            )))
        }
    };
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, headers, json)
}

/// Whether `actual` has every field of `expected` (recursively; arrays element by element, a
/// `null` also matches a missing field).
fn has_fields(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (_, Value::Object(fields)) => fields.iter().all(|(k, v)| has_fields(&actual[k], v)),
        (Value::Array(a), Value::Array(e)) => {
            a.len() == e.len() && a.iter().zip(e).all(|(a, e)| has_fields(a, e))
        }
        _ => actual == expected,
    }
}

/// A table row: what it checks, method, path, key, body → status and the answer's fields.
type Exchange<P> = (
    &'static str,
    &'static str,
    P,
    Option<&'static str>,
    Payload,
    u16,
    Value,
);

/// The fields of an OpenAI error envelope.
fn envelope(kind: &str, code: &str, param: Option<&str>) -> Value {
    json!({"error": {"type": kind, "code": code, "param": param}})
}

/// The request that route `route` gets for operation body `body`: its path (with the body's
/// path parameters), then the rest as the query string (GET, DELETE) or the JSON body.
fn route_request(route: &Route, body: &Value) -> (String, Vec<(String, String)>, Payload) {
    let (path, rest) = route.path_for(body.as_object().expect("an object body"));
    if matches!(route.method, "GET" | "DELETE") {
        let query = rest
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect();
        (path, query, Payload::Nothing)
    } else {
        (path, Vec::new(), Payload::Json(Value::Object(rest)))
    }
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
    assert!(
        usage["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .is_some_and(|cached| cached < p),
        "{usage}"
    );

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
    const CHAT: &str = "/v1/chat/completions";
    let user = Some(USER_KEY);
    let chat_with = |field: &str, value: Value| {
        let mut body = chat_body(MODEL, 4);
        body[field] = value;
        Payload::Json(body)
    };
    let bad_value = |param: &str| envelope("invalid_request_error", "invalid_value", Some(param));
    let unauthorized = envelope("authentication_error", "invalid_api_key", None);
    let malformed = envelope("invalid_request_error", "invalid_value", None);
    let not_found = envelope("invalid_request_error", "model_not_found", Some("model"));
    let too_large = envelope("invalid_request_error", "payload_too_large", None);
    let past_context = envelope(
        "invalid_request_error",
        "context_length_exceeded",
        Some("max_tokens"),
    );
    let good = Payload::Json(chat_body(MODEL, 4));
    let mut bad_role = chat_body(MODEL, 4);
    bad_role["messages"][0]["role"] = json!("wizard");
    let mut huge = chat_body(MODEL, 4);
    huge["messages"][0]["content"] = json!("a".repeat(2 << 20));
    // What, method, path, key, body → status and the error's fields.
    #[rustfmt::skip]
    let cases: Vec<Exchange<&str>> = vec![
        ("no key", "POST", CHAT, None, good.clone(), 401, unauthorized.clone()),
        ("wrong key", "POST", CHAT, Some("sk-wrong"), good.clone(), 401, unauthorized.clone()),
        ("a key's prefix", "POST", CHAT, Some(&USER_KEY[..8]), good, 401, unauthorized.clone()),
        ("no key for models", "GET", "/v1/models", None, Payload::Nothing, 401, unauthorized),
        ("unknown model", "POST", CHAT, user, Payload::Json(chat_body("u-nobody/none", 4)), 404, not_found.clone()),
        ("unknown model retrieved", "GET", "/v1/models/u-nobody/none", user, Payload::Nothing, 404, not_found),
        ("cut JSON", "POST", CHAT, user, Payload::Text("{\"model\": ".into()), 400, malformed.clone()),
        ("broken JSON", "POST", CHAT, user, Payload::Text("{bad".into()), 400, malformed.clone()),
        ("wrong type", "POST", CHAT, user, chat_with("temperature", json!("hot")), 400, bad_value("temperature")),
        ("out of range", "POST", CHAT, user, chat_with("temperature", json!(3.5)), 400, bad_value("temperature")),
        ("unknown role", "POST", CHAT, user, Payload::Json(bad_role), 400, bad_value("messages[0].role")),
        ("no messages", "POST", CHAT, user, chat_with("messages", json!([])), 400, bad_value("messages")),
        ("past the context", "POST", CHAT, user, chat_with("max_tokens", json!(5000)), 400, past_context),
        // Over the 64 KiB limit, declared (Content-Length) and streamed (chunked, no length).
        ("declared too large", "POST", CHAT, user, Payload::Json(huge.clone()), 413, too_large.clone()),
        ("chunked too large", "POST", CHAT, user, Payload::Chunked(huge.to_string().into()), 413, too_large),
        // The query string enters the body like any field, so an unknown one is named.
        ("query parameter", "GET", "/v1/models?limit=3", user, Payload::Nothing, 400, bad_value("limit")),
        ("unknown route", "GET", "/v1/nowhere", user, Payload::Nothing, 404, malformed.clone()),
        ("wrong method", "DELETE", "/v1/models", user, Payload::Nothing, 405, malformed),
    ];

    // Health is public; everything under /v1 needs a key.
    let health = http().get(server.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    for (what, method, path, key, payload, status, error) in cases {
        let (got, headers, answer) = send(&server, method, path, key, &[], payload).await;
        assert_eq!(got, status, "{what}: {answer}");
        assert!(has_fields(&answer, &error), "{what}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}: {answer}"
        );
        if status == 401 {
            assert_eq!(headers["www-authenticate"], "Bearer", "{what}");
            // A key is not leaked back in the message.
            assert!(!answer.to_string().contains("sk-"), "{what}: {answer}");
        }
        assert_serving(&server).await;
    }

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
        .env("MODELSERVICE_EMBEDDER", EMBEDDER)
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

/// Runs a Python test client with the test clients' venv (`make -C examples/server deps`).
fn run_python_client(script: &str, server: &Server) -> Value {
    let python = server_dir().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make -C examples/server deps` (or `make test`) first",
        python.display()
    );
    run_client(python.to_str().unwrap(), script, server)
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
    assert!(
        v["models"].as_array().unwrap().contains(&json!(MODEL)),
        "{v}"
    );
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
    // Legacy completions: 16 tokens by default; the stream and the log probabilities spell the text.
    let c = &v["completions"];
    assert_eq!(c["object"], "text_completion", "{v}");
    assert_eq!(c["finish_reason"], "length", "{v}");
    assert_eq!(c["completion_tokens"], 16, "{v}");
    let text = c["text"].as_str().expect("text");
    let join = |key: &str| -> String {
        c[key]
            .as_array()
            .expect(key)
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect()
    };
    assert_eq!(join("pieces"), text, "{v}");
    assert_eq!(join("tokens"), text, "{v}");
    // Tool calls the SDK parsed, whole and through its stream helper, and a tool-result answer.
    let tools = &v["tools"];
    assert_eq!(tools["finish_reason"], "tool_calls", "{v}");
    assert!(tools["content"].is_null(), "{v}");
    assert!(tools["id"].as_str().unwrap().starts_with("call_"), "{v}");
    assert_eq!(tools["name"], "get_weather", "{v}");
    assert!(tools["arguments"]["city"].is_string(), "{v}");
    assert_eq!(
        tools["streamed"],
        json!(["get_weather", tools["arguments"]]),
        "{v}"
    );
    assert_eq!(tools["streamed_finish_reason"], "tool_calls", "{v}");
    assert!(!tools["answer"].as_str().unwrap().is_empty(), "{v}");
}

#[test]
fn official_openai_python_package() {
    let server = Server::start(
        "python",
        Settings {
            embedder: true,
            ..Settings::default()
        },
    );
    let v = run_python_client("openai_client.py", &server);
    check_sdk_run(&v);
    // Embeddings: the SDK asks for base64 by default and decodes it; floats when asked for.
    let e = &v["embeddings"];
    assert_eq!(e["dims"], json!([384, 384]), "{v}");
    assert!(e["max_difference"].as_f64().unwrap() < 1e-6, "{v}");
    assert!(
        e["norm"].as_f64().map(|n| (n - 1.0).abs() < 1e-3).unwrap(),
        "{v}"
    );
}

/// Structured output over HTTP: `json_schema` answers (whole, and streamed with `n` = 3 and a
/// seed) parse and satisfy their schema by an independent validator; a schema llama.cpp cannot
/// enforce is a 400 naming `response_format.json_schema.schema`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn structured_output_over_http() {
    let server = Server::start("structured", Settings::default());
    let schema = json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 20},
            "age": {"type": "integer"},
            "mood": {"enum": ["happy", "sad", "calm"]},
            "hobbies": {"type": "array", "items": {"type": "string", "maxLength": 16}, "maxItems": 3},
            "address": {
                "type": "object",
                "properties": {"city": {"type": "string", "maxLength": 20}},
                "required": ["city"]
            }
        },
        "required": ["name", "age", "mood", "hobbies", "address"]
    });
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    let body = |schema: &Value, extra: Value| {
        let mut body = json!({
            "model": MODEL,
            "messages": [
                {"role": "system", "content": "Reply with one short JSON object."},
                {"role": "user", "content": "Describe a person who likes the sea."},
            ],
            "response_format": {"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": true}},
            "temperature": 0,
            "max_tokens": 200,
        });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let check = |content: &str| {
        let answer: Value = serde_json::from_str(content)
            .unwrap_or_else(|e| panic!("the answer does not parse ({e}): {content}"));
        assert!(
            validator.is_valid(&answer),
            "invalid against the schema: {answer}"
        );
    };

    let whole = call(
        &server,
        "POST",
        "/v1/chat/completions",
        USER_KEY,
        Some(body(&schema, json!({}))),
    )
    .await;
    assert_eq!(whole.0, 200, "{}", whole.1);
    assert_eq!(
        whole.1["choices"][0]["finish_reason"], "stop",
        "{}",
        whole.1
    );
    check(
        whole.1["choices"][0]["message"]["content"]
            .as_str()
            .unwrap(),
    );

    let streamed = body(
        &schema,
        json!({"stream": true, "n": 3, "seed": 7, "temperature": 0.8}),
    );
    let text = open_stream(&server, streamed.to_string())
        .await
        .text()
        .await
        .expect("body");
    let mut contents = vec![String::new(); 3];
    for event in text
        .split("\n\n")
        .filter_map(|e| e.trim().strip_prefix("data: "))
    {
        if event == "[DONE]" {
            continue;
        }
        let chunk: Value = serde_json::from_str(event).expect("chunk JSON");
        for c in chunk["choices"].as_array().unwrap() {
            let i = c["index"].as_u64().unwrap() as usize;
            contents[i].push_str(c["delta"]["content"].as_str().unwrap_or(""));
        }
    }
    for content in &contents {
        check(content);
    }

    let bad = json!({"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}});
    let refused = call(
        &server,
        "POST",
        "/v1/chat/completions",
        USER_KEY,
        Some(body(&bad, json!({}))),
    )
    .await;
    assert_error(
        &refused,
        400,
        "invalid_request_error",
        Some("invalid_value"),
        Some("response_format.json_schema.schema"),
    );
}

/// LangChain over HTTP: `ChatOpenAI.with_structured_output(PydanticModel)` gets an instance of the
/// model back, and `OpenAIEmbeddings` gets MiniLM's vectors (`tests/langchain_client.py`).
#[test]
fn langchain_structured_output_and_embeddings() {
    let server = Server::start(
        "langchain",
        Settings {
            embedder: true,
            ..Settings::default()
        },
    );
    let v = run_python_client("langchain_client.py", &server);
    let name = v["person"]["name"].as_str().expect("name");
    assert!(!name.is_empty() && name.chars().count() <= 40, "{v}");
    assert!(v["person"]["age"].is_i64(), "{v}");
    // The raw answer is the JSON that LangChain parsed.
    let raw: Value = serde_json::from_str(v["raw"].as_str().unwrap()).expect("raw JSON");
    assert_eq!(raw, v["person"], "{v}");
    assert_eq!(v["dims"], json!([384, 384, 384]), "{v}");
    assert!(v["query_equals_document"].as_f64().unwrap() < 1e-6, "{v}");
    let (paraphrase, unrelated) = (
        v["paraphrase"].as_f64().unwrap(),
        v["unrelated"].as_f64().unwrap(),
    );
    assert!(paraphrase > unrelated + 0.2, "{v}");
}

#[test]
fn langchain_bind_tools() {
    let server = Server::start("langchain-tools", Settings::default());
    let v = run_python_client("langchain_tools.py", &server);
    let calls = v["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{v}");
    assert_eq!(calls[0]["name"], "get_weather", "{v}");
    assert!(calls[0]["args"]["city"].is_string(), "{v}");
    assert!(calls[0]["id"].as_str().unwrap().starts_with("call_"), "{v}");
    assert_eq!(v["invalid"], json!([]), "{v}");
    assert!(!v["answer"].as_str().unwrap().is_empty(), "{v}");
    assert_eq!(
        v["streamed"],
        json!([{"name": "get_weather", "args": calls[0]["args"]}]),
        "{v}"
    );
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
    let one = format!("/v1/services/{second}");
    let spec = json!({"name": "second", "access_name": second, "model": model, "slots": 2, "context_length": 512});
    let (admin, user) = (Some(ADMIN_KEY), Some(USER_KEY));
    let bad_value = |param: &str| envelope("invalid_request_error", "invalid_value", Some(param));
    let not_found = envelope("invalid_request_error", "model_not_found", Some("model"));
    let unauthorized = envelope("authentication_error", "invalid_api_key", None);
    let exists = envelope(
        "invalid_request_error",
        "service_exists",
        Some("access_name"),
    );
    let load_failed = envelope("invalid_request_error", "model_load_failed", Some("model"));
    let no_route = envelope("invalid_request_error", "invalid_value", None);
    let (list, chat) = ("/v1/services".to_owned(), "/v1/chat/completions".to_owned());
    let body = Payload::Json;
    let none = Payload::Nothing;
    // Step, method, path, key, body → status and fields of the answer, in order.
    #[rustfmt::skip]
    let steps: Vec<Exchange<String>> = vec![
        // Management needs the admin key; the user key may chat but not manage.
        ("list as user", "GET", list.clone(), user, none.clone(), 401, unauthorized.clone()),
        ("deploy as user", "POST", list.clone(), user, body(spec.clone()), 401, unauthorized),
        ("deploy", "POST", list.clone(), admin, body(spec.clone()), 201, json!({
            "access_name": second, "name": "second", "status": "running", "instances": 1,
            "slots_per_instance": 2, "base_model": {"architecture": "llama"}})),
        ("deploy again", "POST", list.clone(), admin, body(spec), 409, exists),
        ("spec with a wrong type", "POST", list.clone(), admin,
            body(json!({"name": "x", "access_name": "u/x", "model": 7})), 400, bad_value("model")),
        ("spec with an unknown field", "POST", list.clone(), admin,
            body(json!({"name": "x", "access_name": "u/x", "model": model, "slotz": 2})), 400, bad_value("slotz")),
        ("spec without a model file", "POST", list.clone(), admin,
            body(json!({"name": "x", "access_name": "u/x", "model": "/nonexistent/model.gguf"})), 400, load_failed),
        ("list", "GET", list.clone(), admin, none.clone(), 200,
            json!({"object": "list", "data": [{"access_name": second}, {"access_name": MODEL}]})),
        ("models", "GET", "/v1/models".into(), user, none.clone(), 200,
            json!({"object": "list", "data": [{"id": second}, {"id": MODEL}]})),
        ("retrieve", "GET", one.clone(), admin, none.clone(), 200, json!({"access_name": second})),
        // The new service answers with the user key.
        ("chat", "POST", chat.clone(), user, body(chat_body(second, 4)), 200,
            json!({"object": "chat.completion", "model": second})),
        // Scale: POST .../scale and PATCH.
        ("scale up", "POST", format!("{one}/scale"), admin, body(json!({"instances": 2})), 200, json!({"instances": 2})),
        ("chat scaled", "POST", chat.clone(), user, body(chat_body(second, 4)), 200, json!({"model": second})),
        ("scale down", "PATCH", one.clone(), admin, body(json!({"instances": 1})), 200, json!({"instances": 1})),
        ("scale to many", "PATCH", one.clone(), admin, body(json!({"instances": "many"})), 400, bad_value("instances")),
        ("scale to zero", "PATCH", one.clone(), admin, body(json!({"instances": 0})), 400, bad_value("instances")),
        ("name in URL and body", "PATCH", one.clone(), admin,
            body(json!({"access_name": MODEL, "instances": 1})), 400, bad_value("access_name")),
        ("scale an unknown service", "POST", "/v1/services/u-nobody/none/scale".into(), admin,
            body(json!({"instances": 2})), 404, not_found.clone()),
        ("unknown action", "POST", format!("{one}/restart"), admin, body(json!({})), 404, no_route),
        // Delete needs the display name as confirmation.
        ("delete unconfirmed", "DELETE", one.clone(), admin, none.clone(), 400, bad_value("confirm")),
        ("delete with the wrong name", "DELETE", format!("{one}?confirm=test"), admin, none.clone(), 400,
            bad_value("confirm")),
        ("delete", "DELETE", format!("{one}?confirm=second"), admin, none.clone(), 200,
            json!({"access_name": second, "usage": {"requests": 2}})),
        ("retrieve deleted", "GET", one, admin, none.clone(), 404, not_found.clone()),
        ("chat deleted", "POST", chat, user, body(chat_body(second, 4)), 404, not_found),
        // Confirmation in a JSON body works too.
        ("delete confirmed in the body", "DELETE", format!("/v1/services/{MODEL}"), admin,
            body(json!({"confirm": "test"})), 200, json!({"access_name": MODEL})),
        ("models after", "GET", "/v1/models".into(), user, none, 200, json!({"data": []})),
    ];

    let mut answers = std::collections::HashMap::new();
    for (step, method, path, key, payload, status, fields) in steps {
        let (got, _, answer) = send(&server, method, &path, key, &[], payload).await;
        assert_eq!(got, status, "{step}: {answer}");
        assert!(has_fields(&answer, &fields), "{step}: {answer}");
        answers.insert(step, answer);
    }
    // One service throughout: the same ID from deploy to delete.
    let id = &answers["deploy"]["id"];
    assert!(id.as_str().is_some_and(|id| !id.is_empty()));
    for step in ["retrieve", "scale up", "scale down", "delete"] {
        assert_eq!(&answers[step]["id"], id, "{step}");
    }
}

/// The repository's corpus of bad requests (`tests/corpus/bad_requests.json`).
fn corpus() -> Value {
    let path = server_dir().join("../../tests/corpus/bad_requests.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("corpus JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_of_bad_requests_through_the_route_table() {
    let server = Server::start("corpus", Settings::default());
    let corpus = corpus();
    let mut service = corpus["service"].clone();
    service["model"] = json!(smollm2());
    let deploy = Route::of("services.deploy").expect("deploy is routed");
    let (status, _, info) = send(
        &server,
        deploy.method,
        deploy.path,
        Some(USER_KEY),
        &[],
        Payload::Json(service.clone()),
    )
    .await;
    assert_eq!(status, 201, "{info}");

    let cases = corpus["cases"].as_array().expect("cases");
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let op = case["op"].as_str().expect("op");
        let route = Route::of(op).unwrap_or_else(|| panic!("{name}: `{op}` has no route"));
        let (path, query, payload) = match (&case["body"], &case["body_text"]) {
            (Value::Null, Value::String(text)) => (
                route.path.to_owned(),
                Vec::new(),
                Payload::Text(text.clone()),
            ),
            (Value::String(s), _) if s == "$service" => route_request(route, &service),
            (body, _) => route_request(route, body),
        };
        let (status, _, answer) = send(
            &server,
            route.method,
            &path,
            Some(USER_KEY),
            &query,
            payload,
        )
        .await;
        let error = &answer["error"];
        let got = json!([status, error["type"], error["code"], error["param"]]);
        let want = json!([case["status"], case["type"], case["code"], case["param"]]);
        if got != want || error["message"].as_str().is_none_or(str::is_empty) {
            failures.push(format!(
                "{name} ({} {path}): want {want}, got {answer}",
                route.method
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    eprintln!(
        "{} corpus cases answered as the core answers them",
        cases.len()
    );
    assert_serving(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_serves_its_operation() {
    let server = Server::start("operations", Settings::default());
    let second = "u-8105f7322477/second";
    let embedder = "u-8105f7322477/minilm";
    let minilm =
        json!({"name": "minilm", "access_name": embedder, "model": minilm(), "threads": 1});
    let (status, _, info) = send(
        &server,
        "POST",
        "/v1/services",
        Some(USER_KEY),
        &[],
        Payload::Json(minilm),
    )
    .await;
    assert_eq!(status, 201, "{info}");
    // A good body and some fields of the answer, for every core operation.
    #[rustfmt::skip]
    let examples: Vec<(&str, Value, Value)> = vec![
        ("chat.completions.create", chat_body(MODEL, 4), json!({"object": "chat.completion"})),
        ("completions.create", json!({"model": MODEL, "prompt": ["a", "b"], "max_tokens": 2}),
            json!({"object": "text_completion", "choices": [{"index": 0}, {"index": 1}]})),
        ("embeddings.create", json!({"model": embedder, "input": ["a", "b"]}),
            json!({"object": "list", "data": [{"index": 0}, {"index": 1}]})),
        ("models.list", json!({}), json!({"object": "list", "data": [{"id": embedder}, {"id": MODEL}]})),
        ("models.retrieve", json!({"model": MODEL}), json!({"object": "model", "id": MODEL})),
        ("services.deploy", json!({"name": "second", "access_name": second, "model": smollm2(),
                                   "slots": 1, "context_length": 512, "threads": 1}),
            json!({"access_name": second, "status": "running"})),
        ("services.list", json!({}),
            json!({"object": "list", "data": [{"access_name": embedder}, {"access_name": second},
                                              {"access_name": MODEL}]})),
        ("services.retrieve", json!({"access_name": second}), json!({"access_name": second})),
        ("services.scale", json!({"access_name": second, "instances": 1}), json!({"instances": 1})),
        ("services.delete", json!({"access_name": second, "confirm": "second"}), json!({"access_name": second})),
        ("services.metrics", json!({"access_name": MODEL}),
            json!({"object": "list", "data": [{"access_name": MODEL, "requests": {"200": 2}}]})),
    ];
    let names: Vec<&str> = examples.iter().map(|(op, _, _)| *op).collect();
    assert_eq!(
        names,
        modelservice::Operation::names(),
        "an operation has no example here"
    );
    // Every route of the table, in its order (deploy comes before the routes that need it).
    for route in ROUTES {
        let (_, body, fields) = examples
            .iter()
            .find(|(op, _, _)| *op == route.op)
            .expect("example");
        let (path, query, payload) = route_request(route, body);
        let (status, _, answer) = send(
            &server,
            route.method,
            &path,
            Some(USER_KEY),
            &query,
            payload,
        )
        .await;
        assert_eq!(status, route.status, "{route:?}: {answer}");
        assert!(has_fields(&answer, fields), "{route:?}: {answer}");
    }
    for op in modelservice::Operation::names() {
        assert!(ROUTES.iter().any(|r| r.op == op), "`{op}` has no route");
    }
}

#[test]
fn config_file_refuses_unknown_service_fields() {
    let config = artifacts().join("slotz.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\napi_keys = [\"{USER_KEY}\"]\n\n[[services]]\nname = \"test\"\n\
             access_name = \"{MODEL}\"\nmodel = {:?}\nslotz = 2\n",
            smollm2().display().to_string()
        ),
    )
    .expect("write config");
    let out = Command::new(env!("CARGO_BIN_EXE_modelservice-server"))
        .arg("--config")
        .arg(&config)
        .output()
        .expect("runs");
    assert!(!out.status.success(), "started with `slotz` in a service");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown field `slotz`"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "it listened: {}",
        String::from_utf8_lossy(&out.stdout)
    );
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
    // More sequences than 2 slots and a queue of 2 can ever hold: a 400 naming the field, not a
    // 429 that retrying never gets past.
    let mut too_many = chat_body(MODEL, 2);
    too_many["n"] = json!(5);
    let got = call(
        &server,
        "POST",
        "/v1/chat/completions",
        USER_KEY,
        Some(too_many),
    )
    .await;
    assert_error(
        &got,
        400,
        "invalid_request_error",
        Some("invalid_value"),
        Some("n"),
    );
    assert!(
        got.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 4"),
        "{}",
        got.1
    );
    let prompts = json!({"model": MODEL, "prompt": ["a", "b", "c"], "n": 2, "max_tokens": 2});
    let got = call(&server, "POST", "/v1/completions", USER_KEY, Some(prompts)).await;
    assert_error(
        &got,
        400,
        "invalid_request_error",
        Some("invalid_value"),
        Some("prompt"),
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

/// A raw connection to the server, for clients no HTTP library would imitate.
async fn connect(server: &Server) -> tokio::net::TcpStream {
    let addr = server.base.strip_prefix("http://").expect("an http base");
    tokio::net::TcpStream::connect(addr).await.expect("connect")
}

/// Reads until the server closes the connection (or `limit` passes): what it sent, and when it
/// closed (`None`: still open at the limit).
async fn read_until_closed(
    stream: &mut tokio::net::TcpStream,
    limit: Duration,
) -> (String, Option<Duration>) {
    use tokio::io::AsyncReadExt;
    let start = Instant::now();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (
                    String::from_utf8_lossy(&received).into_owned(),
                    Some(start.elapsed()),
                )
            }
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&received).into_owned(), None),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_after_the_timeouts() {
    use tokio::io::AsyncWriteExt;
    let settings = Settings {
        request_timeout_secs: 2,
        idle_timeout_secs: 2,
        ..Settings::default()
    };
    let server = Server::start("slow-clients", settings);

    // A connection that never sends a request is closed after the idle timeout.
    let mut idle = connect(&server).await;
    let (sent, closed) = read_until_closed(&mut idle, Duration::from_secs(10)).await;
    let closed = closed.expect("an idle connection is closed");
    assert!(closed >= Duration::from_millis(1500), "{closed:?}");
    assert!(sent.is_empty(), "{sent}");

    // Slow-loris headers: one header line every half second never completes the head.
    let mut slow_head = connect(&server).await;
    let start = Instant::now();
    slow_head
        .write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut cut = None;
    for i in 0..40 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if slow_head
            .write_all(format!("X-Slow-{i}: y\r\n").as_bytes())
            .await
            .is_err()
        {
            cut = Some(start.elapsed());
            break;
        }
        let (_, closed) = read_until_closed(&mut slow_head, Duration::from_millis(1)).await;
        if closed.is_some() {
            cut = Some(start.elapsed());
            break;
        }
    }
    let cut = cut.expect("a slow request head is cut");
    assert!(cut < Duration::from_secs(8), "cut after {cut:?}");

    // Slow-loris body: the head is whole, the body trickles in; the request timeout answers 408.
    let mut slow_body = connect(&server).await;
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {USER_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
    );
    slow_body.write_all(head.as_bytes()).await.unwrap();
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if slow_body.write_all(b" ").await.is_err() {
                break;
            }
            let (sent, closed) = read_until_closed(&mut slow_body, Duration::from_millis(1)).await;
            if !sent.is_empty() || closed.is_some() {
                let (rest, _) = read_until_closed(&mut slow_body, Duration::from_secs(2)).await;
                return sent + &rest;
            }
        }
        String::new()
    });
    let answer = writer.await.unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "a trickled body gets 408: {answer:?}"
    );
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );

    // A non-streamed answer that would outlast the request timeout is cut too, and its
    // generation with it; streamed answers are not.
    let mut long = chat_body(MODEL, 900);
    long["logit_bias"] = serde_json::from_str(NO_EOS).unwrap();
    let got = call(
        &server,
        "POST",
        "/v1/chat/completions",
        USER_KEY,
        Some(long.clone()),
    )
    .await;
    assert_error(
        &got,
        408,
        "invalid_request_error",
        Some("request_timeout"),
        None,
    );
    long["stream"] = json!(true);
    long["max_tokens"] = json!(120);
    let response = open_stream(&server, long.to_string()).await;
    let text = response.text().await.unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert_serving(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_are_answered_503_and_closed() {
    use tokio::io::AsyncWriteExt;
    let settings = Settings {
        max_connections: 2,
        ..Settings::default()
    };
    let server = Server::start("connection-cap", settings);
    let held = [connect(&server).await, connect(&server).await];
    // Let the server accept both before the third arrives.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut third = connect(&server).await;
    third
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (answer, closed) = read_until_closed(&mut third, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(answer.contains("\"code\":\"server_busy\""), "{answer}");
    assert!(closed.is_some(), "the refused connection is closed");

    // Once a held connection closes, a new one is served.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut next = connect(&server).await;
        next.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let (answer, _) = read_until_closed(&mut next, Duration::from_secs(10)).await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "still refused: {answer}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The server's `/metrics` text, read with the user key.
async fn metrics_text(server: &Server) -> String {
    let response = http()
        .get(server.url("/metrics"))
        .bearer_auth(USER_KEY)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    response.text().await.unwrap()
}

/// The value of the sample whose name and labels are `series`, as in `/metrics`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_status_tokens_and_time() {
    let server = Server::start("metrics", Settings::default());
    let got = send(&server, "GET", "/metrics", None, &[], Payload::Nothing).await;
    assert_eq!(got.0, 401, "/metrics needs a key");

    let answered = call(
        &server,
        "POST",
        "/v1/chat/completions",
        USER_KEY,
        Some(chat_body(MODEL, 6)),
    )
    .await;
    assert_eq!(answered.0, 200);
    let mut too_long = chat_body(MODEL, 6);
    too_long["max_tokens"] = json!(5000);
    let refused = call(
        &server,
        "POST",
        "/v1/chat/completions",
        USER_KEY,
        Some(too_long),
    )
    .await;
    assert_eq!(refused.0, 400);

    let text = metrics_text(&server).await;
    let service = format!("service=\"{MODEL}\"");
    assert_eq!(
        sample(
            &text,
            &format!("modelservice_requests_total{{{service},status=\"200\"}}")
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("modelservice_requests_total{{{service},status=\"400\"}}")
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!("modelservice_completion_tokens_total{{{service}}}")
        ),
        answered.1["usage"]["completion_tokens"].as_f64()
    );
    assert_eq!(
        sample(&text, &format!("modelservice_queue_depth{{{service}}}")),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!("modelservice_request_duration_seconds_count{{{service}}}")
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!("modelservice_time_to_first_token_seconds_bucket{{{service},le=\"+Inf\"}}")
        ),
        Some(1.0)
    );

    // `services.metrics` (`GET /v1/metrics`) reads the same core counters as the text.
    let (status, _, json) = send(
        &server,
        "GET",
        "/v1/metrics",
        Some(USER_KEY),
        &[("access_name".to_owned(), MODEL.to_owned())],
        Payload::Nothing,
    )
    .await;
    assert_eq!(status, 200, "{json}");
    let m = &json["data"][0];
    assert_eq!(m["access_name"], MODEL);
    assert_eq!(m["requests"], json!({"200": 1, "400": 1}), "{json}");
    for (family, value) in [
        ("modelservice_prompt_tokens_total", &m["prompt_tokens"]),
        (
            "modelservice_completion_tokens_total",
            &m["completion_tokens"],
        ),
        (
            "modelservice_time_to_first_token_seconds_count",
            &m["time_to_first_token"]["count"],
        ),
        (
            "modelservice_request_duration_seconds_count",
            &m["latency"]["count"],
        ),
    ] {
        assert_eq!(
            sample(&text, &format!("{family}{{{service}}}")),
            value.as_f64(),
            "{family}: {json}"
        );
    }
    let (status, _, missing) = send(
        &server,
        "GET",
        "/v1/metrics",
        Some(USER_KEY),
        &[("access_name".to_owned(), "u/none".to_owned())],
        Payload::Nothing,
    )
    .await;
    assert_eq!(status, 404, "{missing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_a_body_declared_too_large() {
    let server = Server::start("body-limits", Settings::default());
    let huge = "x".repeat(Settings::default().max_body_bytes + 1);
    let too_large = envelope("invalid_request_error", "payload_too_large", None);
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/health"),
        ("GET", "/metrics"),
        ("GET", "/console"),
        ("GET", "/console/assets/console.css"),
        ("POST", "/no/such/route"),
        ("POST", "/v1/chat/completions"),
        ("GET", "/v1/models"),
        ("POST", "/v1/services"),
    ] {
        let (status, _, body) = send(
            &server,
            method,
            path,
            Some(USER_KEY),
            &[],
            Payload::Text(huge.clone()),
        )
        .await;
        assert_eq!(status, 413, "{method} {path}: {body}");
        assert!(has_fields(&body, &too_large), "{method} {path}: {body}");
    }
    assert_serving(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_never_reach_the_log() {
    const WRONG_KEY: &str = "sk-wrong-key-5be0c4d1";
    let settings = Settings {
        log_filter: Some("trace"),
        ..Settings::default()
    };
    let mut server = Server::start("key-logging", settings);
    let got = call(
        &server,
        "POST",
        "/v1/chat/completions",
        USER_KEY,
        Some(chat_body(MODEL, 4)),
    )
    .await;
    assert_eq!(got.0, 200);
    let mut streamed = chat_body(MODEL, 4);
    streamed["stream"] = json!(true);
    open_stream(&server, streamed.to_string())
        .await
        .text()
        .await
        .unwrap();
    let got = call(&server, "GET", "/v1/models", WRONG_KEY, None).await;
    assert_eq!(got.0, 401);
    let got = send(
        &server,
        "GET",
        "/v1/models",
        None,
        &[("api_key".into(), USER_KEY.into())],
        Payload::Nothing,
    )
    .await;
    assert_eq!(got.0, 401);
    let got = send(
        &server,
        "POST",
        "/v1/chat/completions",
        Some(USER_KEY),
        &[],
        Payload::Text(format!("{{\"model\": \"{USER_KEY}\"}}")),
    )
    .await;
    assert_eq!(
        got.0, 400,
        "a key pasted into a field is refused, not logged"
    );
    metrics_text(&server).await;
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(60)));
    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(
        log.lines().filter(|l| l.contains("request")).count() >= 5,
        "logging was on: {log}"
    );
    for key in [USER_KEY, WRONG_KEY, "sk-test-user", "sk-wrong"] {
        assert!(!log.contains(key), "`{key}` is in the log");
    }
}
