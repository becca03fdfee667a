//! The threads llama.cpp computes with.
//!
//! Each llama context computes with a ggml CPU thread pool of its own. Without one attached,
//! ggml creates a pool for every graph it computes (every decode step) and joins it afterwards;
//! llama-cpp-2 has no call to attach one, so [`PooledContext`] does it through llama.cpp's C API.
//! (With the `openmp` feature OpenMP's team does the work and the attached pool stays unused.)
//!
//! ggml's pool waits at the barriers inside a step by spinning, never yielding. When one of its
//! threads loses its core (more threads than free cores: a busy host, or `threads` above the
//! core count), the others spin through whole time slices at each of a step's hundreds of
//! barriers, and a 10 ms step takes seconds (measured: two 16-token answers in 97 s instead of
//! 1 s). So each step runs against a deadline (see [`StepTimes`]); a step that overruns it is
//! aborted, undone and decoded again on the calling thread alone, and the pool is tried again
//! later, backing off while it keeps collapsing.
//!
//! Models are loaded on a thread that ends ([`on_own_thread`]). With the `openmp` feature,
//! loading runs OpenMP parallel regions (weight repacking for AMX and the like), which leave a
//! team of idle threads tied to the calling thread for as long as it lives. Counting those,
//! libgomp finds more threads than CPUs and stops spin-waiting, so every barrier of every later
//! decode step sleeps in the kernel (measured: 128 tokens in 1.9 s instead of 1.2 s).
//!
//! Public for programs that drive llama-cpp-2 next to the library (the benchmarks' raw loops),
//! so that they compute the way the library does.

use std::ffi::c_void;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::DecodeError;
use llama_cpp_sys_2 as sys;

use crate::error::{Error, Result};

type ThreadPoolNew =
    unsafe extern "C" fn(*mut sys::ggml_threadpool_params) -> *mut sys::ggml_threadpool;
type ThreadPoolFree = unsafe extern "C" fn(*mut sys::ggml_threadpool);

/// Runs `f` (a model load) on a thread of its own that ends when `f` returns, taking any
/// OpenMP team that `f` started with it. A panic in `f` comes back as `Err` with its message.
pub fn on_own_thread<T: Send>(f: impl FnOnce() -> T + Send) -> std::result::Result<T, String> {
    std::thread::scope(|scope| scope.spawn(f).join())
        .map_err(|panic| crate::error::panic_message(&*panic))
}

/// A llama context and the thread pool attached to it.
pub struct PooledContext<'m> {
    // Declared first, so dropped first: the context computes with the pool and calls back into
    // the deadline.
    ctx: LlamaContext<'m>,
    raw: *mut sys::llama_context,
    deadline: Box<Deadline>,
    threads: i32,
    /// Whether steps run against a deadline: only the pool's barriers spin without yielding
    /// (OpenMP's sleep when threads outnumber cores), so an OpenMP build is left unguarded.
    guarded: bool,
    times: StepTimes,
    mode: Mode,
    warned_at: Option<Instant>,
    pool: ThreadPool,
    /// Tests turn the deadlines off, to stop steps by node count only.
    #[cfg(test)]
    pub(crate) time_limits: bool,
}

// SAFETY: `raw` and the pool belong to `ctx` and move with it; all are used only by the thread
// that owns the `PooledContext`, as `LlamaContext` itself is.
unsafe impl Send for PooledContext<'_> {}

/// Whether steps run on the whole pool.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Pool,
    /// On the calling thread alone until `retry_at`; `backoff` is the wait after the next
    /// collapse.
    Alone {
        retry_at: Instant,
        backoff: Duration,
    },
}

/// The first wait before the pool is tried again after a collapse, and the longest. The first
/// is short because a single slow step can be a passing hiccup of the machine (one seen here:
/// 62 ms for a 7 ms step): its cost is then about half of this wait.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// At most one warning per this long, however often the pool collapses.
const WARN_EVERY: Duration = Duration::from_secs(60);

