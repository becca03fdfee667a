//! The threads llama.cpp computes with.
//!
//! Each llama context computes with a ggml CPU thread pool of its own. Without one attached,
//! ggml creates a pool for every graph it computes (every decode step) and joins it afterwards;
//! llama-cpp-2 has no call to attach one, so [`PooledContext`] does it through llama.cpp's C API.
//! (With the `openmp` feature OpenMP's team does the work and the attached pool stays unused.)
//!
//! Models are loaded on a thread that ends ([`on_own_thread`]). With the `openmp` feature,
//! loading runs OpenMP parallel regions (weight repacking for AMX and the like), which leave a
//! team of idle threads tied to the calling thread for as long as it lives. Counting those,
//! libgomp finds more threads than CPUs and stops spin-waiting, so every barrier of every later
//! decode step sleeps in the kernel (measured: 128 tokens in 1.9 s instead of 1.2 s).
//!
//! Public for programs that drive llama-cpp-2 next to the library (the benchmarks' raw loops),
//! so that they compute the way the library does.

use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use llama_cpp_2::context::LlamaContext;
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
    // Declared before the pool, so dropped before it: the context computes with the pool.
    ctx: LlamaContext<'m>,
    _pool: ThreadPool,
}

impl<'m> PooledContext<'m> {
    /// Attaches a new pool of `threads` threads (the calling thread among them) to `ctx`, for
    /// single-token and batch steps alike.
    pub fn new(ctx: LlamaContext<'m>, threads: i32) -> Result<Self> {
        let pool = ThreadPool::new(threads)?;
        let raw = raw_context(&ctx).ok_or_else(|| {
            Error::internal("cannot attach a thread pool: the llama context's address is unknown")
        })?;
        // SAFETY: `raw` is the live context owned by `ctx`; the pool outlives it (field order).
        unsafe { sys::llama_attach_threadpool(raw, pool.raw.as_ptr(), pool.raw.as_ptr()) };
        Ok(Self { ctx, _pool: pool })
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

// SAFETY: a pool is used only through the context of the thread that owns both.
unsafe impl Send for ThreadPool {}

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
    use llama_cpp_2::model::params::LlamaModelParams;
    use llama_cpp_2::model::LlamaModel;
    use std::num::NonZeroU32;

    #[test]
    fn the_raw_context_is_the_one_llama_cpp_2_wraps() {
        let backend = crate::backend::backend().expect("backend");
        let path = modelservice_test_models::smollm2();
        let model =
            LlamaModel::load_from_file(backend, path, &LlamaModelParams::default()).expect("model");
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
