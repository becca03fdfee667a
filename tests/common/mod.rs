//! Shared helpers of the integration tests: the real models and small service specs.
#![allow(dead_code, unused_imports)]

use std::path::PathBuf;

use modelservice::{ChatCompletion, ChatCompletionRequest, ChatMessage, Registry, ServiceSpec};

// Each test binary uses some of the models.
pub use modelservice_test_models::{gemma3, minilm, smollm2};

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
