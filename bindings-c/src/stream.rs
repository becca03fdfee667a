//! `ms_stream`: the chunks of a streamed operation, read one by one (a pull API).

use std::ffi::c_char;
use std::task::Poll;
use std::time::Duration;

use engine::ResponseStream;

use crate::error::{ms_status, FfiError};
use crate::ffi::{arg_mut, Out};
use crate::panic::ffi_panic_boundary;

/// The chunks of one streamed operation (a chat completion), from `ms_call_stream` or
/// `ms_chat_completions_create_stream`, each as the engine's JSON.
///
/// Free with `ms_stream_free`; freeing it before the end cancels the generation (the engine
/// stops within one decode step and frees the slot). A stream may move between threads, but
/// only one thread may use it at a time. It stays valid after its registry is freed.
#[allow(non_camel_case_types)]
pub struct ms_stream {
    inner: ResponseStream,
}

impl ms_stream {
    pub(crate) fn new(inner: ResponseStream) -> Self {
        ms_stream { inner }
    }
}

/// One step of a stream, whichever way it was polled.
fn deliver(next: Option<engine::Result<String>>, out: Out<c_char>) -> Result<ms_status, FfiError> {
    match next {
        Some(chunk) => {
            out.put_string(chunk?)?;
            Ok(ms_status::Ok)
        }
        None => Ok(ms_status::EndOfStream),
    }
}

/// Waits for the next chunk of the stream.
///
/// Returns `MS_STATUS_OK` with `*chunk_json_out` set to the next `chat.completion.chunk` as
/// JSON; `MS_STATUS_END_OF_STREAM` with `*chunk_json_out` set to NULL once every chunk has been
/// read (and on every later call); or an error status with `*chunk_json_out` NULL if the
/// generation failed, after which the stream is over.
///
/// The first chunk of each choice carries `delta.role = "assistant"`, then come content chunks,
/// then one with `finish_reason`, then (with `stream_options.include_usage`) a usage chunk with
/// empty `choices`.
///
/// Ownership: a chunk is owned by the caller: free it with `ms_string_free`.
///
/// # Safety
/// `stream` is a live stream that no other thread is using; `chunk_json_out` is NULL or valid
/// for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn ms_stream_next(
    stream: *mut ms_stream,
    chunk_json_out: *mut *mut c_char,
) -> ms_status {
    ffi_panic_boundary! {
        // SAFETY: the caller vouches for the pointers.
        let out = unsafe { Out::new(chunk_json_out, "chunk_json_out") }?;
        let stream = unsafe { arg_mut(stream, "stream") }?;
        deliver(stream.inner.next_blocking(), out)
    }
}

/// Like `ms_stream_next`, but waits at most `timeout_ms` milliseconds: if no chunk came by then
/// it returns `MS_STATUS_TIMEOUT` with `*chunk_json_out` NULL, and the stream goes on. Lets a
/// caller check for its own cancellation (a signal, a closed connection) while it waits.
/// A `timeout_ms` of 0 only takes a chunk that is already there.
///
/// Ownership: as `ms_stream_next`.
///
/// # Safety
/// As `ms_stream_next`.
#[no_mangle]
pub unsafe extern "C" fn ms_stream_next_timeout(
    stream: *mut ms_stream,
    timeout_ms: u64,
    chunk_json_out: *mut *mut c_char,
) -> ms_status {
    ffi_panic_boundary! {
        // SAFETY: the caller vouches for the pointers.
        let out = unsafe { Out::new(chunk_json_out, "chunk_json_out") }?;
        let stream = unsafe { arg_mut(stream, "stream") }?;
        match stream.inner.next_timeout(Duration::from_millis(timeout_ms)) {
            Poll::Ready(next) => deliver(next, out),
            Poll::Pending => Ok(ms_status::Timeout),
        }
    }
}

/// Frees a stream. If the completion is still being generated, this cancels it: the engine
/// stops it within one decode step. NULL is allowed and does nothing.
///
/// # Safety
/// `stream` is NULL or a stream from `ms_call_stream` or `ms_chat_completions_create_stream`
/// that has not been freed yet, and no other call is using it.
#[no_mangle]
pub unsafe extern "C" fn ms_stream_free(stream: *mut ms_stream) {
    ffi_panic_boundary! {
        if !stream.is_null() {
            // SAFETY: the pointer came from `Box::into_raw` in `Out::put_box`.
            drop(unsafe { Box::from_raw(stream) });
        }
    }
}
