//! Our server beside llama-server over loopback HTTP, in one run, on the same model, threads,
//! context per slot and greedy requests; each figure is printed next to the peer's with the
//! ratio and the load average of the minutes it was measured in (other builds share the machine).
//!
//! Shapes (issue 17): four concurrent fresh prompts with the same chat template (mean and max
//! time to first token, total time) and the same four sent one after another; C clients sending
//! N requests in all at 4 and at 8 slots (tokens/s, failed); time to first token when a long
//! prompt's prefix is already cached, and when the whole request is repeated (a regenerated
//! answer); and, given llama-batched-bench, its aggregate tokens/s
//! beside the library's for 4 sequences.
//!
//! `make bench-peers` builds the peers and runs this; by hand:
//! `PEERS_LLAMA_BIN=<dir with llama-server> cargo bench -p modelservice-server --bench peers`.
//! Environment: PEERS_THREADS (2), PEERS_CONTEXT (per slot, 1024), PEERS_ROUNDS (3),
//! PEERS_CLIENTS (16), PEERS_REQUESTS (in all, 64), PEERS_LOAD_ROUNDS (4), PEERS_LOAD_TOKENS (128),
//! PEERS_MODEL.

mod support;

use std::io::BufReader;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use modelservice::{ChatCompletionRequest, Registry, ServiceSpec};
use serde_json::{json, Value};
use support::env;

const MODEL: &str = "u-peers/smollm2";
const KEY: &str = "sk-peers";
/// Tokens of each answer in the fresh-prompt and cached-prefix shapes.
const SHORT_ANSWER: u32 = 32;
const QUESTIONS: [&str; 4] = [
    "What is the capital of France?",
    "Name three colours of the rainbow.",
    "Why do cats purr?",
    "How many legs does a spider have?",
];

struct Setup {
    model: PathBuf,
    llama_bin: PathBuf,
    threads: usize,
    context: u32,
    rounds: usize,
}

/// A server process, killed when dropped.
struct Server {
    name: &'static str,
    url: String,
    child: Child,
    // Held open: the server may still write to it.
    _stdout: Option<BufReader<ChildStdout>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn scratch() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("peers");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn ours(setup: &Setup, slots: usize) -> Server {
    let mut spec = ServiceSpec::new("peers", MODEL, setup.model.clone());
    spec.slots = slots;
    spec.threads = Some(setup.threads);
    spec.context_length = Some(setup.context);
    spec.queue_size = 256;
    let started = support::start_server(&scratch(), "ours", KEY, &[spec], Stdio::inherit());
    Server {
        name: "modelservice",
        url: format!("{}/v1/chat/completions", started.base),
        child: started.child,
        _stdout: Some(started.stdout),
    }
}

/// A peer program, run without the library search path `cargo bench` sets: that leads to our
/// own llama.cpp libraries, another version, which the peers' binaries would load and crash on.
fn peer_command(program: &Path) -> Command {
    let mut command = Command::new(program);
    command.env_remove("LD_LIBRARY_PATH");
    command
}

fn llama_server(setup: &Setup, slots: usize) -> Server {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = std::fs::File::create(scratch().join(format!("llama-server-{slots}.log"))).unwrap();
    let threads = setup.threads.to_string();
    let child = peer_command(&setup.llama_bin.join("llama-server"))
        .arg("-m")
        .arg(&setup.model)
        .args(["-t", &threads, "-tb", &threads])
        // `-c` is the whole context: split evenly over `-np` slots without a unified KV cache,
        // which is our layout (one stream of `context` cells per slot).
        .args(["-c", &(setup.context as usize * slots).to_string()])
        .args(["-np", &slots.to_string(), "--no-kv-unified"])
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--no-webui",
        ])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start llama-server (make bench-peers builds it)");
    let server = Server {
        name: "llama-server",
        url: format!("http://127.0.0.1:{port}/v1/chat/completions"),
        child,
        _stdout: None,
    };
    // /health answers 503 while the model loads.
    let host = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(180);
    while !answers_ok(&host, "/health") {
        assert!(Instant::now() < deadline, "llama-server did not start");
        std::thread::sleep(Duration::from_millis(200));
    }
    server
}

