//! Upper bounds of every resource a service spec asks for, and the memory check that sizes the
//! KV cache against the machine before anything is allocated.
//!
//! A library runs inside its caller's process: a spec that makes llama.cpp hang, abort or
//! allocate more than the machine holds takes the caller down with it. Each bound below is the
//! point past which llama.cpp itself fails (or the machine cannot keep up), and a spec beyond it
//! is refused with a 400 that names the field and the bound.

use crate::api::ServiceSpec;
use crate::error::{Error, Result};

/// Most instances (llama contexts, each with its own worker thread and KV cache) of a service.
pub const MAX_INSTANCES: usize = 64;
/// Most sequence slots per instance: llama.cpp's `LLAMA_MAX_SEQ` (it throws above it).
pub const MAX_SLOTS: usize = 256;
/// Longest context per slot, in tokens; far above any trained context of today's models, and
/// `MAX_SLOTS` times it still fits llama.cpp's 32-bit context size.
pub const MAX_CONTEXT_LENGTH: u32 = 1 << 20;
/// Fewest tokens per slot: a chat template alone takes about that many.
pub const MIN_CONTEXT_LENGTH: u32 = 16;
/// Most threads per service, as a multiple of the cores this process may use: llama.cpp splits
/// every operation across its threads, which wait for each other spinning, so thousands of
/// threads on a few cores freeze a decode step for good.
pub const THREADS_PER_CORE: usize = 4;
/// Most threads a llama.cpp compute graph can take (`GGML_MAX_N_THREADS`).
pub const MAX_THREADS: usize = 512;
/// Most requests waiting for a slot; past it the service answers 429 (as Ollama caps its queue).
pub const MAX_QUEUE_SIZE: usize = 4096;
/// Most layers offloaded to a GPU; llama.cpp offloads all layers for any count above the
/// model's, so this only bounds the field (common "all layers" values like 999 and 9999 fit).
pub const MAX_GPU_LAYERS: u32 = 10_000;

/// The cores this process may run on (cgroup quotas and affinity included).
pub fn available_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Most `threads` a spec may ask for on this machine.
pub fn max_threads() -> usize {
    (available_cores() * THREADS_PER_CORE).min(MAX_THREADS)
}

/// A 400 naming `field` and its allowed range.
fn out_of_range(
    field: &str,
    value: impl std::fmt::Display,
    min: u64,
    max: u64,
    why: &str,
) -> Error {
    Error::invalid(
        field,
        format!("`{field}` must be between {min} and {max}, got {value}: {why}."),
    )
}

/// Checks every numeric field of `spec` against its bound.
pub(crate) fn check_spec(spec: &ServiceSpec) -> Result<()> {
    let bounded = |field: &str, value: u64, min: u64, max: u64, why: &str| {
        if (min..=max).contains(&value) {
            Ok(())
        } else {
            Err(out_of_range(field, value, min, max, why))
        }
    };
    bounded(
        "instances",
        spec.instances as u64,
        1,
        MAX_INSTANCES as u64,
        "each instance is a llama context with its own thread and KV cache",
    )?;
    bounded(
        "slots",
        spec.slots as u64,
        1,
        MAX_SLOTS as u64,
        "llama.cpp holds at most 256 sequences per context",
    )?;
    if let Some(context) = spec.context_length {
        bounded(
            "context_length",
            u64::from(context),
            u64::from(MIN_CONTEXT_LENGTH),
            u64::from(MAX_CONTEXT_LENGTH),
            "tokens per slot, prompt and completion together",
        )?;
    }
    if let Some(threads) = spec.threads {
        bounded(
            "threads",
            threads as u64,
            1,
            max_threads() as u64,
            &format!(
                "this machine has {} cores, and llama.cpp threads spin-wait on each other, so \
                 more than {THREADS_PER_CORE} per core only stall",
                available_cores()
            ),
        )?;
    }
    bounded(
        "queue_size",
        spec.queue_size as u64,
        1,
        MAX_QUEUE_SIZE as u64,
        "requests waiting for a slot; more wait too long to be useful",
    )?;
    bounded(
        "gpu_layers",
        u64::from(spec.gpu_layers),
        0,
        u64::from(MAX_GPU_LAYERS),
        "any count above the model's layer count offloads every layer",
    )?;
    Ok(())
}

