//! The GPU check's report (README, "GPU"): runs on a machine with a GPU, through the library's
//! own API, on models given by path. `make gpu-check` builds it and prepares the rest.
//!
//! For each model:
//! - **CPU against GPU**: the same greedy requests to a service with `gpu_layers` = 0 and one
//!   with every layer offloaded: how many of the first tokens agree, the largest difference of
//!   the chosen tokens' log probabilities while they agree, and the CPU's margin (top choice
//!   against the second) where they part.
//! - **Speed with every layer offloaded**: a single stream (time to first token, decode tokens/s)
//!   and the aggregate tokens/s of N concurrent streams, each a fresh prompt.
//! - **GPU memory** in use after the service is deployed and after the load.
//!
//! Environment: GPU_MODELS (comma-separated GGUF paths; required), GPU_LAYERS (default 999:
//! every layer), GPU_TOKENS (per request, default 128), GPU_CONCURRENCY (default 1,8,32),
//! GPU_THREADS (CPU threads per instance, default 4).

mod support;

use std::path::PathBuf;
use std::sync::Arc;

use modelservice::{ChatCompletionRequest, ChatMessage, Registry, ServiceSpec, TokenLogprob};
use support::{concurrent, levels, timed_stream};

/// Greedy tokens compared between CPU and GPU, per prompt.
const COMPARED_TOKENS: u32 = 32;
const PROMPTS: [&str; 3] = [
    "Write a long story about a lighthouse keeper.",
    "List the planets of the solar system and one fact about each.",
    "Explain how a bicycle stays upright.",
];

struct Setup {
    models: Vec<PathBuf>,
    gpu_layers: u32,
    tokens: u32,
    concurrency: Vec<usize>,
    threads: usize,
}

fn setup() -> Setup {
    fn env<T: std::str::FromStr>(k: &str) -> Option<T> {
        std::env::var(k).ok().and_then(|v| v.parse().ok())
    }
    let models = std::env::var("GPU_MODELS")
        .unwrap_or_default()
        .split(',')
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .collect();
    let concurrency = levels("GPU_CONCURRENCY", "1,8,32");
    Setup {
        models,
        gpu_layers: env("GPU_LAYERS").unwrap_or(999),
        tokens: env("GPU_TOKENS").unwrap_or(128),
        concurrency,
        threads: env("GPU_THREADS").unwrap_or(4),
    }
}

/// The backends' devices llama.cpp registered, with the memory in use on each GPU.
fn devices() -> Vec<String> {
    use llama_cpp_sys_2 as sys;
    // SAFETY: enumeration and queries of registered devices; the strings are llama.cpp's own.
    unsafe {
        (0..sys::ggml_backend_dev_count())
            .map(|i| {
                let dev = sys::ggml_backend_dev_get(i);
                let text = |p: *const std::ffi::c_char| {
                    std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
                };
                let (name, description) = (
                    text(sys::ggml_backend_dev_name(dev)),
                    text(sys::ggml_backend_dev_description(dev)),
                );
                if sys::ggml_backend_dev_type(dev) == sys::GGML_BACKEND_DEVICE_TYPE_GPU {
                    let (mut free, mut total) = (0usize, 0usize);
                    sys::ggml_backend_dev_memory(dev, &mut free, &mut total);
                    format!(
                        "{name} ({description}): {:.0} MiB in use of {:.0} MiB",
                        (total - free) as f64 / (1 << 20) as f64,
                        total as f64 / (1 << 20) as f64
                    )
                } else {
                    format!("{name} ({description})")
                }
            })
            .collect()
    }
}

fn print_devices(when: &str) {
    println!("devices {when}:");
    for d in devices() {
        println!("  {d}");
    }
}

/// Token ids never chosen, so every answer runs its full length (random weights pick them too).
fn end_tokens(registry: &Registry, access: &str) -> Vec<i32> {
    ["<|im_end|>", "<|endoftext|>"]
        .iter()
        .filter_map(|t| registry.tokenize(access, t).ok()?.last().copied())
        .collect()
}

fn greedy(
    access: &str,
    system: String,
    user: &str,
    tokens: u32,
    banned: &[i32],
) -> ChatCompletionRequest {
    let mut req = ChatCompletionRequest::new(
        access,
        vec![ChatMessage::system(system), ChatMessage::user(user)],
    );
    req.temperature = Some(0.0);
    req.max_tokens = Some(tokens);
    req.logit_bias = Some(banned.iter().map(|t| (t.to_string(), -100.0)).collect());
    req
}

fn spec(
    access: &str,
    model: &PathBuf,
    gpu_layers: u32,
    slots: usize,
    threads: usize,
) -> ServiceSpec {
    let mut spec = ServiceSpec::new(access, access, model);
    spec.gpu_layers = gpu_layers;
    spec.slots = slots;
    spec.threads = Some(threads);
    spec.context_length = Some(1024);
    spec
}