impl<'m> PooledContext<'m> {
    /// Attaches a new pool of `threads` threads (the calling thread among them) to `ctx`, for
    /// single-token and batch steps alike.
    pub fn new(ctx: LlamaContext<'m>, threads: i32) -> Result<Self> {
        let pool = ThreadPool::new(threads)?;
        let raw = raw_context(&ctx).ok_or_else(|| {
            Error::internal("cannot attach a thread pool: the llama context's address is unknown")
        })?;
        let deadline = Box::new(Deadline::new());
        // SAFETY: `raw` is the live context owned by `ctx`; the pool and the deadline outlive
        // it (field order), and the box's address does not move.
        unsafe {
            sys::llama_attach_threadpool(raw, pool.raw.as_ptr(), pool.raw.as_ptr());
            let data = &*deadline as *const Deadline as *mut c_void;
            sys::llama_set_abort_callback(raw, Some(Deadline::passed), data);
        }
        Ok(Self {
            ctx,
            raw,
            deadline,
            threads,
            guarded: !cfg!(feature = "openmp"),
            times: StepTimes::default(),
            mode: Mode::Pool,
            warned_at: None,
            pool,
            #[cfg(test)]
            time_limits: true,
        })
    }

    /// Leaves steps unguarded: for a model whose every layer runs on a GPU, the pool computes
    /// almost nothing, and its step times (learned from the GPU's) vary more than the budget
    /// allows: one step in about 400 was stopped and redone on an H200 (benches/RESULTS.md,
    /// "GPU").
    pub fn unguarded(mut self) -> Self {
        self.guarded = false;
        self
    }

    /// Decodes a model's BOS and EOS tokens once and forgets them, before any request, as
    /// llama.cpp's own programs warm up (common.cpp, "warming up the model"). It touches the
    /// mapped weights before a request does, and it gives the guard a step time to scale from:
    /// before any step was timed a step may take only one second, so a long first prompt
    /// overran it and was decoded again on one thread (589 tokens of SmolLM2 on 2 threads:
    /// 5.2 s instead of 2.2 s). Where it fails, a request meets the same failure and
    /// reports it, so the caller may go on.
    pub fn warm_up(&mut self, model: &LlamaModel) -> std::result::Result<Decoded, String> {
        let vocab = model.vocab();
        let n_vocab = vocab.n_tokens();
        let mut tokens: Vec<LlamaToken> = [vocab.bos(), vocab.eos()]
            .into_iter()
            .filter(|t| crate::guards::token_in_vocab(t.0, n_vocab))
            .collect();
        tokens.dedup();
        if tokens.is_empty() {
            tokens.push(LlamaToken(0));
        }
        let mut batch = LlamaBatch::new(tokens.len(), 1);
        for (pos, &token) in tokens.iter().enumerate() {
            let last = pos + 1 == tokens.len();
            batch
                .add(token, pos as i32, &[0], last)
                .map_err(|e| e.to_string())?;
        }
        let decoded = self.decode_step(&mut batch, tokens.len(), |ctx| ctx.clear_kv_cache());
        self.ctx.clear_kv_cache();
        decoded.map_err(|e| e.to_string())
    }

    /// Decodes `batch` (llama_decode), guarding against a collapsed pool: a step that runs far
    /// past the time steps of its size and context have taken before is aborted, `undo` removes
    /// from the KV cache what the batch wrote to it (llama.cpp keeps the ubatches that
    /// finished), and the step is decoded again on the calling thread alone. The answer is the
    /// same either way. `context`: the cells the batch's longest sequence reaches, its own
    /// tokens included.
    pub fn decode_step(
        &mut self,
        batch: &mut LlamaBatch<'_>,
        context: usize,
        undo: impl FnOnce(&mut LlamaContext<'m>),
    ) -> std::result::Result<Decoded, DecodeError> {
        let tokens = usize::try_from(batch.n_tokens()).unwrap_or(0);
        if !self.guarded || self.threads == 1 {
            return self.ctx.decode(batch).map(|()| Decoded::Once);
        }
        if let Mode::Alone { retry_at, .. } = self.mode {
            if Instant::now() < retry_at {
                return self
                    .decode_alone(batch, tokens, context)
                    .map(|()| Decoded::Once);
            }
            self.use_pool(true);
        }
        let budget = self.times.budget(tokens, context);
        // Tests that stop steps by node count keep a busy machine from stopping others.
        #[cfg(test)]
        let budget = if self.time_limits {
            budget
        } else {
            Duration::from_secs(3600)
        };
        let started = Instant::now();
        self.deadline.arm(started + budget);
        // llama.cpp logs a stopped step as a failed one: those lines are dropped.
        let decoded = crate::llama_log::held(
            || self.ctx.decode(batch),
            |decoded| matches!(decoded, Err(DecodeError::Unknown(ABORTED))),
        );
        self.deadline.disarm();
        let took = started.elapsed();
        match decoded {
            Err(DecodeError::Unknown(ABORTED)) => {
                undo(&mut self.ctx);
                let backoff = match self.mode {
                    Mode::Alone { backoff, .. } => backoff,
                    Mode::Pool => FIRST_BACKOFF,
                };
                if self.warned_at.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                    self.warned_at = Some(Instant::now());
                    tracing::warn!(
                        threads = self.threads,
                        tokens,
                        context,
                        took_ms = took.as_millis() as u64,
                        "a decode step overran its deadline (the pool's threads lack free \
                         cores); steps run on one thread for a while"
                    );
                }
                tracing::debug!(
                    tokens,
                    took_ms = took.as_millis() as u64,
                    retry_in_ms = backoff.as_millis() as u64,
                    "a decode step was stopped and is redone on one thread"
                );
                self.use_pool(false);
                self.mode = Mode::Alone {
                    retry_at: Instant::now() + backoff,
                    backoff: (backoff * 2).min(MAX_BACKOFF),
                };
                self.decode_alone(batch, tokens, context)
                    .map(|()| Decoded::Redone)
            }
            result => {
                if result.is_ok() {
                    if self.mode != Mode::Pool {
                        tracing::debug!(threads = self.threads, "decode steps use the pool again");
                    }
                    self.mode = Mode::Pool;
                    self.times.pool_took(tokens, context, took);
                }
                result.map(|()| Decoded::Once)
            }
        }
    }

