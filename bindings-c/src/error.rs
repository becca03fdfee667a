//! Statuses and the thread's last error: the one place where engine errors become C results.

use std::cell::RefCell;
use std::ffi::{c_char, CString};

use engine::{Error, ErrorBody, ErrorEnvelope};

use crate::panic::ffi_panic_boundary;

/// What a call did. Every function that can fail returns one of these.
///
/// Error values are the HTTP status of the equivalent OpenAI error times ten, plus a digit
/// that tells apart errors sharing a status: `status / 10` is the HTTP status for every
/// value from 4000 up. The details of a failure (the OpenAI error envelope) are in
/// `ms_last_error_json()`.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ms_status {
    /// Success.
    Ok = 0,
    /// `ms_stream_next` has no more chunks: the completion is over. Not an error.
    EndOfStream = 1,
    /// `ms_stream_next_timeout` waited its full time without a chunk. Not an error.
    Timeout = 2,
    /// The request or spec is invalid: malformed JSON, a missing field, a value out of
    /// range, a wrong delete confirmation (HTTP 400, `invalid_request_error`).
    InvalidRequest = 4000,
    /// The prompt plus `max_tokens` does not fit the service's context (HTTP 400).
    ContextLengthExceeded = 4001,
    /// The model file could not be loaded (HTTP 400).
    ModelLoadFailed = 4002,
    /// A required pointer argument was NULL; the envelope's `param` names it.
    NullArgument = 4003,
    /// A string argument was not valid UTF-8; the envelope's `param` names it.
    InvalidUtf8 = 4004,
    /// Authentication failed (HTTP 401).
    Authentication = 4010,
    /// No service is deployed under this access name (HTTP 404, `model_not_found`).
    NotFound = 4040,
    /// A service with this access name already exists (HTTP 409).
    ServiceExists = 4090,
    /// The request is larger than accepted (HTTP 413).
    PayloadTooLarge = 4130,
    /// The service's queue is full; retry later or scale up (HTTP 429).
    Overloaded = 4290,
    /// The request was cancelled before it finished (HTTP 499).
    Cancelled = 4990,
    /// A failure inside the engine (HTTP 500).
    Internal = 5000,
    /// A bug: the library panicked, and the call was stopped at the C boundary (HTTP 500).
    Panic = 5001,
    /// The service exists but is not running: loading, scaling down or deleting (HTTP 503).
    ServiceUnavailable = 5030,
}

impl ms_status {
    /// The HTTP status an OpenAI server would answer with; 200 for the non-error values.
    pub(crate) fn http_status(self) -> u16 {
        match self as u32 {
            v if v >= 4000 => (v / 10) as u16,
            _ => 200,
        }
    }

    /// The constant's name as the header spells it, NUL-terminated.
    fn name(self) -> &'static [u8] {
        match self {
            ms_status::Ok => b"MS_STATUS_OK\0",
            ms_status::EndOfStream => b"MS_STATUS_END_OF_STREAM\0",
            ms_status::Timeout => b"MS_STATUS_TIMEOUT\0",
            ms_status::InvalidRequest => b"MS_STATUS_INVALID_REQUEST\0",
            ms_status::ContextLengthExceeded => b"MS_STATUS_CONTEXT_LENGTH_EXCEEDED\0",
            ms_status::ModelLoadFailed => b"MS_STATUS_MODEL_LOAD_FAILED\0",
            ms_status::NullArgument => b"MS_STATUS_NULL_ARGUMENT\0",
            ms_status::InvalidUtf8 => b"MS_STATUS_INVALID_UTF8\0",
            ms_status::Authentication => b"MS_STATUS_AUTHENTICATION\0",
            ms_status::NotFound => b"MS_STATUS_NOT_FOUND\0",
            ms_status::ServiceExists => b"MS_STATUS_SERVICE_EXISTS\0",
            ms_status::PayloadTooLarge => b"MS_STATUS_PAYLOAD_TOO_LARGE\0",
            ms_status::Overloaded => b"MS_STATUS_OVERLOADED\0",
            ms_status::Cancelled => b"MS_STATUS_CANCELLED\0",
            ms_status::Internal => b"MS_STATUS_INTERNAL\0",
            ms_status::Panic => b"MS_STATUS_PANIC\0",
            ms_status::ServiceUnavailable => b"MS_STATUS_SERVICE_UNAVAILABLE\0",
        }
    }

    fn from_u32(value: u32) -> Option<Self> {
        all_statuses().into_iter().find(|s| *s as u32 == value)
    }
}

