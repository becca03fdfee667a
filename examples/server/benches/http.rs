//! Aggregate throughput over HTTP beside the library's own, in one run, on the same model and
//! service settings: C concurrent clients send N chat completions in all, first straight into a
//! `Registry` in this process, then to the server binary over loopback HTTP.
//!
//! `cargo bench -p modelservice-server --bench http` (or `make bench` in examples/server).
//! Environment: BENCH_CLIENTS (16), BENCH_REQUESTS (64), BENCH_MAX_TOKENS (32), BENCH_SLOTS (4),
//! BENCH_HTTP_FIRST (0).

mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use modelservice::{ChatCompletionRequest, Registry, ServiceSpec};
use modelservice_test_models::smollm2;
use serde_json::{json, Value};

const MODEL: &str = "u-bench/smollm2";
const KEY: &str = "sk-bench";

/// The request every client sends (the `i`th one): every answer runs to `max_tokens`, since
/// SmolLM2's end tokens are banned, so both sides generate the same number of tokens.
fn request_json(i: usize, max_tokens: usize) -> Value {
    json!({
        "model": MODEL,
        "messages": [{"role": "user", "content": format!("Write a short poem about the number {i}.")}],
        "temperature": 0,
        "max_tokens": max_tokens,
        "logit_bias": {"0": -100, "2": -100},
    })
}

struct Run {
    tokens: u64,
    wall: Duration,
    latencies: Vec<Duration>,
}

impl Run {
    fn report(&self, label: &str, requests: usize) {
        let mut l = self.latencies.clone();
        l.sort();
        let pct = |p: f64| l[((l.len() as f64 * p) as usize).min(l.len() - 1)].as_secs_f64();
        println!(
            "{label:<8} {requests:>4} requests  {:>6} tokens  {:>7.2} s  {:>8.1} tokens/s  p50 {:.2} s  p95 {:.2} s",
            self.tokens,
            self.wall.as_secs_f64(),
            self.tokens as f64 / self.wall.as_secs_f64(),
            pct(0.5),
            pct(0.95),
        );
    }
}

fn library(spec: ServiceSpec, clients: usize, requests: usize, max_tokens: usize) -> Run {
    let registry = Arc::new(Registry::new());
    registry.deploy(spec).expect("deploy");
    // One warm-up request, as on the HTTP side.
    let warm = ChatCompletionRequest::from_json(&request_json(0, 4).to_string()).unwrap();
    registry.chat_blocking(warm).expect("warm-up");
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (registry, next) = (registry.clone(), next.clone());
            std::thread::spawn(move || {
                let mut out = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= requests {
                        return out;
                    }
                    let json = request_json(i, max_tokens).to_string();
                    let request = ChatCompletionRequest::from_json(&json).unwrap();
                    let t = Instant::now();
                    let response = registry.chat_blocking(request).expect("completion");
                    out.push((response.usage.completion_tokens as u64, t.elapsed()));
                }
            })
        })
        .collect();
    let mut run = Run {
        tokens: 0,
        wall: Duration::ZERO,
        latencies: Vec::new(),
    };
    for t in threads {
        for (tokens, latency) in t.join().expect("client thread") {
            run.tokens += tokens;
            run.latencies.push(latency);
        }
    }
    run.wall = start.elapsed();
    registry
        .delete(MODEL, "bench")
        .expect("delete the library's service");
    run
}

fn http(spec: &ServiceSpec, clients: usize, requests: usize, max_tokens: usize) -> Run {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("modelservice-server");
    let support::Started {
        mut child,
        base,
        stdout: _stdout,
    } = support::start_server(
        &dir,
        "bench",
        KEY,
        std::slice::from_ref(spec),
        Stdio::inherit(),
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let run = runtime.block_on(async move {
        let client = reqwest::Client::new();
        let url = format!("{base}/v1/chat/completions");
        let send = |client: reqwest::Client, url: String, body: Value| async move {
            let response = client
                .post(url)
                .bearer_auth(KEY)
                .json(&body)
                .send()
                .await
                .expect("sent");
            assert_eq!(response.status(), 200);
            let v: Value = response.json().await.expect("JSON");
            v["usage"]["completion_tokens"].as_u64().expect("usage")
        };
        send(client.clone(), url.clone(), request_json(0, 4)).await;
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let start = Instant::now();
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                let (client, url, next) = (client.clone(), url.clone(), next.clone());
                tokio::spawn(async move {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= requests {
                            return out;
                        }
                        let t = Instant::now();
                        let tokens =
                            send(client.clone(), url.clone(), request_json(i, max_tokens)).await;
                        out.push((tokens, t.elapsed()));
                    }
                })
            })
            .collect();
        let mut run = Run {
            tokens: 0,
            wall: Duration::ZERO,
            latencies: Vec::new(),
        };
        for task in tasks {
            for (tokens, latency) in task.await.expect("client task") {
                run.tokens += tokens;
                run.latencies.push(latency);
            }
        }
        run.wall = start.elapsed();
        run
    });
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
    run
}

fn main() {
    // `cargo bench` passes `--bench`; there is nothing to filter.
    let clients = support::env("BENCH_CLIENTS", 16usize);
    let requests = support::env("BENCH_REQUESTS", 64usize);
    let max_tokens = support::env("BENCH_MAX_TOKENS", 32usize);
    let mut spec = ServiceSpec::new("bench", MODEL, smollm2());
    spec.slots = support::env("BENCH_SLOTS", 4usize);
    spec.context_length = Some(1024);
    // A queue for every client: this measures throughput, not refusals.
    spec.queue_size = clients.max(1);
    println!(
        "SmolLM2-135M Q4_1, 1 instance x {} slots, {clients} clients, {requests} requests, {max_tokens} tokens each",
        spec.slots
    );
    // BENCH_HTTP_FIRST=1 swaps the order, to tell the two apart from a machine that warms up.
    let (lib, net) = if std::env::var("BENCH_HTTP_FIRST").is_ok_and(|v| v == "1") {
        let net = http(&spec, clients, requests, max_tokens);
        (library(spec.clone(), clients, requests, max_tokens), net)
    } else {
        let lib = library(spec.clone(), clients, requests, max_tokens);
        (lib, http(&spec, clients, requests, max_tokens))
    };
    lib.report("library", requests);
    net.report("http", requests);
    let lib_rate = lib.tokens as f64 / lib.wall.as_secs_f64();
    let net_rate = net.tokens as f64 / net.wall.as_secs_f64();
    println!(
        "http / library throughput: {:.2}",
        net_rate / lib_rate.max(f64::MIN_POSITIVE)
    );
}