/// Whether GET `path` on `host` answers 200 (one blocking HTTP/1.0 exchange: no runtime needed).
fn answers_ok(host: &str, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(host) else {
        return false;
    };
    let mut head = [0u8; 12];
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").is_ok()
        && s.read_exact(&mut head).is_ok()
        && head.ends_with(b"200")
}

fn body(messages: Value, max_tokens: u32, stream: bool) -> Value {
    let mut body = json!({
        "model": MODEL,
        "messages": messages,
        "temperature": 0,
        "max_tokens": max_tokens,
        // SmolLM2's end tokens banned: every answer runs to `max_tokens` on both sides.
        "logit_bias": {"0": -100, "2": -100},
    });
    if stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

fn user(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

/// A new connection per request on both sides: llama-server closes connections that a pooled
/// client would reuse ("error sending request").
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// One streamed answer: time to the first text (from `start`), to the end, and its tokens.
struct Timing {
    first: Duration,
    end: Duration,
    tokens: u64,
}

async fn stream(
    client: &reqwest::Client,
    url: &str,
    body: &Value,
    start: Instant,
) -> Result<Timing, String> {
    let response = client
        .post(url)
        .bearer_auth(KEY)
        .json(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status()));
    }
    let mut bytes = response.bytes_stream();
    let (mut buf, mut first, mut tokens) = (Vec::new(), None, 0);
    while let Some(piece) = bytes.next().await {
        buf.extend_from_slice(&piece.map_err(|e| e.to_string())?);
        while let Some(end) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let Some(data) = line.trim().strip_prefix("data:").map(str::trim) else {
                continue;
            };
            if data == "[DONE]" {
                continue;
            }
            let chunk: Value = serde_json::from_str(data).map_err(|e| e.to_string())?;
            if chunk["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
            {
                first.get_or_insert_with(|| start.elapsed());
            }
            if let Some(n) = chunk["usage"]["completion_tokens"].as_u64() {
                tokens = n;
            }
        }
    }
    Ok(Timing {
        first: first.ok_or("no text")?,
        end: start.elapsed(),
        tokens,
    })
}

async fn complete(client: &reqwest::Client, url: &str, body: &Value) -> Result<u64, String> {
    let response = client
        .post(url)
        .bearer_auth(KEY)
        .json(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status()));
    }
    let v: Value = response.json().await.map_err(|e| e.to_string())?;
    v["usage"]["completion_tokens"]
        .as_u64()
        .ok_or_else(|| "no usage".into())
}

/// Our service's `stats.stopped_steps` (thread-pool guard stops) from `GET /v1/services`.
async fn stopped_steps(ours: &Server) -> Option<u64> {
    let url = ours.url.replace("/chat/completions", "/services");
    let list: Value = client()
        .get(url)
        .bearer_auth(KEY)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    list["data"]
        .as_array()?
        .iter()
        .map(|s| s["stats"]["stopped_steps"].as_u64())
        .sum()
}

fn load() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// One line of the table: our figure, the peer's, and the load average while they were taken.
struct Row {
    figure: String,
    ours: f64,
    peer: f64,
    unit: &'static str,
    target: &'static str,
    load: (f64, f64),
}