/// Every status, for lookups by number.
fn all_statuses() -> [ms_status; 17] {
    [
        ms_status::Ok,
        ms_status::EndOfStream,
        ms_status::Timeout,
        ms_status::InvalidRequest,
        ms_status::ContextLengthExceeded,
        ms_status::ModelLoadFailed,
        ms_status::NullArgument,
        ms_status::InvalidUtf8,
        ms_status::Authentication,
        ms_status::NotFound,
        ms_status::ServiceExists,
        ms_status::PayloadTooLarge,
        ms_status::Overloaded,
        ms_status::Cancelled,
        ms_status::Internal,
        ms_status::Panic,
        ms_status::ServiceUnavailable,
    ]
}

/// A failed call: an engine error, or one found at the C boundary itself.
#[derive(Debug)]
pub(crate) enum FfiError {
    Engine(Error),
    NullArgument(&'static str),
    InvalidUtf8(&'static str, std::str::Utf8Error),
    Panic(String),
}

impl From<Error> for FfiError {
    fn from(e: Error) -> Self {
        FfiError::Engine(e)
    }
}

impl FfiError {
    pub(crate) fn status(&self) -> ms_status {
        match self {
            FfiError::Engine(e) => engine_status(e),
            FfiError::NullArgument(_) => ms_status::NullArgument,
            FfiError::InvalidUtf8(..) => ms_status::InvalidUtf8,
            FfiError::Panic(_) => ms_status::Panic,
        }
    }

    /// The OpenAI error envelope; boundary errors get one shaped like the engine's.
    pub(crate) fn envelope(&self) -> ErrorEnvelope {
        let body = |message: String, kind: &str, param: Option<&str>, code: &str| ErrorBody {
            message,
            kind: kind.to_owned(),
            param: param.map(str::to_owned),
            code: Some(code.to_owned()),
        };
        ErrorEnvelope {
            error: match self {
                FfiError::Engine(e) => e.body(),
                FfiError::NullArgument(param) => body(
                    format!("`{param}` must not be NULL."),
                    "invalid_request_error",
                    Some(param),
                    "null_argument",
                ),
                FfiError::InvalidUtf8(param, e) => body(
                    format!("`{param}` is not valid UTF-8: {e}."),
                    "invalid_request_error",
                    Some(param),
                    "invalid_utf8",
                ),
                FfiError::Panic(message) => body(
                    format!("modelservice panicked: {message}"),
                    "server_error",
                    None,
                    "panic",
                ),
            },
        }
    }
}

/// Maps an engine error to its status: by variant, else (a variant added later) by its HTTP
/// status, so every engine error lands on a status.
fn engine_status(e: &Error) -> ms_status {
    match e {
        Error::InvalidRequest { .. } => ms_status::InvalidRequest,
        Error::ContextLengthExceeded { .. } => ms_status::ContextLengthExceeded,
        Error::ModelLoad { .. } => ms_status::ModelLoadFailed,
        Error::Authentication { .. } => ms_status::Authentication,
        Error::ModelNotFound { .. } => ms_status::NotFound,
        Error::ServiceExists { .. } => ms_status::ServiceExists,
        Error::PayloadTooLarge { .. } => ms_status::PayloadTooLarge,
        Error::Overloaded { .. } => ms_status::Overloaded,
        Error::Cancelled => ms_status::Cancelled,
        Error::Internal { .. } => ms_status::Internal,
        Error::ServiceUnavailable { .. } => ms_status::ServiceUnavailable,
        other => match other.status() {
            400 => ms_status::InvalidRequest,
            401 => ms_status::Authentication,
            404 => ms_status::NotFound,
            409 => ms_status::ServiceExists,
            413 => ms_status::PayloadTooLarge,
            429 => ms_status::Overloaded,
            499 => ms_status::Cancelled,
            503 => ms_status::ServiceUnavailable,
            _ => ms_status::Internal,
        },
    }
}

/// The last failure of a call on this thread, kept as C strings so pointers can be lent out.
struct LastError {
    json: CString,
    message: CString,
}

thread_local! {
    static LAST_ERROR: RefCell<Option<LastError>> = const { RefCell::new(None) };
}

/// Records the outcome of a call: clears the last error on success, stores it on failure.
pub(crate) fn finish(result: Result<ms_status, FfiError>) -> ms_status {
    match result {
        Ok(status) => {
            set_last_error(None);
            status
        }
        Err(e) => {
            let envelope = e.envelope();
            // serde_json escapes control characters, so the JSON has no interior NUL.
            let json = serde_json::to_string(&envelope).unwrap_or_default();
            set_last_error(Some(LastError {
                json: CString::new(json).unwrap_or_default(),
                message: CString::new(envelope.error.message.replace('\0', " "))
                    .unwrap_or_default(),
            }));
            e.status()
        }
    }
}

fn set_last_error(error: Option<LastError>) {
    // `try_with`: during thread teardown the slot may be gone; losing the message is fine then.
    let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = error);
}

fn last_error_ptr(field: fn(&LastError) -> *const c_char) -> *const c_char {
    LAST_ERROR
        .try_with(|slot| slot.borrow().as_ref().map_or(std::ptr::null(), field))
        .unwrap_or(std::ptr::null())
}

/// The OpenAI error envelope of the last failed call on the calling thread, e.g.
/// `{"error":{"message":"...","type":"invalid_request_error","param":"messages","code":"invalid_value"}}`,
/// or NULL if the thread's last status-returning call succeeded.
///
/// Ownership: borrowed. The string belongs to the library and stays valid until the next call
/// on this thread that returns an `ms_status`; copy it to keep it. Do not free it.
#[no_mangle]
pub extern "C" fn ms_last_error_json() -> *const c_char {
    ffi_panic_boundary! { last_error_ptr(|e| e.json.as_ptr()) }
}

/// The message of the last failed call on the calling thread (the envelope's `message`),
/// or NULL if the thread's last status-returning call succeeded.
///
/// Ownership: borrowed, valid until the next call on this thread that returns an
/// `ms_status`. Do not free it.
#[no_mangle]
pub extern "C" fn ms_last_error_message() -> *const c_char {
    ffi_panic_boundary! { last_error_ptr(|e| e.message.as_ptr()) }
}

/// The constant's name for a status, e.g. `"MS_STATUS_NOT_FOUND"`, or `"MS_STATUS_UNKNOWN"`
/// for a value that is not a status.
///
/// Ownership: a static string; never free it.
#[no_mangle]
pub extern "C" fn ms_status_name(status: u32) -> *const c_char {
    ffi_panic_boundary! {
        let name: &'static [u8] = ms_status::from_u32(status).map_or(b"MS_STATUS_UNKNOWN\0", ms_status::name);
        name.as_ptr().cast()
    }
}

/// The HTTP status that an OpenAI-compatible server answers with for this status: 200 for
/// `MS_STATUS_OK`, `MS_STATUS_END_OF_STREAM` and `MS_STATUS_TIMEOUT`, else `status / 10`;
/// 0 for a value that is not a status.
#[no_mangle]
pub extern "C" fn ms_status_http_status(status: u32) -> u16 {
    ffi_panic_boundary! { ms_status::from_u32(status).map_or(0, ms_status::http_status) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn every_engine_error_maps_to_its_http_status() {
        let errors = [
            Error::invalid("temperature", "bad"),
            Error::ModelNotFound { model: "x".into() },
            Error::ContextLengthExceeded {
                context_length: 1,
                requested: 2,
                prompt_tokens: 1,
                completion_tokens: 1,
                param: "messages",
            },
            Error::Overloaded {
                model: "x".into(),
                queue_size: 1,
            },
            Error::ServiceUnavailable {
                model: "x".into(),
                status: "loading".into(),
            },
            Error::ServiceExists {
                access_name: "x".into(),
            },
            Error::ModelLoad {
                path: "p".into(),
                reason: "r".into(),
            },
            Error::Authentication {
                message: "m".into(),
            },
            Error::PayloadTooLarge { limit: 1 },
            Error::Cancelled,
            Error::internal("boom"),
        ];
        for e in errors {
            let status = engine_status(&e);
            assert_eq!(status.http_status(), e.status(), "{e:?} -> {status:?}");
        }
    }

    #[test]
    fn names_match_the_values() {
        for s in all_statuses() {
            let name = CStr::from_bytes_with_nul(s.name()).unwrap();
            assert_eq!(ms_status::from_u32(s as u32), Some(s));
            assert!(name.to_str().unwrap().starts_with("MS_STATUS_"));
        }
        assert_eq!(ms_status::from_u32(3), None);
    }

    #[test]
    fn failure_sets_and_success_clears_the_last_error() {
        let status = finish(Err(FfiError::NullArgument("request_json")));
        assert_eq!(status, ms_status::NullArgument);
        let json = unsafe { CStr::from_ptr(ms_last_error_json()) };
        let v: serde_json::Value = serde_json::from_str(json.to_str().unwrap()).unwrap();
        assert_eq!(v["error"]["param"], "request_json");
        assert_eq!(v["error"]["code"], "null_argument");
        assert_eq!(finish(Ok(ms_status::Ok)), ms_status::Ok);
        assert!(ms_last_error_json().is_null());
    }
}
