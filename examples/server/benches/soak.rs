//! The soak: the server binary on 127.0.0.1 under a long mixed load with faults, to show that
//! nothing is lost, nothing hangs and nothing grows.
//!
//! 16 clients send 1,000 chat completions in all (streamed and not, random `max_tokens`, some
//! with `n` > 1); one streamed request in ten hangs up mid-stream. Meanwhile a controller scales
//! the main service 1 → 3 → 1 instances, deletes and redeploys a second service, and sends a
//! burst that overfills the main service's queue. The report: requests answered completely,
//! errors by status and code (429 from the burst, 404/503 from the second service's redeploys
//! are the contract), requests lost or hung (target 0), the server's RSS, threads and file
//! descriptors after warm-up and at the end, and latency percentiles, client-side and from the
//! server's `/metrics`.
//!
//! `make soak` (or `cargo bench -p modelservice-server --bench soak`). Environment:
//! SOAK_REQUESTS (1000), SOAK_CLIENTS (16), SOAK_THREADS (1: the main service's threads),
//! SOAK_SEED (1). Exits non-zero when a request is lost or hung, or an error is outside the
//! contract.

mod support;

use std::collections::BTreeMap;
use std::io::BufReader;
use std::process::{Child, ChildStdout, Command};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use modelservice::ServiceSpec;
use modelservice_test_models::smollm2;

use serde_json::{json, Value};

const MAIN: &str = "u-soak/main";
const SECOND: &str = "u-soak/second";
const KEY: &str = "sk-soak-admin";
/// Longest a request may take before it counts as hung.
const HUNG_AFTER: Duration = Duration::from_secs(180);

/// A small deterministic generator (xorshift), so a run can be repeated by its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// A whole answer: every choice finished, the stream ended with `[DONE]`.
    Answered,
    /// We hung up mid-stream on purpose.
    Disconnected,
    /// An error answer in the OpenAI envelope: status and code.
    Refused(u16, String),
    /// Anything else: a broken connection, a truncated stream, a malformed answer.
    Lost(String),
    /// No answer within `HUNG_AFTER`.
    Hung,
}