impl Row {
    fn print(&self) {
        let digits = if self.unit == "x" { 2 } else { 1 };
        // No ratio of counts that can be zero (failed requests).
        let ratio = if self.unit.is_empty() {
            "-".to_owned()
        } else {
            format!("{:.2}", self.ours / self.peer)
        };
        println!(
            "{:<46} {:>9.digits$} {:>9.digits$} {:<6} {:>6}  {:<8} load {:.1}-{:.1}",
            self.figure,
            self.ours,
            self.peer,
            self.unit,
            ratio,
            self.target,
            self.load.0,
            self.load.1
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// The many-clients target: ours / llama-server tokens/s.
const LOAD_TARGET: f64 = 1.05;

/// The mean of per-round ratios with its 95% confidence interval (Student's t), and where
/// `target` falls: a round swings by ±10% on these machines, so one mean alone can mislead.
fn interval(ratios: &[f64], target: f64) -> String {
    let n = ratios.len();
    let m = mean(ratios);
    if n < 2 {
        return format!("mean {m:.2} (one round: no interval)");
    }
    let var = ratios.iter().map(|r| (r - m).powi(2)).sum::<f64>() / (n - 1) as f64;
    // Two-sided 95% quantiles of Student's t for 1..=10 degrees of freedom, then ~1.96 + 2.4/df.
    const T95: [f64; 10] = [12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23];
    let df = n - 1;
    let t = T95.get(df - 1).copied().unwrap_or(1.96 + 2.4 / df as f64);
    let half = t * (var / n as f64).sqrt();
    let (lo, hi) = (m - half, m + half);
    // The words of the single stream's verdict (benches/peers/single-stream.mjs).
    let verdict = if lo >= target {
        "meets"
    } else if hi < target {
        "misses"
    } else {
        "cannot tell"
    };
    format!("mean {m:.2}, 95% interval {lo:.2}-{hi:.2}: {verdict} the target >= {target:.2}")
}

/// What one server did with four fresh prompts, concurrent and then serial, over the rounds.
#[derive(Default)]
struct Fresh {
    mean_first: Vec<f64>,
    max_first: Vec<f64>,
    total: Vec<f64>,
    serial_first: Vec<f64>,
    serial_total: Vec<f64>,
}

async fn fresh_round(client: &reqwest::Client, server: &Server, tag: &str, out: &mut Fresh) {
    // The tag leads the user message, so only the chat template's prefix is shared.
    let ask = |k: usize, mode: &str| {
        body(
            user(&format!("[{tag}{mode}{k}] {}", QUESTIONS[k])),
            SHORT_ANSWER,
            true,
        )
    };
    let start = Instant::now();
    let answers = futures_util::future::join_all((0..4).map(|k| {
        let body = ask(k, "c");
        async move { stream(client, &server.url, &body, start).await }
    }))
    .await;
    let answers: Vec<Timing> = answers
        .into_iter()
        .map(|a| a.unwrap_or_else(|e| panic!("{}: {e}", server.name)))
        .collect();
    // Equal work on both sides: usage must show every answer ran to its budget.
    let short = answers
        .iter()
        .filter(|a| a.tokens != u64::from(SHORT_ANSWER));
    assert_eq!(
        short.count(),
        0,
        "{}: an answer was not {SHORT_ANSWER} tokens",
        server.name
    );
    let firsts: Vec<f64> = answers.iter().map(|a| ms(a.first)).collect();
    out.mean_first.push(mean(&firsts));
    out.max_first
        .push(firsts.iter().copied().fold(0.0, f64::max));
    out.total
        .push(answers.iter().map(|a| ms(a.end)).fold(0.0, f64::max));
    let start = Instant::now();
    let mut firsts = Vec::new();
    for k in 0..4 {
        let t = stream(client, &server.url, &ask(k, "s"), Instant::now())
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", server.name));
        firsts.push(ms(t.first));
    }
    out.serial_first.push(mean(&firsts));
    out.serial_total.push(ms(start.elapsed()));
}

/// A system prompt of about 400 tokens that starts with `tag` (a new tag: nothing cached).
fn long_system(tag: &str) -> String {
    let mut s = format!("Session {tag}. You are the help desk of a lighthouse museum.");
    for k in 1..=24 {
        s.push_str(&format!(
            " Rule {k}: answer visitors politely, mention exhibit {k} when it helps, and keep answers short."
        ));
    }
    s
}

/// Time to first token of a long prompt: fresh; with its prefix cached (the second request
/// repeats the first one's system prompt with another question); and the second request exactly
/// repeated.
async fn cached_round(client: &reqwest::Client, server: &Server, tag: &str) -> [f64; 3] {
    let system = long_system(tag);
    let ask = |q: &str| {
        body(
            json!([{"role": "system", "content": system}, {"role": "user", "content": q}]),
            SHORT_ANSWER,
            true,
        )
    };
    let mut firsts = [0.0; 3];
    for (k, first) in firsts.iter_mut().enumerate() {
        let question = QUESTIONS[k.min(1)];
        let t = stream(client, &server.url, &ask(question), Instant::now())
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", server.name));
        *first = ms(t.first);
    }
    firsts
}

async fn warm_up(client: &reqwest::Client, server: &Server) {
    stream(
        client,
        &server.url,
        &body(user("Hello!"), 4, true),
        Instant::now(),
    )
    .await
    .unwrap_or_else(|e| panic!("{} warm-up: {e}", server.name));
}

/// The 4-slot shapes: fresh prompts, then cached prefixes, both servers up, rounds alternating.
async fn at_four_slots(setup: &Setup, rows: &mut Vec<Row>) {
    let servers = [ours(setup, 4), llama_server(setup, 4)];
    let client = client();
    for s in &servers {
        warm_up(&client, s).await;
    }
    let mut fresh = [Fresh::default(), Fresh::default()];
    // Per server, per round: [fresh, prefix cached, exact repeat] first token.
    let mut cached: [Vec<[f64; 3]>; 2] = [Vec::new(), Vec::new()];
    let before = load();
    for round in 0..setup.rounds {
        // Alternate who goes first, so neither always runs right after the other.
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let tag = format!("{}{round}", servers[i].name);
            fresh_round(&client, &servers[i], &tag, &mut fresh[i]).await;
            cached[i].push(cached_round(&client, &servers[i], &tag).await);
        }
    }
    let span = (before, load());
    let row = |figure: &str, f: &dyn Fn(usize) -> f64, unit, target| Row {
        figure: figure.into(),
        ours: f(0),
        peer: f(1),
        unit,
        target,
        load: span,
    };
    rows.push(row(
        "4 fresh prompts: mean first token",
        &|i| mean(&fresh[i].mean_first),
        "ms",
        "<=0.80",
    ));
    rows.push(row(
        "4 fresh prompts: max first token",
        &|i| mean(&fresh[i].max_first),
        "ms",
        "",
    ));
    rows.push(row(
        "4 fresh prompts: all done",
        &|i| mean(&fresh[i].total),
        "ms",
        "<=1.00",
    ));
    rows.push(row(
        "same 4 serially: mean first token",
        &|i| mean(&fresh[i].serial_first),
        "ms",
        "",
    ));
    rows.push(row(
        "same 4 serially: all done",
        &|i| mean(&fresh[i].serial_total),
        "ms",
        "",
    ));
    rows.push(row(
        "4 fresh: concurrent / serial all done (x)",
        &|i| mean(&fresh[i].total) / mean(&fresh[i].serial_total),
        "x",
        "<=1 ours",
    ));
    rows.push(row(
        "~400-token prompt, fresh: first token",
        &|i| mean(&column(&cached[i], 0)),
        "ms",
        "",
    ));
    rows.push(row(
        "same prefix cached: first token",
        &|i| mean(&column(&cached[i], 1)),
        "ms",
        "",
    ));
    rows.push(row(
        "that request exactly repeated: first token",
        &|i| mean(&column(&cached[i], 2)),
        "ms",
        "",
    ));
    for (i, s) in servers.iter().enumerate() {
        let r = |xs: &[f64]| {
            let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
            format!("{lo:.0}-{:.0}", xs.iter().copied().fold(0.0, f64::max))
        };
        println!(
            "  {:<13} per round: fresh mean first {} ms, all done {} ms; serial all done {} ms; cached first {} ms",
            s.name,
            r(&fresh[i].mean_first),
            r(&fresh[i].total),
            r(&fresh[i].serial_total),
            r(&column(&cached[i], 1))
        );
    }
}

fn column(rounds: &[[f64; 3]], k: usize) -> Vec<f64> {
    rounds.iter().map(|r| r[k]).collect()
}

/// C clients send N requests in all (non-streamed, `tokens` each); (tokens/s, failed).
async fn clients(server: &Server, clients: usize, requests: usize, tokens: u32) -> (f64, usize) {
    let client = client();
    warm_up(&client, server).await;
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (client, url, next) = (client.clone(), server.url.clone(), next.clone());
            tokio::spawn(async move {
                let (mut generated, mut failed) = (0, 0);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= requests {
                        return (generated, failed);
                    }
                    let q = format!("Write a short poem about the number {i}.");
                    match complete(&client, &url, &body(user(&q), tokens, false)).await {
                        Ok(n) if n == u64::from(tokens) => generated += n,
                        _ => failed += 1,
                    }
                }
            })
        })
        .collect();
    let (mut generated, mut failed) = (0, 0);
    for task in tasks {
        let (g, f) = task.await.expect("client task");
        generated += g;
        failed += f;
    }
    (generated as f64 / start.elapsed().as_secs_f64(), failed)
}

