//! No panic crosses into C: every `extern "C"` body runs inside [`ffi_panic_boundary!`],
//! which catches an unwinding panic and turns it into the function's failure value.

use std::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::{finish, ms_status, FfiError};

/// What an `extern "C"` body produces, and what its caller gets back if it panicked.
pub(crate) trait Boundary {
    type Output;
    fn complete(self) -> Self::Output;
    fn panicked(message: String) -> Self::Output;
}

/// Status functions: the error goes to the thread's last error, the status to the caller.
impl Boundary for Result<ms_status, FfiError> {
    type Output = ms_status;
    fn complete(self) -> ms_status {
        finish(self)
    }
    fn panicked(message: String) -> ms_status {
        finish(Err(FfiError::Panic(message)))
    }
}

/// Free functions: nothing to report.
impl Boundary for () {
    type Output = ();
    fn complete(self) {}
    fn panicked(_: String) {}
}

/// Borrowed strings: NULL.
impl Boundary for *const c_char {
    type Output = *const c_char;
    fn complete(self) -> *const c_char {
        self
    }
    fn panicked(_: String) -> *const c_char {
        std::ptr::null()
    }
}

impl Boundary for u16 {
    type Output = u16;
    fn complete(self) -> u16 {
        self
    }
    fn panicked(_: String) -> u16 {
        0
    }
}

/// Runs `body`, catching a panic. `AssertUnwindSafe` is sound here: after a panic the call
/// fails and the caller sees an error status; a handle it touched stays usable or is freed.
pub(crate) fn guard<B: Boundary>(body: impl FnOnce() -> B) -> B::Output {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value.complete(),
        Err(payload) => B::panicked(engine::error::panic_message(&*payload)),
    }
}

/// Wraps an `extern "C"` function body so no panic unwinds into the caller.
macro_rules! ffi_panic_boundary {
    ($($body:tt)*) => {
        $crate::panic::guard(move || { $($body)* })
    };
}
pub(crate) use ffi_panic_boundary;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_the_panic_status() {
        let status = guard(|| -> Result<ms_status, FfiError> { panic!("deliberate") });
        assert_eq!(status, ms_status::Panic);
        let json = unsafe { std::ffi::CStr::from_ptr(crate::error::ms_last_error_json()) };
        assert!(json.to_str().unwrap().contains("deliberate"));
        assert!(guard(|| -> *const c_char { panic!("x") }).is_null());
    }
}
