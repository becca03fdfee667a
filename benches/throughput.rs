//! Throughput and latency of the library against the raw llama-cpp-2 decode loop, measured in
//! one run on the same model, thread count and token budget (these machines are noisy, so only
//! figures from the same run are compared).
//!
//! `make bench`, or `cargo bench -p modelservice --bench throughput`.
//! Environment: BENCH_THREADS (default: all cores), BENCH_TOKENS (default 128),
//! BENCH_MODEL (default: SmolLM2 from scripts/fetch-models), BENCH_PAIRS (single-stream answers
//! of each side, alternating; default 5); BENCH_SINGLE_ONLY stops after the single-stream figures
//! (to compare two builds quickly); BENCH_CONCURRENCY (the aggregate figures' concurrent
//! requests, default 1,2,4,8); BENCH_GPU_LAYERS (layers offloaded on both sides, default 0).
//!
//! Baselines: the raw single-sequence loop for single-stream decode and time to first token, and
//! a raw batched loop (n sequences decoded together, one KV stream each) for each aggregate
//! figure. They run in child processes of this binary, so they never share a backend with the
//! library or compete with it for cores.

mod support;

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::logit_bias::LlamaLogitBias;
use modelservice::threads::{on_own_thread, PooledContext};
use modelservice::{ChatCompletionRequest, ChatMessage, Registry, ResponseFormat, ServiceSpec};
use support::{concurrent, levels, timed_stream};

const PROMPT: &str = "Write a long story about a lighthouse keeper.";
const RAW_FLAG: &str = "--raw-loop";

struct Setup {
    model: PathBuf,
    threads: usize,
    tokens: u32,
    gpu_layers: u32,
    concurrency: Vec<usize>,
}

fn setup() -> Setup {
    fn env<T: std::str::FromStr>(k: &str) -> Option<T> {
        std::env::var(k).ok().and_then(|v| v.parse().ok())
    }
    let model = std::env::var("BENCH_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|_| modelservice_test_models::smollm2());
    Setup {
        model,
        threads: env("BENCH_THREADS").unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        }),
        tokens: env("BENCH_TOKENS").unwrap_or(128),
        gpu_layers: env("BENCH_GPU_LAYERS").unwrap_or(0),
        concurrency: levels("BENCH_CONCURRENCY", "1,2,4,8"),
    }
}

/// The library's model parameters: the layers it offloads.
fn model_params(s: &Setup) -> LlamaModelParams {
    LlamaModelParams::default().with_n_gpu_layers(s.gpu_layers)
}

/// Greedy sampling with `end_of_turn` banned, as the library's requests ask for it.
fn greedy_without(model: &LlamaModel, end_of_turn: i32) -> LlamaSampler {
    LlamaSampler::chain_simple([
        LlamaSampler::logit_bias(
            model.n_vocab(),
            &[LlamaLogitBias::new(
                llama_cpp_2::token::LlamaToken(end_of_turn),
                -100.0,
            )],
        ),
        LlamaSampler::greedy(),
    ])
}

