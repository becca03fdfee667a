//! The one entry: every operation by its name, JSON in and JSON out (`ms_call`), its streaming
//! twin (`ms_call_stream`) and the list of names (`ms_operations`). The typed functions in
//! `conveniences.rs` go through [`call_into`] too, so no engine logic lives in this crate.

use std::ffi::c_char;

use engine::Operation;

use crate::error::{ms_status, FfiError};
use crate::ffi::{arg_ref, arg_str, Out};
use crate::panic::ffi_panic_boundary;
use crate::registry::ms_registry;
use crate::stream::ms_stream;

pub(crate) type Status = Result<ms_status, FfiError>;

/// Serves `op` with `body` through the engine's one entry and hands the answer to `out`.
pub(crate) fn call_into(registry: &ms_registry, op: &str, body: &str, out: Out<c_char>) -> Status {
    out.put_string(registry.engine().call_blocking(op, body)?)?;
    Ok(ms_status::Ok)
}

/// A request body: NULL means "no parameters" (`{}`), as an empty string does.
///
/// # Safety
/// As [`arg_str`].
unsafe fn body_arg<'a>(ptr: *const c_char) -> Result<&'a str, FfiError> {
    if ptr.is_null() {
        return Ok("");
    }
    // SAFETY: non-null, and the caller vouches for the string.
    unsafe { arg_str(ptr, "body_json") }
}

/// Serves any operation by name and returns its whole answer, blocking the calling thread
/// until it is done. This is the one entry: every operation of `ms_operations` is reachable
/// here, including ones added after this header was written.
///
/// `op` is the operation's name, its OpenAI SDK resource path, e.g. `"chat.completions.create"`
/// or `"services.deploy"` (`ms_operations` lists them all). `body_json` is the request
/// as a JSON object (e.g. `{"access_name": "u-8105f7322477/test"}` for `services.retrieve`);
/// NULL or `""` means no parameters (`{}`). Unknown fields are refused. A streamable operation
/// is answered whole here whatever its `stream` field; `ms_call_stream` streams it.
///
/// Ownership: on `MS_STATUS_OK`, `*result_json_out` is the answer as JSON (e.g. a
/// `chat.completion`, a service info, `{"object": "list", "data": [...]}`), owned by the
/// caller: free it with `ms_string_free`. On failure it is set to NULL.
///
/// Errors: `MS_STATUS_INVALID_REQUEST` (unknown operation, malformed JSON, an unknown field or
/// a bad value: the envelope's `param` names the field), `MS_STATUS_NOT_FOUND`,
/// `MS_STATUS_SERVICE_EXISTS`, `MS_STATUS_MODEL_LOAD_FAILED`,
/// `MS_STATUS_CONTEXT_LENGTH_EXCEEDED`, `MS_STATUS_OVERLOADED`,
/// `MS_STATUS_SERVICE_UNAVAILABLE`: each with its HTTP status (`ms_status_http_status`).
///
/// # Safety
/// `registry` is a live registry; `op` and `body_json` are NULL or NUL-terminated strings;
/// `result_json_out` is NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn ms_call(
    registry: *const ms_registry,
    op: *const c_char,
    body_json: *const c_char,
    result_json_out: *mut *mut c_char,
) -> ms_status {
    ffi_panic_boundary! {
        // SAFETY (all four): the caller vouches for the pointers.
        let out = unsafe { Out::new(result_json_out, "result_json_out") }?;
        let registry = unsafe { arg_ref(registry, "registry") }?;
        let op = unsafe { arg_str(op, "op") }?;
        let body = unsafe { body_arg(body_json) }?;
        call_into(registry, op, body, out)
    }
}

