//! The web console in headless Chromium (`tests/console.mjs`) against the server binary serving
//! the real SmolLM2 model, plus the console's own HTTP answers (pages, assets, headers).
//! `make test` in this directory installs playwright-core first; Debian's chromium comes from
//! `scripts/setup`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use modelservice_test_models::smollm2;
use serde_json::{json, Value};

const USER_KEY: &str = "sk-console-user-5b7e20";
const ADMIN_KEY: &str = "sk-console-admin-c41f93";
const MODEL: &str = "u-8105f7322477/test";

fn server_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn scratch() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("modelservice-server");
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// The server binary with one SmolLM2 service and an admin key. Dropping it sends SIGTERM.
struct Server {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Server {
    fn start(label: &str) -> Server {
        let dir = scratch();
        let config = format!(
            "listen = \"127.0.0.1:0\"\napi_keys = [\"{USER_KEY}\"]\nadmin_keys = [\"{ADMIN_KEY}\"]\n\n\
             [[services]]\nname = \"test\"\naccess_name = \"{MODEL}\"\nmodel = {:?}\n\
             slots = 2\ncontext_length = 1024\nthreads = 1\n",
            smollm2().display().to_string(),
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
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read stdout");
        let Some(base) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            panic!(
                "server did not start: {line:?}; log: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        Server {
            base: base.to_owned(),
            child,
            log,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn get(url: String) -> reqwest::Response {
    reqwest::get(url).await.expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_pages_and_assets_are_served_from_the_binary() {
    let server = Server::start("console-http");
    for path in [
        "/console",
        "/console/",
        &format!("/console/services/{MODEL}"),
    ] {
        let response = get(format!("{}{path}", server.base)).await;
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], "text/html; charset=utf-8");
        // Scripts only from this server: no CDN, no inline script.
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        let html = response.text().await.unwrap();
        assert!(html.contains("/console/assets/console.css"), "{path}");
        assert!(!html.contains("http://") && !html.contains("https://"));
        assert!(html.contains("Image generation") && html.contains("Image understanding"));
    }
    for (file, kind) in [
        ("console.css", "text/css"),
        ("common.js", "text/javascript"),
        ("list.js", "text/javascript"),
        ("service.js", "text/javascript"),
    ] {
        let response = get(format!("{}/console/assets/{file}", server.base)).await;
        assert_eq!(response.status(), 200, "{file}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind),
            "{file}"
        );
        let body = response.text().await.unwrap();
        assert!(
            !body.contains("https://") && !body.contains("http://"),
            "{file} loads something from elsewhere"
        );
    }
    let missing = get(format!("{}/console/assets/nope.js", server.base)).await;
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");

    // What the page says is not served: a chat message with an image part is refused, naming it.
    let refused = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", server.base))
        .bearer_auth(USER_KEY)
        .json(&json!({
            "model": MODEL,
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
            ]}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"]["param"]
            .as_str()
            .is_some_and(|p| p.starts_with("messages[0].content")),
        "{body}"
    );
}

#[test]
fn console_flow_in_headless_chromium() {
    let server = Server::start("console");
    assert!(
        server_dir().join("node_modules/playwright-core").exists(),
        "node_modules/playwright-core is missing: run `make -C examples/server deps` (or `make test`) first"
    );
    assert!(
        server_dir().join(".venv/bin/python").exists(),
        ".venv is missing: run `make -C examples/server deps` (or `make test`) first"
    );
    // Kept after the run, for people to look at (git-ignored with the rest of target/).
    let shots = server_dir().join("target/console-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    let out = Command::new("node")
        .arg(server_dir().join("tests/console.mjs"))
        .current_dir(server_dir())
        .env("MODELSERVICE_URL", &server.base)
        .env("MODELSERVICE_API_KEY", USER_KEY)
        .env("MODELSERVICE_ADMIN_KEY", ADMIN_KEY)
        .env("MODELSERVICE_MODEL", MODEL)
        .env("MODELSERVICE_MODEL_PATH", smollm2())
        .env("MODELSERVICE_SCREENSHOTS", &shots)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "console.mjs failed:\n{}\n{}\nserver log: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log.display()
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    eprintln!("{}", serde_json::to_string_pretty(&v).unwrap());
    assert_eq!(v["pageErrors"], json!([]), "{v}");

    // The list: the configured service with its columns filled in.
    let row: Vec<&str> = v["listRow"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(row[0], "test");
    assert_eq!(row[1], MODEL);
    assert!(!row[2].is_empty(), "service ID: {row:?}");
    assert!(
        row[3].to_lowercase().contains("smollm2"),
        "base model: {row:?}"
    );
    assert_eq!(row[4], "1");
    assert_eq!(row[5], "running");

    // The detail page: basic information and the model's metadata from its GGUF file.
    assert_eq!(v["basic"]["Model access name"], MODEL);
    assert_eq!(v["basic"]["Instance count"], "1");
    assert_eq!(v["basic"]["Status"], "running");
    assert_eq!(v["baseModel"]["Architecture"], "llama");
    assert_eq!(v["baseModel"]["Size"], "135M");
    assert_eq!(v["baseModel"]["Trained context"], "8,192 tokens");
    assert!(!v["baseModel"]["Quantization"].as_str().unwrap().is_empty());
    assert_eq!(
        v["viewKey"],
        json!({"type": "text", "value": USER_KEY, "label": "Hide My API Key"})
    );
    for notes in [&v["listNotServed"], &v["detailNotServed"]] {
        let notes = notes.as_str().unwrap();
        assert!(notes.contains("Image generation") && notes.contains("Image understanding"));
    }

    // The copied curl command names this server and service, keeps the key out, and answered.
    let curl = v["curl"].as_str().unwrap();
    assert!(curl.contains(&format!("'{}/v1/chat/completions'", server.base)));
    assert!(curl.contains(&format!("\"model\": \"{MODEL}\"")));
    assert!(curl.contains("$MODELSERVICE_API_KEY") && !curl.contains(USER_KEY));
    assert!(!v["curlAnswer"].as_str().unwrap().trim().is_empty(), "{v}");
    for answer in ["pythonAnswer", "nodeAnswer"] {
        assert!(!v[answer].as_str().unwrap().is_empty(), "{answer}: {v}");
    }
    let examples = &v["examples"];
    assert!(examples["code-python"]
        .as_str()
        .unwrap()
        .contains(&format!("base_url=\"{}/v1/\"", server.base)));
    assert!(examples["code-python-inprocess"]
        .as_str()
        .unwrap()
        .contains("from modelservice import OpenAI"));
    assert!(examples["code-python-inprocess"]
        .as_str()
        .unwrap()
        .contains(&smollm2().display().to_string()));
    assert!(examples["code-node"]
        .as_str()
        .unwrap()
        .contains(&format!("baseURL: '{}/v1'", server.base)));

    // JSON mode: the answer follows the schema box; refused and broken schemas show next to it.
    let json_mode: Value = serde_json::from_str(v["json"]["answer"].as_str().unwrap())
        .unwrap_or_else(|e| panic!("the JSON-mode answer does not parse ({e}): {v}"));
    assert!(
        json_mode["name"]
            .as_str()
            .is_some_and(|n| n.chars().count() <= 40),
        "{v}"
    );
    assert!(
        json_mode["age"].is_i64() || json_mode["age"].is_u64(),
        "{v}"
    );
    assert_eq!(v["json"]["state"], "valid", "{v}");
    assert!(v["json"]["status"].as_str().unwrap().contains("valid JSON"));
    assert_eq!(v["schemaHiddenAtFirst"], true, "{v}");
    assert_eq!(v["schemaHiddenAgain"], true, "{v}");
    let refused = &v["refusedSchema"];
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("cannot be enforced"),
        "{v}"
    );
    assert_eq!(refused["invalid"], "true", "{v}");
    assert_eq!(refused["focused"], "trial-schema", "{v}");
    let broken = &v["brokenSchema"];
    assert!(
        broken["error"]
            .as_str()
            .unwrap()
            .starts_with("The schema is not valid JSON"),
        "{v}"
    );
    assert_eq!(broken["focused"], "trial-schema", "{v}");
    // Nothing was sent: the two messages of the refused request are all the log holds.
    assert_eq!(broken["messages"], 4, "{v}");

    // A tool call shows in the trial's answer.
    let calls = v["toolCall"]["calls"].as_str().unwrap();
    assert!(calls.starts_with("→ get_weather({\"city\":"), "{calls}");
    assert!(
        v["toolCall"]["status"]
            .as_str()
            .unwrap()
            .starts_with("Done"),
        "{v}"
    );
    // The trial streamed: the answer grew prefix by prefix before it was whole.
    let answer = v["trial"]["answer"].as_str().unwrap();
    assert!(!answer.trim().is_empty(), "{v}");
    assert!(v["trial"]["status"].as_str().unwrap().starts_with("Done"));
    let partial: Vec<&str> = v["trial"]["seen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .filter(|s| !s.is_empty() && *s != answer)
        .collect();
    assert!(partial.len() >= 2, "the answer appeared all at once: {v}");
    assert!(partial.iter().all(|p| answer.starts_with(p)), "{v}");
    assert_eq!(
        v["stopped"],
        json!({"status": "Stopped.", "stopDisabled": true}),
        "{v}"
    );
    let requests: u64 = v["stats"]["Requests"].as_str().unwrap().parse().unwrap();
    assert!(requests >= 2, "{v}");

    // Bad deploys: the server's error sits next to the field its `param` names.
    let bad_model = &v["badModel"];
    assert!(
        bad_model["error"]
            .as_str()
            .unwrap()
            .contains("missing.gguf"),
        "{v}"
    );
    assert_eq!(bad_model["invalid"], "true");
    assert_eq!(bad_model["focused"], "f-model");
    assert_eq!(bad_model["describedBy"], "e-model");
    assert!(
        v["badInstances"]["error"]
            .as_str()
            .unwrap()
            .contains("instances"),
        "{v}"
    );
    assert_eq!(v["badInstances"]["invalid"], "true");
    assert_eq!(v["badInstances"]["modelErrorCleared"], true);
    assert_eq!(v["listAfterBadDeploys"], json!([MODEL]));

    // Deploy, scale 1 → 2 (the list shows it), delete with the typed name (it disappears).
    assert!(v["deployStatus"]
        .as_str()
        .unwrap()
        .contains("u-8105f7322477/second"));
    assert_eq!(v["scaleDialogFocus"], "scale-instances");
    assert_eq!(v["focusAfterEscape"], "Scale second");
    let scaled: Vec<&str> = v["scaledRow"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(
        (scaled[1], scaled[4], scaled[5]),
        ("u-8105f7322477/second", "2", "running")
    );
    // The list refreshed itself through the deploy and the scale, ending on `running`.
    let statuses: Vec<&str> = v["statusesSeen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(statuses.last(), Some(&"running"), "{v}");
    assert!(
        statuses
            .iter()
            .all(|s| ["loading", "running", "scaling"].contains(s)),
        "{v}"
    );
    assert_eq!(v["deleteDisabled"], json!([true, true, false]));
    assert!(v["actionStatus"].as_str().unwrap().contains("was deleted"));
    assert_eq!(v["listAfterDelete"], json!([MODEL]));
    assert_eq!(v["focusAfterDelete"], "services-title");
    assert!(v["goneStatus"]
        .as_str()
        .unwrap()
        .contains("No service is deployed"));

    // Phones: nothing wider than the screen; the four screenshots are real images.
    assert_eq!(v["listPhoneSticksOut"], json!([]));
    assert_eq!(v["detailPhoneSticksOut"], json!([]));
    for name in [
        "list-desktop.png",
        "list-phone.png",
        "detail-desktop.png",
        "detail-phone.png",
    ] {
        let png = std::fs::read(shots.join(name)).expect("screenshot written");
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 10_000,
            "{name} is not a real screenshot"
        );
    }
    eprintln!("console screenshots: {}", shots.display());
}