/// Tokens/s of `PEERS_CLIENTS` clients sharing `PEERS_REQUESTS` requests, at 4 and at 8 slots.
/// Both servers are up and take turns in `PEERS_LOAD_ROUNDS` rounds of an equal share of the
/// requests, the other one first each round, so that both see the same minutes of this noisy
/// machine (a whole shape per side in turn swung the ratio by ±7% from run to run).
async fn under_load(setup: &Setup, rows: &mut Vec<Row>) {
    let (c, n) = (env("PEERS_CLIENTS", 16), env("PEERS_REQUESTS", 64));
    let tokens = env("PEERS_LOAD_TOKENS", 128);
    let rounds = env("PEERS_LOAD_ROUNDS", 4usize).clamp(1, n.max(1));
    for slots in [4, 8] {
        let servers = [ours(setup, slots), llama_server(setup, slots)];
        let mut rates = [Vec::new(), Vec::new()];
        let mut failures = [0; 2];
        let mut stops = Vec::new();
        let before = load();
        for round in 0..rounds {
            let order = if round % 2 == 0 { [1, 0] } else { [0, 1] };
            for i in order {
                let ours = i == 0;
                let stopped = if ours {
                    stopped_steps(&servers[0]).await
                } else {
                    None
                };
                let (rate, failed) = clients(&servers[i], c, n / rounds, tokens).await;
                rates[i].push(rate);
                failures[i] += failed;
                if ours {
                    let during = stopped_steps(&servers[0])
                        .await
                        .zip(stopped)
                        .map(|(after, before)| after - before);
                    stops.push(during.map_or("?".into(), |s| s.to_string()));
                }
            }
        }
        let ratios: Vec<f64> = (rates[0].iter().zip(&rates[1]))
            .map(|(ours, peer)| ours / peer)
            .collect();
        let shown: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
        println!(
            "  {slots} slots: ours / llama-server by round {}; {}; our steps stopped by the thread guard {}",
            shown.join(" "),
            interval(&ratios, LOAD_TARGET),
            stops.join(" ")
        );
        rows.push(Row {
            figure: format!("{c} clients x {n} requests x {tokens} tok, {slots} slots"),
            ours: mean(&rates[0]),
            peer: mean(&rates[1]),
            unit: "tok/s",
            target: ">=1.05",
            load: (before, load()),
        });
        rows.push(Row {
            figure: format!("  failed requests, {slots} slots"),
            ours: failures[0] as f64,
            peer: failures[1] as f64,
            unit: "",
            target: "0 ours",
            load: (before, load()),
        });
    }
}