/// Most layers llama.cpp can hold (`LLAMA_MAX_LAYERS`).
pub const MAX_LAYERS: u64 = 512;

/// What a deploy or a scale-up is about to allocate, to be checked against the machine.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KvRequest {
    pub geometry: crate::gguf::KvGeometry,
    pub slots: usize,
    pub slot_context: u32,
    /// Instances about to be created (each has its own KV cache).
    pub instances: usize,
    pub gpu_layers: u32,
    /// Bytes of weights about to be loaded (0 when scaling: they are loaded already).
    pub weights: u64,
    /// The field the refusal names.
    pub param: &'static str,
}

/// Memory this process can still take: the kernel's `MemAvailable`, lowered to what a cgroup
/// (container) limit leaves; `None` where neither can be read.
pub fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
        let line = s.lines().find(|l| l.starts_with("MemAvailable:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    });
    let read =
        |path: &str| -> Option<u64> { std::fs::read_to_string(path).ok()?.trim().parse().ok() };
    // Page cache the kernel can drop (model files read earlier) counts as free, as it does in
    // the kubelet's working set.
    let reclaimable = |stat: &str, key: &str| -> u64 {
        std::fs::read_to_string(stat)
            .ok()
            .and_then(|s| {
                let line = s
                    .lines()
                    .find(|l| l.split_whitespace().next() == Some(key))?;
                line.split_whitespace().nth(1)?.parse().ok()
            })
            .unwrap_or(0)
    };
    // cgroup v2, then v1; an unlimited v2 cgroup reads "max" and does not parse.
    let cgroup = read("/sys/fs/cgroup/memory.max")
        .zip(read("/sys/fs/cgroup/memory.current"))
        .map(|(limit, used)| {
            let cache = reclaimable("/sys/fs/cgroup/memory.stat", "inactive_file");
            limit.saturating_sub(used.saturating_sub(cache))
        })
        .or_else(|| {
            let cache = reclaimable("/sys/fs/cgroup/memory/memory.stat", "total_inactive_file");
            read("/sys/fs/cgroup/memory/memory.limit_in_bytes")
                .zip(read("/sys/fs/cgroup/memory/memory.usage_in_bytes"))
                .map(|(limit, used)| limit.saturating_sub(used.saturating_sub(cache)))
        });
    match (meminfo, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Refuses `gpu_layers` where llama.cpp has no GPU to offload to: it would run every layer on
/// the CPU without a word. Initialises the backend, so the GPU modules are registered.
pub(crate) fn check_gpu_layers(gpu_layers: u32) -> Result<()> {
    if gpu_layers == 0 {
        return Ok(());
    }
    crate::backend::backend()?;
    if gpu_count() > 0 {
        return Ok(());
    }
    Err(Error::invalid(
        "gpu_layers",
        format!(
            "`gpu_layers` is {gpu_layers}, but llama.cpp found no GPU to offload to: this build of \
             modelservice has no GPU backend (build it with the `cuda` feature), or the GPU's driver \
             is missing. Use 0 to run on the CPU."
        ),
    ))
}

/// How many GPUs llama.cpp can offload to: those its loaded backends registered (none before
/// the backend is loaded: `cpu_backend::load`, or any deploy).
pub fn gpu_count() -> usize {
    gpus().len()
}

/// Free memory of the GPUs llama.cpp can offload to (0 without any).
fn gpu_free_memory() -> u64 {
    gpus()
        .into_iter()
        .map(|dev| {
            let (mut free, mut total) = (0usize, 0usize);
            // SAFETY: a registered device; the query changes nothing.
            unsafe { llama_cpp_sys_2::ggml_backend_dev_memory(dev, &mut free, &mut total) };
            free as u64
        })
        .sum()
}

/// The GPU devices of llama.cpp's registered backends.
fn gpus() -> Vec<llama_cpp_sys_2::ggml_backend_dev_t> {
    use llama_cpp_sys_2 as sys;
    // SAFETY: device enumeration of registered backends; no state changes.
    unsafe {
        (0..sys::ggml_backend_dev_count())
            .map(|i| sys::ggml_backend_dev_get(i))
            .filter(|&dev| sys::ggml_backend_dev_type(dev) == sys::GGML_BACKEND_DEVICE_TYPE_GPU)
            .collect()
    }
}

/// Refuses a KV cache the machine cannot hold, before llama.cpp tries to allocate it (which
/// would fail with an opaque error, or succeed and get the process killed for memory).
///
/// The KV cache of offloaded layers goes to the GPUs, the rest (and the weights, which are
/// memory-mapped) to host memory. Compute buffers (tens of MB) are not counted.
pub(crate) fn check_kv_memory(req: &KvRequest) -> Result<()> {
    let tokens = req.slot_context as u64 * req.slots as u64 * req.instances as u64;
    let kv = req.geometry.bytes_per_token.saturating_mul(tokens);
    let layers = req.geometry.layers.max(1);
    let gpu_free = if req.gpu_layers > 0 {
        gpu_free_memory()
    } else {
        0
    };
    let offloaded = if gpu_free > 0 {
        u64::from(req.gpu_layers).min(layers)
    } else {
        0
    };
    let kv_gpu = (kv as u128 * offloaded as u128 / layers as u128) as u64;
    let kv_host = kv - kv_gpu;
    let shape = format!(
        "The KV cache of {} slots × {} tokens × {} instances ({} per token over {} layers) needs {}",
        req.slots,
        req.slot_context,
        req.instances,
        bytes(req.geometry.bytes_per_token),
        req.geometry.layers,
        bytes(kv)
    );
    let advice = "lower `context_length`, `slots` or `instances`";
    if kv_gpu > gpu_free {
        return Err(Error::invalid(
            req.param,
            format!(
                "{shape}, {} of it on the GPU, which has {} free; {advice}, or offload fewer `gpu_layers`.",
                bytes(kv_gpu),
                bytes(gpu_free)
            ),
        ));
    }
    let host = kv_host.saturating_add(req.weights);
    match available_memory() {
        Some(available) if host > available => Err(Error::invalid(
            req.param,
            format!(
                "{shape}; with {} of weights that is {} of memory, but this machine has {} available; {advice}.",
                bytes(req.weights),
                bytes(host),
                bytes(available)
            ),
        )),
        _ => Ok(()),
    }
}

/// A byte count for people: `1.5 GiB`, `23.0 KiB`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::KvGeometry;

    fn spec() -> ServiceSpec {
        ServiceSpec::new("t", "u/t", "/m.gguf")
    }

    /// The field named by the refusal, and its message.
    fn refusal(spec: &ServiceSpec) -> (String, String) {
        let err = spec.validate().expect_err("spec accepted");
        assert_eq!(err.status(), 400);
        (err.param().unwrap_or_default().to_owned(), err.to_string())
    }

    #[test]
    fn every_field_is_bounded_on_both_sides() {
        let with = |edit: &dyn Fn(&mut ServiceSpec)| {
            let mut s = spec();
            edit(&mut s);
            s
        };
        let cases = [
            (
                "instances",
                with(&|s| s.instances = 0),
                MAX_INSTANCES.to_string(),
            ),
            (
                "instances",
                with(&|s| s.instances = MAX_INSTANCES + 1),
                MAX_INSTANCES.to_string(),
            ),
            ("slots", with(&|s| s.slots = 0), MAX_SLOTS.to_string()),
            (
                "slots",
                with(&|s| s.slots = MAX_SLOTS + 1),
                MAX_SLOTS.to_string(),
            ),
            (
                "context_length",
                with(&|s| s.context_length = Some(MIN_CONTEXT_LENGTH - 1)),
                MAX_CONTEXT_LENGTH.to_string(),
            ),
            (
                "context_length",
                with(&|s| s.context_length = Some(MAX_CONTEXT_LENGTH + 1)),
                MAX_CONTEXT_LENGTH.to_string(),
            ),
            (
                "threads",
                with(&|s| s.threads = Some(0)),
                max_threads().to_string(),
            ),
            (
                "threads",
                with(&|s| s.threads = Some(max_threads() + 1)),
                max_threads().to_string(),
            ),
            (
                "queue_size",
                with(&|s| s.queue_size = 0),
                MAX_QUEUE_SIZE.to_string(),
            ),
            (
                "queue_size",
                with(&|s| s.queue_size = MAX_QUEUE_SIZE + 1),
                MAX_QUEUE_SIZE.to_string(),
            ),
            (
                "gpu_layers",
                with(&|s| s.gpu_layers = MAX_GPU_LAYERS + 1),
                MAX_GPU_LAYERS.to_string(),
            ),
        ];
        for (field, bad, bound) in &cases {
            let (param, message) = refusal(bad);
            assert_eq!(&param, field, "{message}");
            assert!(message.contains(bound.as_str()), "{field}: {message}");
        }
    }

    #[test]
    fn the_largest_allowed_values_pass() {
        let mut s = spec();
        s.instances = MAX_INSTANCES;
        s.slots = MAX_SLOTS;
        s.context_length = Some(MAX_CONTEXT_LENGTH);
        s.threads = Some(max_threads());
        s.queue_size = MAX_QUEUE_SIZE;
        s.gpu_layers = 999;
        s.validate().unwrap();
        // The whole context of a maximal instance still fits llama.cpp's 32-bit size.
        assert!(u32::try_from(MAX_SLOTS as u64 * u64::from(MAX_CONTEXT_LENGTH)).is_ok());
    }

    #[test]
    fn ten_thousand_threads_are_refused_not_run() {
        let mut s = spec();
        s.threads = Some(10_000);
        let (param, message) = refusal(&s);
        assert_eq!(param, "threads");
        assert!(message.contains("cores"), "{message}");
    }

    fn request(bytes_per_token: u64, slot_context: u32, instances: usize) -> KvRequest {
        KvRequest {
            geometry: KvGeometry {
                layers: 30,
                bytes_per_token,
            },
            slots: 4,
            slot_context,
            instances,
            gpu_layers: 0,
            weights: 100 << 20,
            param: "context_length",
        }
    }

    #[test]
    fn kv_cache_is_sized_against_available_memory() {
        let available = available_memory().expect("this test runs on Linux");
        assert!(available > 0);
        // 4 slots × 1024 tokens × 23 KiB: about 94 MiB, which any test machine holds.
        check_kv_memory(&request(23 << 10, 1024, 1)).unwrap();
        // Sized to need about twice what is available.
        let per_token = available / (4 * 1024 * 64) * 2 + 1;
        let err = check_kv_memory(&request(per_token, 1024, 64)).unwrap_err();
        assert_eq!(err.status(), 400);
        assert_eq!(err.param(), Some("context_length"));
        let message = err.to_string();
        assert!(
            message.contains("4 slots × 1024 tokens × 64 instances"),
            "{message}"
        );
        assert!(message.contains("available"), "{message}");
        // Absurd geometries saturate instead of overflowing.
        assert!(check_kv_memory(&request(u64::MAX, u32::MAX, MAX_INSTANCES)).is_err());
    }

    #[test]
    fn byte_counts_read_well() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(23 << 10), "23.0 KiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
    }
}
