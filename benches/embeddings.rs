//! Embedding throughput of the library against a raw llama-cpp-2 encode loop, in one run on the
//! same model, thread count and inputs: 256 short sentences in batches of 32 (one request per
//! batch for the library, one decode per batch for the raw loop), best of three passes each.
//!
//! `make bench`, or `cargo bench -p modelservice --bench embeddings`.
//! Environment: BENCH_THREADS (default: all cores), BENCH_EMBED_MODEL (default: all-MiniLM-L6-v2
//! from scripts/fetch-models).
//!
//! The raw loop runs in a child process of this binary, so it never shares a backend with the
//! library or competes with it for cores. It does what a caller of llama-cpp-2 must: tokenize,
//! put input j in sequence j, decode, read and L2-normalise each pooled vector.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Instant;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use modelservice::threads::{on_own_thread, PooledContext};
use modelservice::{EmbeddingRequest, Registry, ServiceSpec};

const RAW_FLAG: &str = "--raw-encode-loop";
const SENTENCES: usize = 256;
const BATCH: usize = 32;
const PASSES: usize = 3;

struct Setup {
    model: PathBuf,
    threads: usize,
}

fn setup() -> Setup {
    Setup {
        model: std::env::var("BENCH_EMBED_MODEL")
            .map(PathBuf::from)
            .unwrap_or_else(|_| modelservice_test_models::minilm()),
        threads: std::env::var("BENCH_THREADS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            }),
    }
}

/// 256 distinct short sentences (10 to 16 tokens each).
fn sentences() -> Vec<String> {
    let subjects = ["A man", "The old woman", "Two children", "A small dog"];
    let verbs = ["is eating", "looks at", "is carrying", "walks past"];
    let objects = [
        "a red apple",
        "the blue house",
        "some fresh bread",
        "a heavy box",
    ];
    let places = [
        "in the park",
        "near the river",
        "at the market",
        "on a rainy day",
    ];
    let mut all = Vec::with_capacity(SENTENCES);
    for s in subjects {
        for v in verbs {
            for o in objects {
                for p in places {
                    all.push(format!("{s} {v} {o} {p}."));
                }
            }
        }
    }
    all
}

/// The raw loop: prints the best inputs/s of [`PASSES`] passes.
fn raw_encode_loop(s: &Setup) {
    modelservice::cpu_backend::load().unwrap();
    let backend = LlamaBackend::init().unwrap();
    // Loaded as the library loads (on a thread that ends: no OpenMP team left on this one).
    let model = on_own_thread(|| {
        LlamaModel::load_from_file(&backend, &s.model, &LlamaModelParams::default()).unwrap()
    })
    .unwrap();
    // The library's batch shape: 1024 tokens, one ubatch.
    let params = LlamaContextParams::default()
        .with_embeddings(true)
        .with_n_ctx(NonZeroU32::new(1024))
        .with_n_batch(1024)
        .with_n_ubatch(1024)
        .with_n_seq_max(BATCH as u32)
        .with_n_threads(s.threads as i32)
        .with_n_threads_batch(s.threads as i32);
    // A thread pool per context, as the library runs (without one ggml starts one per batch).
    let mut ctx = PooledContext::new(
        model.new_context(&backend, params).unwrap(),
        s.threads as i32,
    )
    .unwrap();
    let mut batch = LlamaBatch::new(1024, 1);
    let texts = sentences();
    let mut best = 0f64;
    for _ in 0..PASSES {
        let start = Instant::now();
        let mut vectors = Vec::with_capacity(SENTENCES);
        for chunk in texts.chunks(BATCH) {
            batch.clear();
            for (seq, text) in chunk.iter().enumerate() {
                let tokens = model.vocab().tokenize(text.as_bytes(), true, false);
                batch.add_sequence(&tokens, seq as i32, true).unwrap();
            }
            ctx.decode(&mut batch).unwrap();
            for seq in 0..chunk.len() {
                let v = ctx.embeddings_seq_ith(seq as i32).unwrap();
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                vectors.push(v.iter().map(|x| x / norm).collect::<Vec<f32>>());
            }
        }
        assert_eq!(vectors.len(), SENTENCES);
        best = best.max(SENTENCES as f64 / start.elapsed().as_secs_f64());
    }
    println!("{best}");
}

fn main() {
    let s = setup();
    if std::env::args().any(|a| a == RAW_FLAG) {
        raw_encode_loop(&s);
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` probes benches; nothing to list here
    }

    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .arg(RAW_FLAG)
        .env("BENCH_EMBED_MODEL", &s.model)
        .env("BENCH_THREADS", s.threads.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the raw loop failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let raw: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();

    let registry = Registry::new();
    let access = "bench/minilm";
    let mut spec = ServiceSpec::new("bench", access, &s.model);
    spec.threads = Some(s.threads);
    registry.deploy(spec).unwrap();
    let texts = sentences();
    let mut best = 0f64;
    for _ in 0..PASSES {
        let start = Instant::now();
        let mut answered = 0;
        for chunk in texts.chunks(BATCH) {
            let request = EmbeddingRequest::new(access, chunk.to_vec());
            answered += registry.embeddings(request).unwrap().data.len();
        }
        assert_eq!(answered, SENTENCES);
        best = best.max(SENTENCES as f64 / start.elapsed().as_secs_f64());
    }
    let stats = registry.retrieve(access).unwrap().stats;

    println!(
        "modelservice embeddings benchmark: {}, {} threads, {SENTENCES} sentences in batches of {BATCH}",
        s.model.display(),
        s.threads
    );
    println!(
        "embeddings, batches of {BATCH}    raw llama-cpp-2 encode loop {raw:7.1} inputs/s   modelservice {best:7.1} inputs/s   ({:.3}x; {:.1} inputs per decode)",
        best / raw,
        (PASSES * SENTENCES) as f64 / stats.decode_steps as f64
    );
}