    fn decode_alone(
        &mut self,
        batch: &mut LlamaBatch<'_>,
        tokens: usize,
        context: usize,
    ) -> std::result::Result<(), DecodeError> {
        let started = Instant::now();
        let decoded = self.ctx.decode(batch);
        if decoded.is_ok() {
            self.times
                .alone_took(tokens, context, started.elapsed(), self.threads);
        }
        decoded
    }

    /// Computes with the whole pool, or with the calling thread alone (ggml then computes
    /// without the pool, whose threads go to sleep).
    fn use_pool(&mut self, pool: bool) {
        let threads = if pool { self.threads } else { 1 };
        // SAFETY: `raw` is the live context owned by `self.ctx`; the pool outlives it.
        unsafe {
            if pool {
                let p = self.pool.raw.as_ptr();
                sys::llama_attach_threadpool(self.raw, p, p);
            } else {
                sys::llama_detach_threadpool(self.raw);
            }
            sys::llama_set_n_threads(self.raw, threads, threads);
        }
    }

    /// Whether steps run on the calling thread alone after a collapse of the pool.
    pub fn computes_alone(&self) -> bool {
        matches!(self.mode, Mode::Alone { .. })
    }

    /// Tests: the next step runs on the pool, guarded, and is stopped after `nodes` graph nodes
    /// as if its deadline had passed.
    #[cfg(test)]
    pub(crate) fn stop_next_step_after(&mut self, nodes: u64) {
        if self.computes_alone() {
            self.use_pool(true);
            self.mode = Mode::Pool;
        }
        self.deadline.nodes_left.store(nodes, Ordering::Relaxed);
    }

    /// Tests: graph nodes the last guarded step ran (one graph per ubatch).
    #[cfg(test)]
    pub(crate) fn nodes_of_last_guarded_step(&self) -> u64 {
        self.deadline.nodes_seen.load(Ordering::Relaxed)
    }
}

/// How [`PooledContext::decode_step`] decoded a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    /// In one go, with the pool or on the calling thread alone.
    Once,
    /// Stopped past its deadline, undone, and decoded again on the calling thread alone.
    Redone,
}

/// llama_decode's status for a step stopped by the abort callback.
const ABORTED: i32 = 2;

/// When the running step must stop. ggml's CPU backend asks [`Deadline::passed`] after each node
/// of the graph, on the calling thread.
struct Deadline {
    epoch: Instant,
    /// Nanoseconds after `epoch`; `u64::MAX` while no step is guarded.
    at: AtomicU64,
    /// Tests stop a guarded step after this many more nodes, as if its deadline had passed.
    #[cfg(test)]
    nodes_left: AtomicU64,
    /// Tests read how many nodes the last guarded step ran.
    #[cfg(test)]
    nodes_seen: AtomicU64,
}

