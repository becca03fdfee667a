//! The guards in front of llama.cpp's aborts (`core/src/guards.rs`), reached the way a caller
//! would reach them: a template that renders nothing, a prompt far longer than any context, and
//! the most slots a context may have.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use modelservice::limits::MAX_SLOTS;
use modelservice::{ChatCompletionRequest, ChatMessage, Registry};

#[test]
fn a_template_that_renders_nothing_is_a_400_not_a_stuck_request() {
    let registry = Registry::new();
    let mut s = spec("u/empty", smollm2());
    s.chat_template = Some(String::new());
    registry.deploy(s).unwrap();
    let started = Instant::now();
    let err = registry
        .chat_blocking(greedy("u/empty", "Hi", 4))
        .unwrap_err();
    assert_eq!(err.status(), 400, "{err}");
    assert_eq!(err.param(), Some("messages"));
    assert!(started.elapsed() < Duration::from_secs(5));
    // The service is still there, running.
    assert!(registry.model("u/empty").is_ok());
}

#[test]
fn a_prompt_longer_than_any_context_is_refused_before_tokenizing() {
    let registry = registry_with("u/long");
    // 64 MiB of text for a 1024-token context: tokenizing it would hold the caller for long.
    let text = "lorem ipsum ".repeat(64 << 20 >> 4);
    let started = Instant::now();
    let err = registry
        .chat_blocking(greedy("u/long", &text, 4))
        .unwrap_err();
    assert_eq!(err.code(), Some("context_length_exceeded"), "{err}");
    assert_eq!(err.param(), Some("messages"));
    // Tokenizing 64 MiB would take minutes; refusing it takes the rendering alone.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "refused in {:?}",
        started.elapsed()
    );
    // A prompt just over the context is still measured in tokens, as before.
    let err = registry
        .chat_blocking(greedy("u/long", &"word ".repeat(1100), 4))
        .unwrap_err();
    assert_eq!(err.code(), Some("context_length_exceeded"));
}

#[test]
fn the_most_slots_decode_together() {
    let registry = Arc::new(Registry::new());
    let mut s = spec("u/slots", smollm2());
    s.slots = MAX_SLOTS;
    s.context_length = Some(32);
    // A bare template keeps the prompt inside 32 tokens.
    s.chat_template = Some("{{ messages[0].content }}".into());
    registry.deploy(s).unwrap();
    let workers: Vec<_> = (0..12)
        .map(|i| {
            let registry = registry.clone();
            std::thread::spawn(move || {
                let mut req = ChatCompletionRequest::new(
                    "u/slots",
                    vec![ChatMessage::user(format!("Count to {i}:"))],
                );
                req.max_tokens = Some(4);
                req.temperature = Some(0.0);
                registry.chat_blocking(req)
            })
        })
        .collect();
    for w in workers {
        let done = w.join().unwrap().expect("every slot serves");
        assert!(done.usage.completion_tokens <= 4);
    }
}

#[test]
fn the_largest_max_tokens_is_refused_not_wrapped() {
    // Found by the request fuzzer: prompt + u32::MAX wrapped to a small sum and was accepted.
    let registry = registry_with("u/max");
    for max in [u32::MAX, u32::MAX - 5, 1024] {
        let err = registry
            .chat_blocking(greedy("u/max", "Hi", max))
            .unwrap_err();
        assert_eq!(err.code(), Some("context_length_exceeded"), "{max}: {err}");
        assert_eq!(err.param(), Some("max_tokens"));
    }
}
