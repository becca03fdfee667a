//! The one place where engine errors become JavaScript errors.
//!
//! A `modelservice::Error` crosses as a napi error whose message is [`PREFIX`] followed by
//! `{"status": <http status>, "error": <OpenAI error body>}`; `index.js` (`fromNative`) turns
//! it into the `OpenAI.APIError` subclass named like the `openai` SDK's. Panics become
//! internal errors (500) the same way, so none reaches JavaScript.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use modelservice::Error;

/// Marks a native error message as carrying an OpenAI error envelope.
pub const PREFIX: &str = "modelservice.APIError:";

/// The napi error for an engine error.
pub fn to_napi(error: Error) -> napi::Error {
    let payload = serde_json::json!({ "status": error.status(), "error": error.body() });
    napi::Error::new(napi::Status::GenericFailure, format!("{PREFIX}{payload}"))
}

/// An internal error describing a caught panic.
pub fn from_panic(payload: Box<dyn Any + Send>) -> Error {
    Error::internal(format!(
        "modelservice panicked: {}",
        modelservice::error::panic_message(&*payload)
    ))
}

/// Awaits a future on napi's runtime, turning its engine error or panic into a napi error.
pub async fn guard<T>(fut: impl Future<Output = modelservice::Result<T>>) -> napi::Result<T> {
    AssertUnwindSafe(fut)
        .catch_unwind()
        .await
        .unwrap_or_else(|p| Err(from_panic(p)))
        .map_err(to_napi)
}

/// Runs blocking engine work (model loads, drains, prompt rendering) on the blocking pool,
/// so the event loop and the async workers stay free.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> modelservice::Result<T> + Send + 'static,
) -> napi::Result<T> {
    match napi::bindgen_prelude::spawn_blocking(work).await {
        Ok(result) => result.map_err(to_napi),
        Err(join) if join.is_panic() => Err(to_napi(from_panic(join.into_panic()))),
        Err(join) => Err(to_napi(Error::internal(join))),
    }
}