/// llama-batched-bench's aggregate generated tokens/s for 4 sequences of 128 tokens (prompt
/// included in the time) beside the library's for 4 concurrent requests, in this process.
fn batched(setup: &Setup, rows: &mut Vec<Row>) {
    let bench = setup.llama_bin.join("llama-batched-bench");
    if !bench.exists() {
        return;
    }
    let before = load();
    let threads = setup.threads.to_string();
    let out = peer_command(&bench)
        .arg("-m")
        .arg(&setup.model)
        .args([
            "-c",
            &(setup.context * 4).to_string(),
            "-npp",
            "40",
            "-ntg",
            "128",
        ])
        .args(["-npl", "4", "-t", &threads, "-tb", &threads])
        .stderr(Stdio::null())
        .output()
        .expect("run llama-batched-bench");
    // The table row `| PP | TG | B | N_KV | T_PP s | S_PP t/s | T_TG s | S_TG t/s | T s | S t/s |`.
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(peer) = text.lines().find_map(|l| {
        let cols: Vec<f64> = l.split('|').filter_map(|c| c.trim().parse().ok()).collect();
        (cols.len() == 10 && cols[2] == 4.0).then(|| cols[1] * cols[2] / cols[8])
    }) else {
        println!("llama-batched-bench printed no table:\n{text}");
        return;
    };
    let registry = Arc::new(Registry::new());
    let mut spec = ServiceSpec::new("batched", MODEL, setup.model.clone());
    spec.slots = 4;
    spec.threads = Some(setup.threads);
    spec.context_length = Some(setup.context);
    registry.deploy(spec).expect("deploy");
    let request = |q: &str, tokens: u32| {
        ChatCompletionRequest::from_json(&body(user(q), tokens, false).to_string()).unwrap()
    };
    registry
        .chat_blocking(request("Hello!", 4))
        .expect("warm-up");
    let start = Instant::now();
    let threads: Vec<_> = QUESTIONS
        .iter()
        .map(|q| {
            let (registry, req) = (registry.clone(), request(q, 128));
            std::thread::spawn(move || {
                registry
                    .chat_blocking(req)
                    .expect("answer")
                    .usage
                    .completion_tokens
            })
        })
        .collect();
    let generated: u64 = threads.into_iter().map(|t| t.join().unwrap() as u64).sum();
    let ours = generated as f64 / start.elapsed().as_secs_f64();
    registry.delete(MODEL, "batched").expect("delete");
    rows.push(Row {
        figure: "library vs llama-batched-bench, 4 seqs x 128".into(),
        ours,
        peer,
        unit: "tok/s",
        target: "",
        load: (before, load()),
    });
}

