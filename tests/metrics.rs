//! The per-service metrics every surface reads (`Registry::metrics`): requests by outcome,
//! tokens, queue, time to first token and latency, on the real SmolLM2 and MiniLM models.

mod common;

use std::collections::BTreeMap;

use common::*;
use modelservice::metrics::STATUS_CANCELLED;
use modelservice::{EmbeddingRequest, Registry};

#[test]
fn requests_are_counted_by_outcome_and_timed() {
    let registry = registry_with("u/metrics");
    let answer = registry
        .chat_blocking(greedy("u/metrics", "Say hi", 8))
        .unwrap();
    // Refused after routing: counted on the service with its status.
    let err = registry
        .chat_blocking(greedy("u/metrics", &"word ".repeat(1100), 4))
        .unwrap_err();
    assert_eq!(err.status(), 400);
    // A stream dropped after its first chunk counts as cancelled.
    let mut stream = registry
        .chat_stream(greedy("u/metrics", "Count to fifty", 200))
        .unwrap();
    stream.next_blocking().unwrap().unwrap();
    drop(stream);
    // Unknown models belong to no service.
    let _ = registry
        .chat_blocking(greedy("u/none", "Hi", 4))
        .unwrap_err();

    let all = registry.metrics();
    assert_eq!(all.len(), 1);
    let m = &all[0];
    assert_eq!(m.access_name, "u/metrics");
    assert_eq!(
        m.requests,
        BTreeMap::from([(200, 1), (400, 1), (STATUS_CANCELLED, 1)])
    );
    // The dropped stream's tokens are added when its slot stops, a step or so later.
    assert!(m.completion_tokens >= u64::from(answer.usage.completion_tokens));
    assert_eq!(
        m.latency.count, 2,
        "answered and cancelled requests are timed"
    );
    assert!(m.time_to_first_token.count >= 1);
    let p50 = m.latency.quantile(0.5).unwrap();
    assert!(p50 > 0.0 && p50.is_finite(), "{p50}");
    assert_eq!((m.queue_depth, m.instances, m.queue_size), (0, 1, 64));
}

#[test]
fn embedding_requests_are_counted_too() {
    let registry = Registry::new();
    registry.deploy(spec("u/embed", minilm())).unwrap();
    registry
        .embeddings(EmbeddingRequest::new("u/embed", "hello"))
        .unwrap();
    let mut wrong = EmbeddingRequest::new("u/embed", "hello");
    wrong.dimensions = Some(3);
    registry.embeddings(wrong).unwrap_err();
    let m = &registry.metrics()[0];
    assert_eq!(m.requests, BTreeMap::from([(200, 1), (400, 1)]));
    assert_eq!(m.latency.count, 1);
}

#[test]
fn the_one_entry_serves_the_same_metrics_as_json() {
    let registry = std::sync::Arc::new(registry_with("u/metrics-op"));
    let (mut prompt_tokens, mut completion_tokens) = (0, 0);
    for (op, body) in [
        (
            "chat.completions.create",
            r#"{"model": "u/metrics-op", "messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 6, "temperature": 0}"#,
        ),
        (
            "chat.completions.create",
            r#"{"model": "u/metrics-op", "messages": [{"role": "user", "content": "Name a colour"}], "max_tokens": 4, "n": 2}"#,
        ),
        (
            "completions.create",
            r#"{"model": "u/metrics-op", "prompt": ["One, two,", "A, B,"], "max_tokens": 5, "temperature": 0}"#,
        ),
    ] {
        let answer: serde_json::Value =
            serde_json::from_str(&registry.call_blocking(op, body).unwrap()).unwrap();
        prompt_tokens += answer["usage"]["prompt_tokens"].as_u64().unwrap();
        completion_tokens += answer["usage"]["completion_tokens"].as_u64().unwrap();
    }

    let text = registry
        .call_blocking("services.metrics", r#"{"access_name": "u/metrics-op"}"#)
        .unwrap();
    let raw: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(raw["object"], "list");
    assert_eq!(raw["data"][0]["requests"]["200"], 3, "{raw}");
    let list: modelservice::ServiceMetricsList = serde_json::from_str(&text).unwrap();
    let m = &list.data[0];
    assert_eq!(m.access_name, "u/metrics-op");
    assert_eq!(m.requests, BTreeMap::from([(200, 3)]));
    assert_eq!(m.prompt_tokens, prompt_tokens);
    assert_eq!(m.completion_tokens, completion_tokens);
    assert_eq!(
        m.time_to_first_token.count, 3,
        "one first token per request"
    );
    assert_eq!(m.latency.count, 3);
    assert_eq!(
        m.time_to_first_token.counts.iter().sum::<u64>(),
        m.time_to_first_token.count
    );
    // One source: the JSON is the snapshot `Registry::metrics` (and the server's /metrics) reads.
    assert_eq!(list.data, registry.metrics());
    let all = registry.call_blocking("services.metrics", "{}").unwrap();
    assert_eq!(all, text, "one service: the filter changes nothing");

    let err = registry
        .call_blocking("services.metrics", r#"{"access_name": "u/none"}"#)
        .unwrap_err();
    assert_eq!((err.status(), err.code()), (404, Some("model_not_found")));
    let err = registry
        .call_blocking("services.metrics", r#"{"service": "u/metrics-op"}"#)
        .unwrap_err();
    assert_eq!((err.status(), err.param()), (400, Some("service")));
}
