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