impl Deadline {
    fn new() -> Self {
        Self {
            epoch: Instant::now(),
            at: AtomicU64::new(u64::MAX),
            #[cfg(test)]
            nodes_left: AtomicU64::new(u64::MAX),
            #[cfg(test)]
            nodes_seen: AtomicU64::new(0),
        }
    }

    fn arm(&self, at: Instant) {
        #[cfg(test)]
        self.nodes_seen.store(0, Ordering::Relaxed);
        let at = at.saturating_duration_since(self.epoch).as_nanos();
        self.at
            .store(u64::try_from(at).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    fn disarm(&self) {
        self.at.store(u64::MAX, Ordering::Relaxed);
    }

    /// The abort callback: whether the guarded step is past its deadline.
    unsafe extern "C" fn passed(data: *mut c_void) -> bool {
        // SAFETY: `data` is the `Deadline` boxed by the `PooledContext` that owns the context.
        let deadline = unsafe { &*(data as *const Deadline) };
        let at = deadline.at.load(Ordering::Relaxed);
        #[cfg(test)]
        if at != u64::MAX {
            deadline.nodes_seen.fetch_add(1, Ordering::Relaxed);
        }
        #[cfg(test)]
        if at != u64::MAX
            && deadline
                .nodes_left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                == Ok(1)
        {
            return true;
        }
        at != u64::MAX && deadline.epoch.elapsed().as_nanos() > u128::from(at)
    }
}

/// Steps are told apart by powers of two, in two ways: their tokens (class k holds steps of
/// 2^(k-1) < n ≤ 2^k tokens) and the longest context they attend (the same classes of cells),
/// since a step's attention grows with its context: one token of SmolLM2 took 7.5 ms after 100
/// cells and 57 ms after 8,000. The last class holds all larger ones.
const CLASSES: usize = 24;

/// How long steps of each size and context have taken, to set each step's deadline. The fastest
/// step is kept, not an average, so that collapsed steps cannot teach the guard to accept them.
struct StepTimes {
    /// By token class, then by context class.
    pool: [[Option<Duration>; CLASSES]; CLASSES],
}

impl Default for StepTimes {
    fn default() -> Self {
        Self {
            pool: [[None; CLASSES]; CLASSES],
        }
    }
}

impl StepTimes {
    /// A step this many times slower than its expected time is a collapse: one thread alone
    /// would be done sooner.
    const SLACK: u32 = 4;
    /// Added to every budget, for the scheduler's own noise on short steps.
    const MARGIN: Duration = Duration::from_millis(20);
    /// The budget of a step when no step was timed yet: a collapse costs seconds per step.
    const UNTIMED: Duration = Duration::from_secs(1);
    /// Context cells whose attention is taken to cost as much as the rest of a token's work,
    /// when a step reaches further than any timed: a token's time then grows as (this + cells).
    /// A lower figure expects more growth, so this one bounds every model whose own figure is
    /// higher: SmolLM2's is ~1,100 and Gemma 3 270M's ~37,000 (benches/RESULTS.md).
    const CELLS_PER_TOKEN_WORK: f64 = 256.0;

    fn class(n: usize) -> usize {
        let k = usize::BITS - n.saturating_sub(1).leading_zeros();
        (k as usize).min(CLASSES - 1)
    }

    /// The time the pool gets for a step of `tokens` tokens whose longest sequence reaches
    /// `context` cells.
    fn budget(&self, tokens: usize, context: usize) -> Duration {
        let (size, reach) = (Self::class(tokens), Self::class(context));
        // Every step timed bounds this one: one no larger and reaching no further took no
        // longer; each doubling of the tokens at most doubles a step's time (the cost per token
        // falls as batches grow), and a longer reach adds attention, linear in the cells.
        let expected = self
            .pool
            .iter()
            .enumerate()
            .flat_map(|(s, row)| {
                row.iter()
                    .enumerate()
                    .filter_map(move |(c, fastest)| fastest.map(|t| (s, c, t)))
            })
            .map(|(s, c, fastest)| {
                let sizes = 2f64.powi(size.saturating_sub(s) as i32);
                let cells = if reach > c {
                    // From the least the timed step can have reached to the most this one can.
                    let (from, to) = ((1u64 << c.saturating_sub(1)) as f64, (1u64 << reach) as f64);
                    (Self::CELLS_PER_TOKEN_WORK + to) / (Self::CELLS_PER_TOKEN_WORK + from)
                } else {
                    1.0
                };
                fastest.as_secs_f64() * sizes * cells
            })
            .min_by(f64::total_cmp);
        match expected {
            Some(seconds) => Duration::try_from_secs_f64(seconds)
                .unwrap_or(Duration::MAX)
                .saturating_mul(Self::SLACK)
                .saturating_add(Self::MARGIN),
            None => Self::UNTIMED,
        }
    }

    fn fastest(&mut self, tokens: usize, context: usize) -> &mut Option<Duration> {
        &mut self.pool[Self::class(tokens)][Self::class(context)]
    }

    fn pool_took(&mut self, tokens: usize, context: usize, took: Duration) {
        let fastest = self.fastest(tokens, context);
        *fastest = Some(fastest.map_or(took, |f| f.min(took)));
    }

    /// A step on one thread took `took`: the pool may take as long as that shared among its
    /// threads, whatever it took before.
    fn alone_took(&mut self, tokens: usize, context: usize, took: Duration, threads: i32) {
        let shared = took / threads.max(1) as u32;
        let fastest = self.fastest(tokens, context);
        *fastest = Some(fastest.map_or(shared, |f| f.max(shared)));
    }
}

impl<'m> Deref for PooledContext<'m> {
    type Target = LlamaContext<'m>;
    fn deref(&self) -> &Self::Target {
        &self.ctx
    }
}

impl DerefMut for PooledContext<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.ctx
    }
}

