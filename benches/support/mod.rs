//! Shared by the library benchmarks (each bench file is its own crate and includes this).

use std::sync::Arc;
use std::time::{Duration, Instant};

use modelservice::{ChatCompletionRequest, Registry};

/// Concurrency levels from a comma-separated environment variable (`1,8,32`), else `default`.
pub fn levels(var: &str, default: &str) -> Vec<usize> {
    std::env::var(var)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|n| {
            n.trim()
                .parse()
                .unwrap_or_else(|_| panic!("{var}: numbers, got {n:?}"))
        })
        .collect()
}

/// One streamed request: (time to first text, decode tokens/s after it, text pieces).
pub fn timed_stream(registry: &Registry, req: ChatCompletionRequest) -> (Duration, f64, u32) {
    let timed = timed_stream_from(registry, req, Instant::now());
    let decoding = (timed.end - timed.first).as_secs_f64();
    (
        timed.first,
        f64::from(timed.pieces.saturating_sub(1)) / decoding,
        timed.pieces,
    )
}

/// When one streamed request's first text and its end came, counted from `start` (a start
/// shared by requests sent together), and how many pieces of text it streamed.
pub struct Timed {
    pub first: Duration,
    pub end: Duration,
    pub pieces: u32,
}

pub fn timed_stream_from(registry: &Registry, req: ChatCompletionRequest, start: Instant) -> Timed {
    let mut stream = registry.chat_stream(req).unwrap();
    let mut first = None;
    let mut pieces = 0u32;
    while let Some(chunk) = stream.next_blocking() {
        let chunk = chunk.unwrap();
        if chunk
            .choices
            .first()
            .and_then(|c| c.delta.content.as_deref())
            .is_some_and(|t| !t.is_empty())
        {
            first.get_or_insert_with(|| start.elapsed());
            pieces += 1;
        }
    }
    Timed {
        first: first.expect("some text"),
        end: start.elapsed(),
        pieces,
    }
}

/// What a service did for a set of requests sent at once, each on its own thread.
pub struct Concurrent {
    /// Completion tokens of all of them.
    pub generated: u64,
    pub seconds: f64,
    pub steps: u64,
}

impl Concurrent {
    pub fn tokens_per_second(&self) -> f64 {
        self.generated as f64 / self.seconds
    }
}

/// Sends `requests` to `access` at once and waits for every answer.
pub fn concurrent(
    registry: &Arc<Registry>,
    access: &str,
    requests: Vec<ChatCompletionRequest>,
) -> Concurrent {
    let before = registry.retrieve(access).unwrap();
    let start = Instant::now();
    let workers: Vec<_> = requests
        .into_iter()
        .map(|req| {
            let registry = registry.clone();
            std::thread::spawn(move || {
                registry
                    .chat_stream(req)
                    .unwrap()
                    .collect_blocking()
                    .unwrap()
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let seconds = start.elapsed().as_secs_f64();
    let after = registry.retrieve(access).unwrap();
    Concurrent {
        generated: after.usage.completion_tokens - before.usage.completion_tokens,
        seconds,
        steps: after.stats.decode_steps - before.stats.decode_steps,
    }
}
