//! Resource limits of a service spec on the real models: a spec the machine cannot run is
//! refused with a 400 naming the field and the bound, before anything is loaded or allocated.

mod common;

use std::time::{Duration, Instant};

use common::*;
use modelservice::limits::{max_threads, MAX_INSTANCES};
use modelservice::Registry;

/// 256 slots × 8192 tokens × 64 instances: terabytes of KV cache.
fn huge(access_name: &str, model: std::path::PathBuf) -> modelservice::ServiceSpec {
    let mut s = spec(access_name, model);
    s.slots = 256;
    s.context_length = Some(8192);
    s.instances = MAX_INSTANCES;
    s
}

#[test]
fn a_kv_cache_larger_than_the_machine_is_refused_before_loading() {
    let registry = Registry::new();
    let started = Instant::now();
    for (model, per_token) in [
        // 30 layers × 3 KV heads × (64 + 64) dims × 2 bytes.
        (smollm2(), "22.5 KiB per token over 30 layers"),
        // 18 layers × 1 KV head × (256 + 256) dims × 2 bytes.
        (gemma3(), "18.0 KiB per token over 18 layers"),
    ] {
        let err = registry.deploy(huge("u/huge", model)).unwrap_err();
        assert_eq!(err.status(), 400, "{err}");
        assert_eq!(err.code(), Some("invalid_value"));
        assert_eq!(err.param(), Some("context_length"));
        let message = err.to_string();
        assert!(
            message.contains("256 slots × 8192 tokens × 64 instances"),
            "{message}"
        );
        assert!(message.contains(per_token), "{message}");
        assert!(message.contains("available"), "{message}");
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(registry.models().data.is_empty());
}

#[test]
fn the_field_blamed_is_the_one_set() {
    let registry = Registry::new();
    let mut s = spec("u/slots", smollm2());
    s.context_length = None;
    s.slots = 256;
    s.instances = MAX_INSTANCES;
    assert_eq!(registry.deploy(s).unwrap_err().param(), Some("slots"));
}

#[test]
fn absurd_threads_are_refused_not_run() {
    let registry = Registry::new();
    let mut s = spec("u/threads", smollm2());
    s.threads = Some(10_000);
    let started = Instant::now();
    let err = registry.deploy(s).unwrap_err();
    assert_eq!(err.param(), Some("threads"), "{err}");
    assert!(
        err.to_string().contains(&max_threads().to_string()),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
}

/// `gpu_layers` where llama.cpp has no GPU would run every layer on the CPU without a word: a
/// 400 naming the field instead, for a chat and an embedding model; 0 is served.
#[test]
fn gpu_layers_without_a_gpu_are_refused_not_ignored() {
    let registry = Registry::new();
    if registry_has_gpu() {
        return; // this test is about machines without one
    }
    for model in [smollm2(), minilm()] {
        let mut s = spec("u/gpu", model);
        s.gpu_layers = 999;
        let err = registry.deploy(s).unwrap_err();
        assert_eq!(
            (err.status(), err.param()),
            (400, Some("gpu_layers")),
            "{err}"
        );
        let message = err.to_string();
        assert!(message.contains("no GPU"), "{message}");
        assert!(message.contains("`cuda` feature"), "{message}");
    }
    assert!(registry.models().data.is_empty());
    let mut s = spec("u/gpu", smollm2());
    s.gpu_layers = 0;
    registry.deploy(s).unwrap();
    registry
        .chat_blocking(greedy("u/gpu", "Say hi.", 4))
        .expect("served on the CPU");
}

/// Whether llama.cpp registered a GPU (a `cuda` build on a machine with one).
fn registry_has_gpu() -> bool {
    modelservice::cpu_backend::load().unwrap();
    modelservice::limits::gpu_count() > 0
}

#[test]
fn scaling_is_bounded_too() {
    let registry = registry_with("u/scale");
    let err = registry.scale("u/scale", MAX_INSTANCES + 1).unwrap_err();
    assert_eq!(err.status(), 400);
    assert_eq!(err.param(), Some("instances"));
    // Still one instance, and still scalable.
    assert_eq!(registry.scale("u/scale", 1).unwrap().instances, 1);
    registry
        .chat_blocking(greedy("u/scale", "Say hi.", 4))
        .expect("the service still serves");
}

/// A request with more sequences (prompts × `n`) than the service can ever hold is a 400 naming
/// the field, not a 429 that no retry gets past; one that fits is served.
#[test]
fn more_sequences_than_the_service_can_hold_is_a_400() {
    let registry = std::sync::Arc::new(Registry::new());
    let mut s = spec("u/capacity", smollm2());
    s.slots = 1;
    s.queue_size = 2;
    registry.deploy(s).unwrap();
    let chat = |n: u32| {
        format!(
            r#"{{"model": "u/capacity", "messages": [{{"role": "user", "content": "Hi"}}], "max_tokens": 2, "n": {n}}}"#
        )
    };
    let err = registry
        .call_blocking("chat.completions.create", &chat(4))
        .unwrap_err();
    assert_eq!(
        (err.status(), err.kind(), err.param()),
        (400, "invalid_request_error", Some("n")),
        "{err}"
    );
    let message = err.to_string();
    assert!(message.contains("needs 4 sequences"), "{message}");
    assert!(message.contains("at most 3"), "{message}");
    // Exactly the capacity: every sequence has a slot or a queue place.
    let answer = registry
        .call_blocking("chat.completions.create", &chat(3))
        .unwrap();
    assert!(answer.contains(r#""index":2"#), "{answer}");

    let text = |prompt: &str, n: u32| {
        format!(r#"{{"model": "u/capacity", "prompt": {prompt}, "max_tokens": 2, "n": {n}}}"#)
    };
    let err = registry
        .call_blocking("completions.create", &text(r#"["a", "b"]"#, 2))
        .unwrap_err();
    assert_eq!((err.status(), err.param()), (400, Some("prompt")), "{err}");
    assert!(err.to_string().contains("at most 3"), "{err}");
    let err = registry
        .call_blocking("completions.create", &text(r#""a""#, 4))
        .unwrap_err();
    assert_eq!((err.status(), err.param()), (400, Some("n")), "{err}");
    // A slot is released just after its answer is sent: wait until the service is idle.
    let deadline = Instant::now() + Duration::from_secs(10);
    while registry.metrics()[0].running > 0 {
        assert!(Instant::now() < deadline, "the service never went idle");
        std::thread::sleep(Duration::from_millis(10));
    }
    registry
        .call_blocking("completions.create", &text(r#"["a", "b", "c"]"#, 1))
        .unwrap();
    // Refused before queueing: nothing is left waiting.
    assert_eq!(registry.metrics()[0].queue_depth, 0);
}