/// Greedy answers of the CPU and of the GPU, token by token.
fn compare(registry: &Registry, s: &Setup, model: &PathBuf) {
    let (cpu, gpu) = ("check/cpu", "check/gpu");
    registry.deploy(spec(cpu, model, 0, 1, s.threads)).unwrap();
    registry
        .deploy(spec(gpu, model, s.gpu_layers, 1, s.threads))
        .unwrap();
    let banned = end_tokens(registry, cpu);
    for (i, prompt) in PROMPTS.iter().enumerate() {
        let answer = |access: &str| {
            let mut req = greedy(
                access,
                format!("Check {i}."),
                prompt,
                COMPARED_TOKENS,
                &banned,
            );
            req.logprobs = Some(true);
            req.top_logprobs = Some(2);
            let done = registry.chat_blocking(req).unwrap();
            done.choices[0].logprobs.clone().unwrap().content.unwrap()
        };
        let (on_cpu, on_gpu) = (answer(cpu), answer(gpu));
        let agree = on_cpu
            .iter()
            .zip(&on_gpu)
            .take_while(|(c, g)| c.bytes == g.bytes)
            .count();
        let largest = on_cpu
            .iter()
            .zip(&on_gpu)
            .take(agree)
            .map(|(c, g)| (c.logprob - g.logprob).abs())
            .fold(0f32, f32::max);
        let parted = match on_cpu.get(agree) {
            Some(c) if agree < on_gpu.len() => {
                let margin = match &c.top_logprobs[..] {
                    [first, second, ..] => format!("{:.4}", first.logprob - second.logprob),
                    _ => "?".into(),
                };
                format!("; parted at token {agree}, where the CPU's top two differ by {margin} in log probability")
            }
            _ => String::new(),
        };
        println!(
            "  prompt {i}: {agree} of {} greedy tokens equal; largest |Δ logprob| of equal tokens {largest:.5}{parted}",
            on_cpu.len().min(on_gpu.len())
        );
        if !parted.is_empty() {
            // Both answers, to judge whether the GPU's is still sound after they part.
            let text = |tokens: &[TokenLogprob]| {
                tokens.iter().map(|t| t.token.as_str()).collect::<String>()
            };
            println!("    CPU: {:?}", text(&on_cpu));
            println!("    GPU: {:?}", text(&on_gpu));
        }
    }
    for access in [cpu, gpu] {
        registry.delete(access, access).unwrap();
    }
}

fn speed(registry: &Arc<Registry>, s: &Setup, model: &PathBuf) {
    let access = "check/load";
    let slots = s.concurrency.iter().copied().max().unwrap_or(1);
    registry
        .deploy(spec(access, model, s.gpu_layers, slots, s.threads))
        .unwrap();
    print_devices(&format!(
        "after deploying {slots} slots with gpu_layers {}",
        s.gpu_layers
    ));
    let banned = end_tokens(registry, access);
    let request = |session: usize, tokens: u32| {
        let mut req = greedy(
            access,
            format!("Session {session}."),
            PROMPTS[0],
            tokens,
            &banned,
        );
        req.stream = Some(true);
        req
    };
    let prompt_tokens = registry.count_prompt_tokens(&request(0, 1)).unwrap();
    println!(
        "  llama-batched-bench shape: -npp {prompt_tokens} -ntg {} -npl {}",
        s.tokens,
        s.concurrency
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    timed_stream(registry, request(1, 16));
    let runs: Vec<_> = (0..3)
        .map(|i| timed_stream(registry, request(2 + i, s.tokens)))
        .collect();
    let ttft = runs.iter().map(|r| r.0).min().unwrap();
    let decode = runs.iter().map(|r| r.1).fold(0.0, f64::max);
    println!(
        "  single stream: first token {:.1} ms, decode {decode:.1} tok/s (best of 3, {} prompt tokens, {} tokens)",
        ttft.as_secs_f64() * 1000.0,
        prompt_tokens,
        s.tokens
    );
    for (round, &n) in s.concurrency.iter().enumerate() {
        let requests = (0..n).map(|i| request(100 * (round + 1) + i, s.tokens));
        let done = concurrent(registry, access, requests.collect());
        println!(
            "  aggregate, {n:2} concurrent: {:7.1} tok/s ({} tokens in {:.2} s, {} steps)",
            done.tokens_per_second(),
            done.generated,
            done.seconds,
            done.steps
        );
    }
    println!(
        "  decode steps stopped by the thread guard: {}",
        registry.retrieve(access).unwrap().stats.stopped_steps
    );
    print_devices("after the load");
    registry.delete(access, access).unwrap();
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` probes benches; nothing to list here
    }
    let s = setup();
    if s.models.is_empty() {
        // `cargo bench` runs every bench: this one only where `make gpu-check` sends it.
        println!("gpu: set GPU_MODELS to run the GPU check's report (`make gpu-check`)");
        return;
    }
    modelservice::cpu_backend::load().expect("llama.cpp's backends");
    print_devices("registered");
    let registry = Arc::new(Registry::new());
    for model in &s.models {
        println!(
            "model {} (gpu_layers {}, {} threads)",
            model.display(),
            s.gpu_layers,
            s.threads
        );
        println!(" CPU against GPU, {COMPARED_TOKENS} greedy tokens:");
        compare(&registry, &s, model);
        println!(" with gpu_layers {}:", s.gpu_layers);
        speed(&registry, &s, model);
    }
}