struct ThreadPool {
    raw: NonNull<sys::ggml_threadpool>,
    free: ThreadPoolFree,
}

impl ThreadPool {
    fn new(threads: i32) -> Result<Self> {
        // The functions live in the CPU backend module that was loaded (one per CPU variant).
        let (new, free) = cpu_backend_functions()
            .ok_or_else(|| Error::internal("llama.cpp's CPU backend has no thread pool"))?;
        // SAFETY: fills a plain struct with defaults.
        let mut params = unsafe { sys::ggml_threadpool_params_default(threads) };
        // SAFETY: valid params; the result is null on failure.
        let raw = unsafe { new(&mut params) };
        NonNull::new(raw)
            .map(|raw| Self { raw, free })
            .ok_or_else(|| {
                Error::internal(format!("cannot start a thread pool of {threads} threads"))
            })
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        // SAFETY: created by this backend's `ggml_threadpool_new`; no context uses it any more.
        unsafe { (self.free)(self.raw.as_ptr()) }
    }
}

fn cpu_backend_functions() -> Option<(ThreadPoolNew, ThreadPoolFree)> {
    // SAFETY: registry lookups by static NUL-terminated names; null when absent.
    unsafe {
        let reg = sys::ggml_backend_reg_by_name(c"CPU".as_ptr());
        if reg.is_null() {
            return None;
        }
        let new = sys::ggml_backend_reg_get_proc_address(reg, c"ggml_threadpool_new".as_ptr());
        let free = sys::ggml_backend_reg_get_proc_address(reg, c"ggml_threadpool_free".as_ptr());
        if new.is_null() || free.is_null() {
            return None;
        }
        // SAFETY: ggml-cpu.cpp hands out exactly these two functions under these names.
        Some((
            std::mem::transmute::<*mut std::ffi::c_void, ThreadPoolNew>(new),
            std::mem::transmute::<*mut std::ffi::c_void, ThreadPoolFree>(free),
        ))
    }
}

/// The `llama_context *` behind `ctx`. llama-cpp-2 keeps it private, but its `Debug` output
/// prints it (`LlamaContext { context: 0x… }`), and the crate is pinned exactly, so that format
/// cannot change under us (a unit test checks it against `llama_n_ctx`).
fn raw_context(ctx: &LlamaContext<'_>) -> Option<*mut sys::llama_context> {
    let shown = format!("{ctx:?}");
    let hex = shown.split("context: 0x").nth(1)?;
    let hex = &hex[..hex.find(|c: char| !c.is_ascii_hexdigit())?];
    let address = usize::from_str_radix(hex, 16).ok()?;
    (address != 0).then_some(address as *mut sys::llama_context)
}

#[cfg(test)]
mod tests {
    use super::*;
    use llama_cpp_2::context::params::LlamaContextParams;
    use llama_cpp_2::llama_backend::LlamaBackend;
    use llama_cpp_2::model::params::LlamaModelParams;
    use llama_cpp_2::model::LlamaModel;
    use llama_cpp_2::token::LlamaToken;
    use std::num::NonZeroU32;