struct Server {
    child: Child,
    base: String,
    // Held open: the server may still write to it.
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    fn start(threads: usize) -> Server {
        let dir = std::env::temp_dir().join(format!("modelservice-soak-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut main = ServiceSpec::new("main", MAIN, smollm2());
        main.slots = 4;
        main.context_length = Some(512);
        main.queue_size = 24;
        main.threads = Some(threads);
        let mut second = ServiceSpec::new("second", SECOND, smollm2());
        second.slots = 2;
        second.context_length = Some(256);
        second.queue_size = 8;
        second.threads = Some(1);
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        let started = support::start_server(&dir, "soak", KEY, &[main, second], log.into());
        Server {
            child: started.child,
            base: started.base,
            _stdout: started.stdout,
        }
    }

    /// RSS (KiB), threads, and open file descriptors other than sockets (connections come
    /// and go with the clients) of the server process.
    fn resources(&self) -> (u64, u64, usize) {
        resources(self.child.id())
    }
}

/// [`Server::resources`] of process `pid`.
fn resources(pid: u32) -> (u64, u64, usize) {
    {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| {
                d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                    .filter(|target| !target.to_string_lossy().starts_with("socket:"))
                    .count()
            })
            .unwrap_or(0);
        (field("VmRSS:"), field("Threads:"), fds)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `i`th request of the run: streamed or not, `max_tokens`, `n`, and whether to hang up.
struct Plan {
    model: &'static str,
    stream: bool,
    max_tokens: u64,
    n: u64,
    disconnect: bool,
}

fn plan(rng: &mut Rng) -> Plan {
    let stream = rng.below(2) == 0;
    Plan {
        // One request in eight goes to the service that is deleted and redeployed.
        model: if rng.below(8) == 0 { SECOND } else { MAIN },
        stream,
        max_tokens: 1 + rng.below(48),
        n: if rng.below(10) == 0 { 2 } else { 1 },
        disconnect: stream && rng.below(10) == 0,
    }
}

fn body(plan: &Plan, i: usize) -> Value {
    json!({
        "model": plan.model,
        "messages": [{"role": "user", "content": format!("Tell me something about the number {i}.")}],
        "max_tokens": plan.max_tokens,
        "n": plan.n,
        "stream": plan.stream,
        "temperature": 0.7,
        "seed": i,
    })
}

/// An error with its causes, which say what reqwest's own message does not.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// An error answer's status and code, or why it is not one.
async fn refusal(response: reqwest::Response) -> Outcome {
    let status = response.status().as_u16();
    match response.json::<Value>().await {
        Ok(v) => match v["error"]["code"].as_str() {
            Some(code) => Outcome::Refused(status, code.to_owned()),
            None => Outcome::Lost(format!("{status} without an error envelope: {v}")),
        },
        Err(e) => Outcome::Lost(format!("{status} with an unreadable body: {e}")),
    }
}

/// Sends one request and classifies how it ended.
async fn run_one(client: &reqwest::Client, base: &str, plan: &Plan, i: usize) -> Outcome {
    let send = client
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(&body(plan, i))
        .send();
    let response = match send.await {
        Ok(r) => r,
        Err(e) => return Outcome::Lost(format!("send: {}", chain(&e))),
    };
    if response.status() != 200 {
        return refusal(response).await;
    }
    if !plan.stream {
        return match response.json::<Value>().await {
            Ok(v)
                if v["choices"].as_array().map(Vec::len) == Some(plan.n as usize)
                    && v["choices"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .all(|c| c["finish_reason"].is_string()) =>
            {
                Outcome::Answered
            }
            Ok(v) => Outcome::Lost(format!("incomplete answer: {v}")),
            Err(e) => Outcome::Lost(format!("body: {e}")),
        };
    }
    let mut stream = response.bytes_stream();
    let mut text = String::new();
    let mut events = 0;
    let mut finished = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => return Outcome::Lost(format!("stream: {}", chain(&e))),
        };
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let event: String = text.drain(..end + 2).collect();
            let Some(data) = event.trim().strip_prefix("data: ") else {
                continue;
            };
            if data == "[DONE]" {
                return if finished == plan.n {
                    Outcome::Answered
                } else {
                    Outcome::Lost(format!("[DONE] after {finished} of {} choices", plan.n))
                };
            }
            let v: Value = match serde_json::from_str(data) {
                Ok(v) => v,
                Err(e) => return Outcome::Lost(format!("event {data}: {e}")),
            };
            if let Some(code) = v["error"]["code"].as_str() {
                return Outcome::Refused(200, format!("mid-stream {code}"));
            }
            if v["choices"][0]["finish_reason"].is_string() {
                finished += 1;
            }
            events += 1;
            if plan.disconnect && events == 3 {
                return Outcome::Disconnected;
            }
        }
    }
    Outcome::Lost("the stream ended without [DONE]".into())
}

/// Whether an error answer is one the contract allows here.
fn allowed(outcome: &Outcome, model: &str) -> bool {
    match outcome {
        Outcome::Refused(429, code) => code == "queue_full",
        Outcome::Refused(404, code) => model == SECOND && code == "model_not_found",
        Outcome::Refused(503, code) => model == SECOND && code == "service_not_running",
        _ => false,
    }
}

/// The value of one `/metrics` sample.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// A quantile from a `/metrics` histogram: the upper bound of the bucket that holds it.
fn metrics_quantile(text: &str, name: &str, service: &str, q: f64) -> Option<String> {
    let prefix = format!("{name}_bucket{{service=\"{service}\",le=\"");
    let buckets: Vec<(String, f64)> = text
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(&prefix)?;
            let (le, value) = rest.split_once("\"} ")?;
            Some((le.to_owned(), value.parse().ok()?))
        })
        .collect();
    let total = buckets.last()?.1;
    let rank = (q * total).ceil().max(1.0);
    buckets
        .iter()
        .find(|(_, c)| *c >= rank)
        .map(|(le, _)| format!("≤ {le} s"))
}

