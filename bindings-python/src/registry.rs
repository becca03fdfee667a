//! `Registry`: the services of a process, and the one entry to every operation.

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;

use modelservice::{ChatCompletionRequest, Error, Registry};
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::calls::{PendingCall, PyResponseStream};
use crate::enter::enter_engine;

/// A Python str as UTF-8 text. A str holding a lone surrogate has none: that is the caller's
/// bad request (a 400, as the C ABI's `MS_STATUS_INVALID_UTF8`), not a `UnicodeEncodeError`.
fn utf8<'a>(text: &'a Bound<'_, PyString>, what: &str) -> PyResult<std::borrow::Cow<'a, str>> {
    text.to_cow().map_err(|e| {
        crate::error::to_py(Error::InvalidRequest {
            message: format!("The request {what} is not valid Unicode text: {e}."),
            param: None,
        })
    })
}

/// The services of a process (or of some clients), shared by every client built on it.
#[pyclass(module = "modelservice._native", name = "Registry", frozen)]
pub struct PyRegistry {
    inner: Arc<Registry>,
}

#[pymethods]
impl PyRegistry {
    #[new]
    fn new() -> Self {
        PyRegistry {
            inner: Arc::new(Registry::new()),
        }
    }

    /// Serves operation `op` (e.g. `"chat.completions.create"`) with the JSON `body` and returns
    /// the whole answer as JSON. Ctrl-C raises `KeyboardInterrupt` and cancels the work.
    fn call(
        &self,
        py: Python<'_>,
        op: &Bound<'_, PyString>,
        body: &Bound<'_, PyString>,
    ) -> PyResult<String> {
        let (op, body) = (utf8(op, "operation")?, utf8(body, "body")?);
        let mut answer = std::pin::pin!(self.inner.call(&op, &body));
        enter_engine(py, |cx| answer.as_mut().poll(cx))
    }

    /// Starts `call(op, body)` without waiting: its answer comes from `PendingCall.wait`.
    fn start(&self, op: &Bound<'_, PyString>, body: &Bound<'_, PyString>) -> PyResult<PendingCall> {
        let (op, body) = (utf8(op, "operation")?, utf8(body, "body")?);
        Ok(PendingCall::new(
            self.inner.call_owned(op.into_owned(), body.into_owned()),
        ))
    }

    /// Starts streamable operation `op` and returns the stream of its chunks; request errors
    /// are raised here.
    fn stream(
        &self,
        py: Python<'_>,
        op: &Bound<'_, PyString>,
        body: &Bound<'_, PyString>,
    ) -> PyResult<PyResponseStream> {
        let (op, body) = (utf8(op, "operation")?, utf8(body, "body")?);
        let stream = enter_engine(py, |_| Poll::Ready(self.inner.stream(&op, &body)))?;
        Ok(PyResponseStream::new(stream))
    }

    /// Tokens the chat completion request's prompt renders to.
    fn count_prompt_tokens(&self, py: Python<'_>, request: &str) -> PyResult<u32> {
        enter_engine(py, |_| {
            let request = ChatCompletionRequest::from_json(request);
            Poll::Ready(request.and_then(|r| self.inner.count_prompt_tokens(&r)))
        })
    }

    /// Token ids of `text` under a service's tokenizer.
    fn tokenize(&self, py: Python<'_>, access_name: &str, text: &str) -> PyResult<Vec<i32>> {
        enter_engine(py, |_| Poll::Ready(self.inner.tokenize(access_name, text)))
    }

    /// How many times this process has loaded a model file.
    #[staticmethod]
    fn model_loads() -> u64 {
        Registry::model_loads()
    }

    fn __repr__(&self) -> String {
        let names: Vec<String> = self
            .inner
            .list()
            .data
            .into_iter()
            .map(|s| s.access_name)
            .collect();
        format!("Registry({names:?})")
    }
}