fn main() {
    let Some(llama_bin) = std::env::var_os("PEERS_LLAMA_BIN").map(PathBuf::from) else {
        println!("PEERS_LLAMA_BIN is not set: run `make bench-peers`, which builds llama-server");
        return;
    };
    let setup = Setup {
        model: std::env::var_os("PEERS_MODEL")
            .map(PathBuf::from)
            .unwrap_or_else(modelservice_test_models::smollm2),
        llama_bin,
        threads: env("PEERS_THREADS", 2),
        context: env("PEERS_CONTEXT", 1024),
        rounds: env("PEERS_ROUNDS", 3),
    };
    assert!(
        Path::new(&setup.model).exists(),
        "no model at {:?}",
        setup.model
    );
    println!(
        "HTTP side by side: {:?}, {} threads, {} context per slot, greedy, end tokens banned",
        setup.model.file_name().unwrap_or_default(),
        setup.threads,
        setup.context
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    let header = || {
        println!(
            "{:<46} {:>9} {:>9} {:<6} {:>6}  {:<8} load avg (1 min)",
            "figure", "ours", "llama-srv", "unit", "ratio", "target"
        )
    };
    runtime.block_on(at_four_slots(&setup, &mut rows));
    if env("PEERS_CLIENTS", 16) > 0 {
        runtime.block_on(under_load(&setup, &mut rows));
    }
    batched(&setup, &mut rows);
    header();
    for row in &rows {
        row.print();
    }
}