async fn admin(client: &reqwest::Client, method: &str, base: &str, path: &str, body: Value) -> u16 {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    client
        .request(method, format!("{base}{path}"))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// Scales the main service 1 → 3 → 1, deletes and redeploys the second one, and sends a burst
/// past the main queue, until the clients are done. Returns what it did.
async fn controller(
    client: reqwest::Client,
    base: String,
    done: Arc<AtomicBool>,
    burst: Arc<Mutex<Vec<Outcome>>>,
    first_round: tokio::sync::oneshot::Sender<()>,
) -> Vec<String> {
    let mut first_round = Some(first_round);
    let model = smollm2().display().to_string();
    let mut log = Vec::new();
    let mut round = 0;
    while !done.load(Ordering::Relaxed) {
        round += 1;
        for instances in [3, 1] {
            let path = format!("/v1/services/{MAIN}");
            let status = admin(
                &client,
                "PATCH",
                &base,
                &path,
                json!({"instances": instances}),
            )
            .await;
            log.push(format!("scale {MAIN} to {instances}: {status}"));
            tokio::time::sleep(Duration::from_secs(4)).await;
        }
        let status = admin(
            &client,
            "DELETE",
            &base,
            &format!("/v1/services/{SECOND}?confirm=second"),
            Value::Null,
        )
        .await;
        log.push(format!("delete {SECOND}: {status}"));
        tokio::time::sleep(Duration::from_secs(1)).await;
        let spec = json!({"name": "second", "access_name": SECOND, "model": model,
            "slots": 2, "context_length": 256, "queue_size": 8, "threads": 1});
        let status = admin(&client, "POST", &base, "/v1/services", spec).await;
        log.push(format!("deploy {SECOND}: {status}"));
        if let Some(tx) = first_round.take() {
            let _ = tx.send(());
        }
        if round == 2 {
            // The burst: far more unstreamed requests at once than slots plus queue.
            let sends: Vec<_> = (0..48)
                .map(|i| {
                    let (client, base) = (client.clone(), base.clone());
                    async move {
                        let plan = Plan {
                            model: MAIN,
                            stream: false,
                            max_tokens: 8,
                            n: 1,
                            disconnect: false,
                        };
                        run_one(&client, &base, &plan, 100_000 + i).await
                    }
                })
                .collect();
            let outcomes = futures_util::future::join_all(sends).await;
            log.push(format!(
                "burst of 48: {} answered, {} refused 429",
                outcomes.iter().filter(|o| **o == Outcome::Answered).count(),
                outcomes
                    .iter()
                    .filter(|o| matches!(o, Outcome::Refused(429, _)))
                    .count()
            ));
            burst.lock().unwrap().extend(outcomes);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    log
}

fn main() {
    let requests = support::env("SOAK_REQUESTS", 1000usize);
    let clients = support::env("SOAK_CLIENTS", 16usize);
    let threads = support::env("SOAK_THREADS", 1usize);
    let seed = support::env("SOAK_SEED", 1u64);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = Server::start(threads);
    let base = server.base.clone();
    println!("soak: {requests} requests, {clients} clients, server {base}");
    let failed = runtime.block_on(async move {
        // Idle pooled connections are dropped well before the server's idle timeout (30 s)
        // closes them, as the `openai` clients do (5 s), so no request races a closing one.
        let client = reqwest::Client::builder()
            .timeout(HUNG_AFTER)
            .pool_idle_timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        // Warm-up: a few requests so the figures after it are the steady state.
        for i in 0..4 {
            let plan = Plan {
                model: MAIN,
                stream: i % 2 == 0,
                max_tokens: 8,
                n: 1,
                disconnect: false,
            };
            assert_eq!(
                run_one(&client, &base, &plan, i).await,
                Outcome::Answered,
                "warm-up"
            );
        }
        let pid = server.child.id();
        let (first_round, after_first_round) = tokio::sync::oneshot::channel();
        // The warm figures: after the first round of the controller (a scale 1 → 3 → 1 and a
        // redeploy have each happened once), under load.
        let warm = tokio::spawn(async move {
            let _ = after_first_round.await;
            resources(pid)
        });
        let next = Arc::new(AtomicUsize::new(0));
        let results = Arc::new(Mutex::new(Vec::<(Outcome, &'static str, Duration)>::new()));
        let done = Arc::new(AtomicBool::new(false));
        let burst = Arc::new(Mutex::new(Vec::new()));
        let control = tokio::spawn(controller(
            client.clone(),
            base.clone(),
            done.clone(),
            burst.clone(),
            first_round,
        ));
        let start = Instant::now();
        let tasks: Vec<_> = (0..clients)
            .map(|c| {
                let (client, base, next, results) =
                    (client.clone(), base.clone(), next.clone(), results.clone());
                tokio::spawn(async move {
                    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                        ^ ((c as u64 + 1) * 0x2545_F491_4F6C_DD1D));
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= requests {
                            return;
                        }
                        let plan = plan(&mut rng);
                        let began = Instant::now();
                        let outcome = match tokio::time::timeout(
                            HUNG_AFTER,
                            run_one(&client, &base, &plan, i),
                        )
                        .await
                        {
                            Ok(o) => o,
                            Err(_) => Outcome::Hung,
                        };
                        results
                            .lock()
                            .unwrap()
                            .push((outcome, plan.model, began.elapsed()));
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let wall = start.elapsed();
        done.store(true, Ordering::Relaxed);
        let actions = control.await.unwrap();
        let warm = warm.await.unwrap();
        // Let cancelled generations stop and connections close before the last reading.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let end = server.resources();
        let metrics = client
            .get(format!("{base}/metrics"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();

        let results = results.lock().unwrap();
        let mut by_outcome: BTreeMap<String, usize> = BTreeMap::new();
        let mut failures = Vec::new();
        let mut latencies: Vec<Duration> = Vec::new();
        for (outcome, model, elapsed) in results.iter().chain(
            burst
                .lock()
                .unwrap()
                .iter()
                .map(|o| (o.clone(), MAIN, Duration::ZERO))
                .collect::<Vec<_>>()
                .iter(),
        ) {
            let key = match outcome {
                Outcome::Answered => "answered completely".to_owned(),
                Outcome::Disconnected => "hung up mid-stream (on purpose)".to_owned(),
                Outcome::Refused(s, code) => format!("error {s} {code} ({model})"),
                Outcome::Lost(_) => "LOST".to_owned(),
                Outcome::Hung => "HUNG".to_owned(),
            };
            *by_outcome.entry(key).or_default() += 1;
            match outcome {
                Outcome::Answered if !elapsed.is_zero() => latencies.push(*elapsed),
                Outcome::Answered | Outcome::Disconnected => {}
                o if allowed(o, model) => {}
                o => failures.push(format!("{o:?} ({model})")),
            }
        }
        latencies.sort();
        let pct = |p: f64| {
            latencies
                .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
                .map_or(0.0, |d| d.as_secs_f64())
        };

        println!("\n| figure | value |\n|---|---|");
        println!(
            "| requests (clients + burst) | {} + {} |",
            results.len(),
            burst.lock().unwrap().len()
        );
        for (k, v) in &by_outcome {
            println!("| {k} | {v} |");
        }
        println!("| lost or hung | {} |", failures.len());
        println!("| wall time | {:.1} s |", wall.as_secs_f64());
        println!(
            "| latency p50 / p99 (answered, client side) | {:.2} s / {:.2} s |",
            pct(0.5),
            pct(0.99)
        );
        let service = MAIN;
        println!(
            "| latency p50 / p99 ({service}, /metrics buckets) | {} / {} |",
            metrics_quantile(
                &metrics,
                "modelservice_request_duration_seconds",
                service,
                0.5
            )
            .unwrap_or_default(),
            metrics_quantile(
                &metrics,
                "modelservice_request_duration_seconds",
                service,
                0.99
            )
            .unwrap_or_default()
        );
        println!(
            "| time to first token p50 / p99 ({service}, /metrics) | {} / {} |",
            metrics_quantile(
                &metrics,
                "modelservice_time_to_first_token_seconds",
                service,
                0.5
            )
            .unwrap_or_default(),
            metrics_quantile(
                &metrics,
                "modelservice_time_to_first_token_seconds",
                service,
                0.99
            )
            .unwrap_or_default()
        );
        for status in ["200", "429", "499"] {
            println!(
                "| /metrics {service} requests with status {status} | {} |",
                sample(
                    &metrics,
                    &format!(
                        "modelservice_requests_total{{service=\"{service}\",status=\"{status}\"}}"
                    )
                )
                .unwrap_or(0.0)
            );
        }
        println!(
            "| /metrics {service} tokens generated / queue depth at the end | {} / {} |",
            sample(
                &metrics,
                &format!("modelservice_completion_tokens_total{{service=\"{service}\"}}")
            )
            .unwrap_or(0.0),
            sample(
                &metrics,
                &format!("modelservice_queue_depth{{service=\"{service}\"}}")
            )
            .unwrap_or(-1.0)
        );
        println!(
            "| server RSS after warm-up → end | {} MiB → {} MiB |",
            warm.0 / 1024,
            end.0 / 1024
        );
        println!(
            "| server threads after warm-up → end | {} → {} |",
            warm.1, end.1
        );
        println!(
            "| server fds after warm-up → end | {} → {} |",
            warm.2, end.2
        );
        let mut done_actions: BTreeMap<&str, usize> = BTreeMap::new();
        for action in &actions {
            *done_actions.entry(action.as_str()).or_default() += 1;
        }
        let summary: Vec<String> = done_actions
            .iter()
            .map(|(action, n)| format!("{n} × {action}"))
            .collect();
        println!("\ncontroller: {}", summary.join("; "));
        for f in failures.iter().take(20) {
            println!("FAILED: {f}");
        }
        let mut problems = failures;
        // Bounds on growth: threads and fds back to their warm level (a scaled-down instance
        // leaves no thread; closed connections no fd), memory within 25% of it.
        if end.1 > warm.1 + 2 {
            problems.push(format!("threads grew {} → {}", warm.1, end.1));
        }
        if end.2 > warm.2 + 4 {
            problems.push(format!("file descriptors grew {} → {}", warm.2, end.2));
        }
        if end.0 > warm.0 + warm.0 / 4 {
            problems.push(format!("RSS grew {} → {} KiB", warm.0, end.0));
        }
        problems
    });
    if !failed.is_empty() {
        eprintln!("soak failed: {}", failed.join("; "));
        std::process::exit(1);
    }
    println!("soak passed");
}
