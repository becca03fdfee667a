//! The load shapes of issue 17 on the library (no HTTP): four concurrent fresh prompts (time to
//! first token, total) against the same four sent one after another, and many clients sending
//! requests in a loop (aggregate tokens/s). Each shape deploys a fresh service, so no prompt is
//! cached before it starts.
//!
//! `cargo bench -p modelservice --bench load_shapes` (`make bench-peers` runs the same shapes over
//! HTTP beside llama-server); environment: SHAPE_THREADS (default 2), SHAPE_TOKENS (answer
//! length, default 32), SHAPE_CLIENTS (default 16), SHAPE_REQUESTS (per client, default 4),
//! SHAPE_SLOTS (default 4), SHAPE_MODEL (default SmolLM2).

// The shared bench helpers; this bench uses only the stream timer.
#[allow(dead_code)]
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use modelservice::{ChatCompletionRequest, ChatMessage, Registry, ServiceSpec};
use support::{timed_stream_from, Timed};

const QUESTIONS: [&str; 4] = [
    "What is the capital of France?",
    "Name three colours of the rainbow.",
    "Why do cats purr?",
    "How many legs does a spider have?",
];

fn env<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn deploy(registry: &Registry, access: &str, slots: usize) {
    let model = std::env::var("SHAPE_MODEL")
        .map(Into::into)
        .unwrap_or_else(|_| modelservice_test_models::smollm2());
    let mut spec = ServiceSpec::new("shape", access, model);
    spec.threads = Some(env("SHAPE_THREADS", 2));
    spec.slots = slots;
    registry.deploy(spec).unwrap();
}

fn request(access: &str, question: &str, tokens: u32) -> ChatCompletionRequest {
    let mut req = ChatCompletionRequest::new(access, vec![ChatMessage::user(question)]);
    req.temperature = Some(0.0);
    req.max_tokens = Some(tokens);
    req.stream = Some(true);
    req
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn fresh_prompts(tokens: u32) {
    let registry = Arc::new(Registry::new());
    deploy(&registry, "shape/concurrent", 4);
    let start = Instant::now();
    let handles: Vec<_> = QUESTIONS
        .iter()
        .map(|q| {
            let registry = registry.clone();
            let req = request("shape/concurrent", q, tokens);
            std::thread::spawn(move || timed_stream_from(&registry, req, start))
        })
        .collect();
    let results: Vec<Timed> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let mean = results.iter().map(|r| ms(r.first)).sum::<f64>() / 4.0;
    let max = results.iter().map(|r| ms(r.first)).fold(0.0, f64::max);
    let total = results.iter().map(|r| ms(r.end)).fold(0.0, f64::max);
    let copies = registry
        .retrieve("shape/concurrent")
        .unwrap()
        .stats
        .prefix_copies;
    println!(
        "4 concurrent fresh prompts   first token mean {mean:6.0} ms  max {max:6.0} ms   all done {total:6.0} ms   (prefix copies: {copies})"
    );

    let registry = Registry::new();
    deploy(&registry, "shape/serial", 4);
    let start = Instant::now();
    let results: Vec<_> = QUESTIONS
        .iter()
        .map(|q| {
            timed_stream_from(
                &registry,
                request("shape/serial", q, tokens),
                Instant::now(),
            )
            .first
        })
        .collect();
    let mean = results.iter().map(|&d| ms(d)).sum::<f64>() / 4.0;
    println!(
        "the same 4, one after another first token mean {mean:6.0} ms                 all done {:6.0} ms",
        ms(start.elapsed())
    );
}

fn many_clients(slots: usize, clients: usize, requests: usize, tokens: u32) {
    let registry = Arc::new(Registry::new());
    let access = format!("shape/clients{slots}");
    deploy(&registry, &access, slots);
    let failed = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let registry = registry.clone();
            let access = access.clone();
            let failed = failed.clone();
            std::thread::spawn(move || {
                for r in 0..requests {
                    let question = format!("{} (client {c}, request {r})", QUESTIONS[r % 4]);
                    let mut req = request(&access, &question, tokens);
                    req.stream = None;
                    if registry.chat_blocking(req).is_err() {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let generated = registry.retrieve(&access).unwrap().usage.completion_tokens;
    println!(
        "{clients} clients x {requests} requests, {slots} slots   {:6.1} tok/s   ({generated} tokens in {elapsed:.1} s, {} failed)",
        generated as f64 / elapsed,
        failed.load(Ordering::Relaxed)
    );
}

fn main() {
    let tokens = env("SHAPE_TOKENS", 32u32);
    println!(
        "load shapes: {} threads, {tokens} tokens per answer",
        env("SHAPE_THREADS", 2usize)
    );
    fresh_prompts(tokens);
    if env("SHAPE_CLIENTS", 16usize) > 0 {
        many_clients(
            env("SHAPE_SLOTS", 4),
            env("SHAPE_CLIENTS", 16),
            env("SHAPE_REQUESTS", 4),
            tokens,
        );
    }
}