/// The ceiling: tokenize, decode the prompt, then greedy-decode one token at a time.
/// Prints `prompt_ms decode_tokens_per_s`.
fn raw_loop(s: &Setup, prompt_text: &str, end_of_turn: i32) {
    modelservice::cpu_backend::load().unwrap();
    let backend = LlamaBackend::init().unwrap();
    // Loaded as the library loads (on a thread that ends: no OpenMP team left on this one).
    let model =
        on_own_thread(|| LlamaModel::load_from_file(&backend, &s.model, &model_params(s)).unwrap())
            .unwrap();
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(1024))
        .with_n_batch(512)
        .with_n_threads(s.threads as i32)
        .with_n_threads_batch(s.threads as i32);
    // A thread pool per context, as the library runs (without one ggml starts one per step).
    let mut ctx = PooledContext::new(
        model.new_context(&backend, params).unwrap(),
        s.threads as i32,
    )
    .unwrap();
    let prompt = model.vocab().tokenize(prompt_text.as_bytes(), true, true);
    let mut batch = LlamaBatch::new(512, 1);
    // A short warm-up answer, then one measured answer, each on an empty cache: the parent
    // alternates these with the library's answers.
    let (mut prompt_ms, mut tps) = (0f64, 0f64);
    for tokens in [16, s.tokens] {
        let mut sampler = greedy_without(&model, end_of_turn);
        ctx.clear_kv_cache();
        batch.clear();
        let start = Instant::now();
        batch.add_sequence(&prompt, 0, false).unwrap();
        ctx.decode(&mut batch).unwrap();
        let mut token = sampler.sample(&ctx, batch.n_tokens() - 1);
        prompt_ms = start.elapsed().as_secs_f64() * 1000.0;
        let decode_start = Instant::now();
        let first_pos = prompt.len() as i32;
        for pos in first_pos..first_pos + tokens as i32 - 1 {
            let _piece = model.vocab().token_to_piece(token, false, None);
            batch.clear();
            batch.add(token, pos, &[0], true).unwrap();
            ctx.decode(&mut batch).unwrap();
            token = sampler.sample(&ctx, 0);
        }
        tps = f64::from(tokens - 1) / decode_start.elapsed().as_secs_f64();
    }
    println!("{prompt_ms} {tps}");
}

/// The batched ceiling: `n` sequences, their prompts decoded in one batch, then one greedy token
/// per sequence per step. Prints the generated tokens per second, prompt decoding included, as
/// the library's aggregate figure counts it.
fn raw_batched(s: &Setup, prompt_text: &str, end_of_turn: i32, n: usize) {
    modelservice::cpu_backend::load().unwrap();
    let backend = LlamaBackend::init().unwrap();
    // Loaded as the library loads (on a thread that ends: no OpenMP team left on this one).
    let model =
        on_own_thread(|| LlamaModel::load_from_file(&backend, &s.model, &model_params(s)).unwrap())
            .unwrap();
    let prompt = model.vocab().tokenize(prompt_text.as_bytes(), true, true);
    // Every prompt goes into the first batch, so the batch must hold them all.
    let batch_tokens = (n * prompt.len()).max(512);
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(1024 * n as u32))
        .with_n_batch(batch_tokens as u32)
        .with_n_ubatch(batch_tokens as u32)
        .with_n_seq_max(n as u32)
        // One KV stream per sequence, as the library runs (and the faster layout here).
        .with_kv_unified(false)
        .with_n_threads(s.threads as i32)
        .with_n_threads_batch(s.threads as i32);
    // A thread pool per context, as the library runs (without one ggml starts one per step).
    let mut ctx = PooledContext::new(
        model.new_context(&backend, params).unwrap(),
        s.threads as i32,
    )
    .unwrap();
    let mut samplers: Vec<LlamaSampler> = (0..n)
        .map(|_| greedy_without(&model, end_of_turn))
        .collect();
    let mut batch = LlamaBatch::new(batch_tokens, n as i32);
    let start = Instant::now();
    for seq in 0..n {
        for (pos, &t) in prompt.iter().enumerate() {
            batch
                .add(t, pos as i32, &[seq as i32], pos + 1 == prompt.len())
                .unwrap();
        }
    }
    ctx.decode(&mut batch).unwrap();
    let mut tokens: Vec<_> = (0..n)
        .map(|seq| samplers[seq].sample(&ctx, ((seq + 1) * prompt.len() - 1) as i32))
        .collect();
    let first_pos = prompt.len() as i32;
    for pos in first_pos..first_pos + s.tokens as i32 - 1 {
        batch.clear();
        for (seq, &t) in tokens.iter().enumerate() {
            let _piece = model.vocab().token_to_piece(t, false, None);
            batch.add(t, pos, &[seq as i32], true).unwrap();
        }
        ctx.decode(&mut batch).unwrap();
        for (seq, t) in tokens.iter_mut().enumerate() {
            *t = samplers[seq].sample(&ctx, seq as i32);
        }
    }
    let generated = (n * s.tokens as usize) as f64;
    println!("{}", generated / start.elapsed().as_secs_f64());
}