    const MS: Duration = Duration::from_millis(1);

    fn smollm2() -> (&'static LlamaBackend, LlamaModel) {
        let backend = crate::backend::backend().expect("backend");
        let path = modelservice_test_models::smollm2();
        let model =
            LlamaModel::load_from_file(backend, path, &LlamaModelParams::default()).expect("model");
        (backend, model)
    }

    #[test]
    fn a_step_gets_four_times_the_fastest_of_its_size_and_a_margin() {
        // Every step here attends the same context, C cells.
        const C: usize = 1000;
        let mut times = StepTimes::default();
        assert_eq!(times.budget(1, C), StepTimes::UNTIMED);
        times.pool_took(1, C, 10 * MS);
        times.pool_took(1, C, 30 * MS);
        assert_eq!(times.budget(1, C), 60 * MS, "4 × the fastest 10 ms + 20 ms");
        // A size not timed yet takes no longer than a larger size that was, nor than a smaller
        // one times the ratio of their sizes.
        assert_eq!(times.budget(3, C), 180 * MS, "4 × 4 × 10 ms + 20 ms");
        times.pool_took(128, C, 100 * MS);
        assert_eq!(times.budget(3, C), 180 * MS);
        assert_eq!(times.budget(65, C), 420 * MS, "4 × 100 ms + 20 ms");
        // Larger than any size timed: the largest one times the ratio of their sizes.
        assert_eq!(times.budget(129, C), 820 * MS, "4 × 2 × 100 ms + 20 ms");
        // One thread took 200 ms for a token: two threads may take 100 ms, whatever they took
        // before.
        times.alone_took(1, C, 200 * MS, 2);
        assert_eq!(times.budget(1, C), 420 * MS);
        times.alone_took(1, C, 40 * MS, 2);
        assert_eq!(
            times.budget(1, C),
            420 * MS,
            "the pool's time is not lowered by one thread"
        );
    }

    #[test]
    fn a_step_may_take_longer_the_longer_its_context() {
        let mut times = StepTimes::default();
        // One token after 100 cells (class 65-128): 8 ms. After 8,000 cells (4,097-8,192) a
        // token may take (256 + 8,192) / (256 + 64) times as long until a step that long is
        // timed.
        times.pool_took(1, 100, 8 * MS);
        assert_eq!(times.budget(1, 8000), budget(8.0 * 8448.0 / 320.0));
        times.pool_took(1, 8000, 57 * MS);
        assert_eq!(times.budget(1, 8000), 248 * MS, "4 × 57 ms + 20 ms");
        assert_eq!(
            times.budget(1, 100),
            52 * MS,
            "short contexts keep their budget"
        );
        // A larger step timed at a longer context bounds a smaller one at a shorter context.
        times.pool_took(512, 8000, 3000 * MS);
        assert_eq!(times.budget(58, 4000), 12_020 * MS, "4 × 3,000 ms + 20 ms");
        assert_eq!(
            times.budget(600, 8000),
            24_020 * MS,
            "4 × 2 × 3,000 ms + 20 ms"
        );
        // Short contexts add little: a first prompt of 20 tokens after a warm-up of 2.
        let mut times = StepTimes::default();
        times.pool_took(2, 2, 4 * MS);
        assert_eq!(times.budget(20, 20), budget(4.0 * 16.0 * 288.0 / 257.0));
    }

    /// 4 × `ms` + 20 ms, as the guard rounds it.
    fn budget(ms: f64) -> Duration {
        Duration::try_from_secs_f64(ms / 1000.0).unwrap() * StepTimes::SLACK + StepTimes::MARGIN
    }