/// Starts a streamable operation (`"chat.completions.create"`) and returns the stream of its
/// chunks (`chat.completion.chunk` JSON); read them with `ms_stream_next`. The request is
/// parsed, validated and queued before this returns, so request errors come from here, not
/// from the stream. The body's `stream` field may be left out: this entry always streams;
/// `stream_options.include_usage` adds a final usage chunk.
///
/// Ownership: on `MS_STATUS_OK`, `*stream_out` is a new stream owned by the caller: free it
/// with `ms_stream_free`, which cancels the generation if it is still running. On failure it
/// is set to NULL.
///
/// Errors: as `ms_call`; an operation that does not stream is `MS_STATUS_INVALID_REQUEST`
/// with `param` `stream`.
///
/// # Safety
/// `registry` is a live registry; `op` and `body_json` are NULL or NUL-terminated strings;
/// `stream_out` is NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn ms_call_stream(
    registry: *const ms_registry,
    op: *const c_char,
    body_json: *const c_char,
    stream_out: *mut *mut ms_stream,
) -> ms_status {
    ffi_panic_boundary! {
        // SAFETY (all four): the caller vouches for the pointers.
        let out = unsafe { Out::new(stream_out, "stream_out") }?;
        let registry = unsafe { arg_ref(registry, "registry") }?;
        let op = unsafe { arg_str(op, "op") }?;
        let body = unsafe { body_arg(body_json) }?;
        call_stream_into(registry, op, body, out)
    }
}

/// Starts `op` as a stream through the engine's streaming entry and hands it to `out`.
pub(crate) fn call_stream_into(
    registry: &ms_registry,
    op: &str,
    body: &str,
    out: Out<ms_stream>,
) -> Status {
    out.put_box(ms_stream::new(registry.engine().stream(op, body)?));
    Ok(ms_status::Ok)
}

/// The names of every operation `ms_call` serves, as a JSON array of strings, e.g.
/// `["chat.completions.create","models.list",...]`.
///
/// Ownership: on `MS_STATUS_OK`, `*names_json_out` is owned by the caller: free it with
/// `ms_string_free`.
///
/// # Safety
/// `names_json_out` is NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn ms_operations(names_json_out: *mut *mut c_char) -> ms_status {
    ffi_panic_boundary! {
        // SAFETY: the caller vouches for the pointer.
        let out = unsafe { Out::new(names_json_out, "names_json_out") }?;
        out.put_json(&Operation::names())?;
        Ok(ms_status::Ok) as Status
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::{CStr, CString};

    use super::*;
    use crate::ffi::ms_string_free;
    use crate::registry::{ms_registry_free, ms_registry_new};

    /// Takes an owned string from the library.
    fn take(ptr: *mut c_char) -> String {
        assert!(!ptr.is_null());
        let text = unsafe { CStr::from_ptr(ptr) }.to_str().unwrap().to_owned();
        unsafe { ms_string_free(ptr) };
        text
    }

    #[test]
    fn operations_lists_every_core_operation() {
        let mut names = std::ptr::null_mut();
        assert_eq!(unsafe { ms_operations(&mut names) }, ms_status::Ok);
        let names: Vec<String> = serde_json::from_str(&take(names)).unwrap();
        assert_eq!(names, Operation::names());
    }

    #[test]
    fn call_serves_by_name_and_refuses_unknown_names() {
        let mut registry = std::ptr::null_mut();
        assert_eq!(unsafe { ms_registry_new(&mut registry) }, ms_status::Ok);
        let mut out = std::ptr::null_mut();
        let op = CString::new("services.list").unwrap();
        let status = unsafe { ms_call(registry, op.as_ptr(), std::ptr::null(), &mut out) };
        assert_eq!(status, ms_status::Ok);
        assert_eq!(take(out), r#"{"object":"list","data":[]}"#);

        let op = CString::new("services.lst").unwrap();
        let status = unsafe { ms_call(registry, op.as_ptr(), std::ptr::null(), &mut out) };
        assert_eq!(status, ms_status::InvalidRequest);
        assert!(out.is_null());
        unsafe { ms_registry_free(registry) };
    }
}