/// A streamed greedy request for exactly `tokens` tokens. `session` varies the system message,
/// so its prompt shares almost nothing with earlier ones (a cold prompt, as in the raw loop).
fn request(access: &str, tokens: u32, end_of_turn: i32, session: usize) -> ChatCompletionRequest {
    let system = format!(
        "Session {session}. You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    );
    let mut req = ChatCompletionRequest::new(
        access,
        vec![ChatMessage::system(system), ChatMessage::user(PROMPT)],
    );
    req.temperature = Some(0.0);
    req.max_tokens = Some(tokens);
    // Ban the end-of-turn token so every run generates exactly `tokens` tokens, as the raw loop does.
    req.logit_bias = Some([(end_of_turn.to_string(), -100.0)].into());
    req.stream = Some(true);
    req
}

fn main() {
    let s = setup();
    if std::env::args().any(|a| a == RAW_FLAG) {
        let eot: i32 = std::env::var("BENCH_EOT").unwrap().parse().unwrap();
        let prompt = std::env::var("BENCH_PROMPT").unwrap();
        match std::env::var("BENCH_BATCHED")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            Some(n) => raw_batched(&s, &prompt, eot, n),
            None => raw_loop(&s, &prompt, eot),
        }
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` probes benches; nothing to list here
    }

    let registry = Arc::new(Registry::new());
    let mut spec = ServiceSpec::new("bench", "bench/smollm2", &s.model);
    spec.threads = Some(s.threads);
    spec.slots = s.concurrency.iter().copied().max().unwrap_or(1).max(8);
    spec.gpu_layers = s.gpu_layers;
    spec.context_length = Some(1024);
    registry.deploy(spec).unwrap();
    let access = "bench/smollm2";
    let eot = registry.tokenize(access, "<|im_end|>").unwrap();
    let end_of_turn = *eot.last().unwrap();
    let probe = request(access, 1, end_of_turn, 0);
    let rendered_prompt_tokens = registry.count_prompt_tokens(&probe).unwrap();

    // The raw loop decodes the same rendered prompt (same token count) in a child process.
    let rendered = format!(
        "<|im_start|>system\nSession 0. You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\n{PROMPT}<|im_end|>\n<|im_start|>assistant\n"
    );
    let raw = |batched: Option<usize>| -> Vec<f64> {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap());
        child
            .arg(RAW_FLAG)
            .env("BENCH_PROMPT", &rendered)
            .env("BENCH_EOT", end_of_turn.to_string())
            .env("BENCH_MODEL", &s.model)
            .env("BENCH_THREADS", s.threads.to_string())
            .env("BENCH_TOKENS", s.tokens.to_string())
            .env("BENCH_GPU_LAYERS", s.gpu_layers.to_string());
        if let Some(n) = batched {
            child.env("BENCH_BATCHED", n.to_string());
        }
        let out = child.output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(|v| v.parse::<f64>().unwrap())
            .collect()
    };
    // Single stream: answers of the raw loop and of the library alternate (who goes first
    // alternates too), so a slow minute of the machine falls on both; each library answer has a
    // fresh prompt, as each raw one has an empty cache.
    timed_stream(&registry, request(access, 16, end_of_turn, 1));
    let pairs: usize = std::env::var("BENCH_PAIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let (mut raw_runs, mut lib_runs) = (Vec::new(), Vec::new());
    for pair in 0..pairs.max(1) {
        let mut raw_run = || match raw(None)[..] {
            [ms, tps] => raw_runs.push((ms, tps)),
            ref other => panic!("the raw loop printed {other:?}"),
        };
        let lib_run = || timed_stream(&registry, request(access, s.tokens, end_of_turn, 2 + pair));
        if pair % 2 == 0 {
            raw_run();
            lib_runs.push(lib_run());
        } else {
            lib_runs.push(lib_run());
            raw_run();
        }
    }
    let raw_tps = raw_runs.iter().map(|r| r.1).fold(0.0, f64::max);
    let raw_prompt_ms = raw_runs.iter().map(|r| r.0).fold(f64::MAX, f64::min);
    let lib_tps = lib_runs.iter().map(|r| r.1).fold(0.0, f64::max);
    let ttft = lib_runs.iter().map(|r| r.0).min().unwrap();
    let pieces = lib_runs.iter().map(|r| r.2).min().unwrap();
    // The two answers of a pair run seconds apart: the median of the pairs' ratios is steadier
    // than the ratio of the bests.
    let mut ratios: Vec<f64> = raw_runs
        .iter()
        .zip(&lib_runs)
        .map(|(r, l)| l.1 / r.1)
        .collect();
    let in_order: Vec<String> = ratios
        .iter()
        .map(|r| format!("{:+.1}%", (r - 1.0) * 100.0))
        .collect();
    ratios.sort_by(f64::total_cmp);
    let median_ratio = ratios[ratios.len() / 2];

    println!(
        "modelservice benchmark: {} ({} prompt tokens), {} threads, {} tokens per request",
        s.model.display(),
        rendered_prompt_tokens,
        s.threads,
        s.tokens
    );
    println!("single stream decode       raw llama-cpp-2 loop {raw_tps:7.1} tok/s   modelservice {lib_tps:7.1} tok/s   (best of {}: {:+.1}%; median of the alternating pairs: {:+.1}%)", ratios.len(), (lib_tps / raw_tps - 1.0) * 100.0, (median_ratio - 1.0) * 100.0);
    println!("  pairs in order             {}", in_order.join(" "));
    println!("time to first token        raw llama-cpp-2 loop {raw_prompt_ms:7.1} ms      modelservice {:7.1} ms   (best of {})", ttft.as_secs_f64() * 1000.0, ratios.len());
    println!(
        "cpu backend                {}",
        registry.retrieve(access).unwrap().cpu_backend.variant
    );
    if pieces + 1 < s.tokens {
        println!(
            "  (note: {pieces} text pieces for {} tokens: some tokens joined into one piece)",
            s.tokens
        );
    }

    if std::env::var_os("BENCH_SINGLE_ONLY").is_some() {
        return;
    }
    let mut session = 10;
    for &concurrency in &s.concurrency {
        let raw_aggregate = raw(Some(concurrency))[0];
        let requests = (0..concurrency).map(|_| {
            session += 1;
            request(access, s.tokens, end_of_turn, session)
        });
        let done = concurrent(&registry, access, requests.collect());
        let aggregate = done.tokens_per_second();
        println!(
            "aggregate, {concurrency} concurrent    raw batched loop {raw_aggregate:7.1} tok/s   modelservice {aggregate:7.1} tok/s   ({:+.1}%; {} tokens in {:.2} s, {} steps)",
            (aggregate / raw_aggregate - 1.0) * 100.0,
            done.generated,
            done.seconds,
            done.steps
        );
    }

    structured_output(&registry, access, s.tokens, end_of_turn);
    // Each stop costs its step and runs the next ones on one thread for 100 ms or more.
    println!(
        "decode steps stopped by the thread guard: {}",
        registry.retrieve(access).unwrap().stats.stopped_steps
    );
}

/// Tokens/s of a `json_schema` request next to the same request without it (best of 3 each,
/// alternating): the grammar's cost per token.
fn structured_output(registry: &Registry, access: &str, tokens: u32, end_of_turn: i32) {
    let schema: serde_json::Value = serde_json::json!({
        "type": "object",
        "properties": {"animals": {"type": "array", "items": {"type": "string"}}},
        "required": ["animals"]
    });
    let format: ResponseFormat = serde_json::from_value(serde_json::json!({
        "type": "json_schema",
        "json_schema": {"name": "animals", "schema": schema}
    }))
    .unwrap();
    let (mut plain, mut constrained) = (0f64, 0f64);
    for round in 0..3 {
        let mut req = request(access, tokens, end_of_turn, 100 + round);
        req.messages[1] = ChatMessage::user("List as many animals as you can, as JSON.");
        plain = plain.max(timed_stream(registry, req.clone()).1);
        req.response_format = Some(format.clone());
        constrained = constrained.max(timed_stream(registry, req).1);
    }
    println!(
        "structured output          plain request    {plain:7.1} tok/s   json_schema {constrained:7.1} tok/s   ({:.2}x)",
        constrained / plain
    );
}