    /// Greedy continuation of `prompt` (one sequence), each step through `decode_step`; how the
    /// prompt's step was decoded, and whether the steps ran on one thread right after it.
    fn greedy(
        ctx: &mut PooledContext<'_>,
        prompt: &[LlamaToken],
        n: usize,
    ) -> (Vec<LlamaToken>, Decoded, bool) {
        ctx.clear_kv_cache();
        let mut batch = LlamaBatch::new(prompt.len(), 1);
        batch.add_sequence(prompt, 0, false).unwrap();
        let mut from = 0;
        let mut context = prompt.len();
        let mut answer = Vec::new();
        let mut prompt_step = (Decoded::Once, false);
        loop {
            let decoded = ctx
                .decode_step(&mut batch, context, |ctx| {
                    ctx.kv_cache_seq_rm(0, Some(from), None).unwrap();
                })
                .expect("decode");
            if answer.is_empty() {
                prompt_step = (decoded, ctx.computes_alone());
            }
            let logits = ctx.get_logits_ith(batch.n_tokens() - 1);
            let best = (0..logits.len()).max_by(|&a, &b| logits[a].total_cmp(&logits[b]));
            let token = LlamaToken(best.unwrap() as i32);
            answer.push(token);
            if answer.len() == n {
                return (answer, prompt_step.0, prompt_step.1);
            }
            from = (prompt.len() + answer.len() - 1) as u32;
            context = from as usize + 1;
            batch.clear();
            batch.add(token, from as i32, &[0], true).unwrap();
        }
    }

    #[test]
    fn a_step_stopped_midway_is_undone_and_decoded_again_on_one_thread() {
        let (backend, model) = smollm2();
        let prompt = model.vocab().tokenize(
            b"The lighthouse keeper climbed the stairs every evening, lit the lamp, and \
              watched the ships pass. One night a storm came in from the west and",
            true,
            false,
        );
        assert!(
            prompt.len() > 24,
            "the prompt spans more than three ubatches"
        );
        let context = || {
            let params = LlamaContextParams::default()
                .with_n_ctx(NonZeroU32::new(256))
                .with_n_batch(64)
                .with_n_ubatch(8)
                .with_n_threads(2)
                .with_n_threads_batch(2);
            PooledContext::new(model.new_context(backend, params).unwrap(), 2).unwrap()
        };
        let mut ctx = context();
        ctx.guarded = true;
        ctx.time_limits = false;
        let (expected, decoded, alone) = greedy(&mut ctx, &prompt, 8);
        assert_eq!((decoded, alone), (Decoded::Once, false));
        // How many nodes one ubatch of 8 tokens computes (the abort callback runs after each).
        greedy(&mut ctx, &prompt[..8], 1);
        let per_ubatch = ctx.nodes_of_last_guarded_step();
        assert!(per_ubatch > 10, "{per_ubatch} nodes");

        // Stop the prompt's step in its third ubatch: two are in the KV cache by then.
        let mut ctx = context();
        ctx.guarded = true;
        ctx.time_limits = false;
        ctx.stop_next_step_after(per_ubatch * 5 / 2);
        let (answer, decoded, alone) = greedy(&mut ctx, &prompt, 8);
        assert_eq!(decoded, Decoded::Redone);
        assert_eq!(
            ctx.deadline.nodes_left.load(Ordering::Relaxed),
            0,
            "the step was stopped"
        );
        assert!(alone, "steps run on one thread after a stop");
        assert_eq!(answer, expected);
    }

    #[test]
    fn a_warm_up_times_a_step_and_leaves_the_cache_empty() {
        let (backend, model) = smollm2();
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(256))
            .with_n_threads(2)
            .with_n_threads_batch(2);
        let mut ctx = PooledContext::new(model.new_context(backend, params).unwrap(), 2).unwrap();
        ctx.guarded = true;
        assert_eq!(
            ctx.times.budget(512, 512),
            StepTimes::UNTIMED,
            "nothing timed yet"
        );
        ctx.warm_up(&model).expect("warm-up");
        assert_ne!(
            ctx.times.budget(512, 512),
            StepTimes::UNTIMED,
            "a long first prompt's budget scales from the warm-up's step"
        );
        assert_eq!(
            ctx.kv_cache_seq_pos_max(0),
            -1,
            "the warm-up's tokens are forgotten"
        );
    }

    #[test]
    fn the_raw_context_is_the_one_llama_cpp_2_wraps() {
        let (backend, model) = smollm2();
        for n_ctx in [256, 512] {
            let ctx = model
                .new_context(
                    backend,
                    LlamaContextParams::default().with_n_ctx(NonZeroU32::new(n_ctx)),
                )
                .expect("context");
            let raw = raw_context(&ctx).expect("address");
            // SAFETY: reads a field of the context found above.
            assert_eq!(unsafe { sys::llama_n_ctx(raw) }, ctx.n_ctx());
            assert_eq!(ctx.n_ctx(), n_ctx);
            let pooled = PooledContext::new(ctx, 2).expect("pool");
            assert_eq!(pooled.n_ctx(), n_ctx);
        }
    }
}
