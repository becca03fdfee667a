//! llama.cpp's log lines, as llama-cpp-2 routes them into `tracing`, with one addition: the
//! lines a call writes on the calling thread can be held back and dropped, so that a decode step
//! the library stops on purpose (the thread guard in [`crate::threads`]) does not log llama.cpp's
//! "failed to decode" errors.

use std::cell::RefCell;
use std::ffi::{c_char, c_void, CStr, CString};
use std::sync::OnceLock;

use llama_cpp_sys_2 as sys;

type Callback = unsafe extern "C" fn(sys::ggml_log_level, *const c_char, *mut c_void);

/// llama-cpp-2's callback and the state it keeps for ggml's lines, where llama.cpp's lines go
/// too (llama-cpp-2 keeps its llama.cpp state private; the lines differ only in their `module`).
static FORWARD: OnceLock<(Callback, usize)> = OnceLock::new();

thread_local! {
    /// The lines held back on this thread, while a call runs under [`held`].
    static HELD: RefCell<Option<Vec<(sys::ggml_log_level, CString)>>> = const { RefCell::new(None) };
}

/// Routes llama.cpp's lines through [`intercept`]; called once, after llama-cpp-2 routed them
/// (and ggml's) into `tracing`.
pub(crate) fn install() {
    let mut callback = None;
    let mut data = std::ptr::null_mut();
    // SAFETY: reads the logger llama-cpp-2 set for ggml (llama_log_get returns ggml's).
    unsafe { sys::llama_log_get(&mut callback, &mut data) };
    let Some(callback) = callback else { return };
    if FORWARD.set((callback, data as usize)).is_err() {
        return;
    }
    // SAFETY: llama_log_set also sets ggml's logger, so ggml's is put back right after.
    unsafe {
        sys::llama_log_set(Some(intercept), std::ptr::null_mut());
        sys::ggml_log_set(Some(callback), data);
    }
}

unsafe extern "C" fn intercept(level: sys::ggml_log_level, text: *const c_char, _: *mut c_void) {
    let held = HELD.with(|held| match held.borrow_mut().as_mut() {
        Some(lines) if !text.is_null() => {
            // SAFETY: llama.cpp passes a NUL-terminated line.
            lines.push((level, unsafe { CStr::from_ptr(text) }.to_owned()));
            true
        }
        _ => false,
    });
    if !held {
        forward(level, text);
    }
}

fn forward(level: sys::ggml_log_level, text: *const c_char) {
    if let Some(&(callback, data)) = FORWARD.get() {
        // SAFETY: llama-cpp-2's callback with its own state, as llama.cpp would call it.
        unsafe { callback(level, text, data as *mut c_void) };
    }
}

/// Runs `f` (calls into llama.cpp on this thread) holding back the lines it logs; they are
/// logged afterwards, unless `quiet(&result)` says the outcome was expected.
pub(crate) fn held<T>(f: impl FnOnce() -> T, quiet: impl FnOnce(&T) -> bool) -> T {
    let outer = HELD.with(|held| held.borrow_mut().replace(Vec::new()));
    let result = f();
    let lines = HELD.with(|held| std::mem::replace(&mut *held.borrow_mut(), outer));
    if !quiet(&result) {
        for (level, line) in lines.into_iter().flatten() {
            // SAFETY: a NUL-terminated line; held again if an outer `held` is running.
            unsafe { intercept(level, line.as_ptr(), std::ptr::null_mut()) };
        }
    }
    result
}
