//! Calls in progress, held by Python between waits: a unary call's `PendingCall` (for asyncio)
//! and a streamed call's `ResponseStream`. Dropping either (or `cancel()`/`close()`) stops the
//! generation within one decode step.

use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use modelservice::{CallFuture, Error, ResponseStream};
use parking_lot::Mutex;
use pyo3::prelude::*;

use crate::enter::{enter_engine, enter_engine_for, seconds};

/// A unary call being served; its answer is awaited with `wait`.
#[pyclass(module = "modelservice._native", name = "PendingCall", frozen)]
pub struct PendingCall {
    answer: Mutex<Option<CallFuture>>,
    cancelled: AtomicBool,
}

impl PendingCall {
    pub fn new(answer: CallFuture) -> Self {
        PendingCall {
            answer: Mutex::new(Some(answer)),
            cancelled: AtomicBool::new(false),
        }
    }

    fn poll_answer(&self, cx: &mut Context<'_>) -> Poll<modelservice::Result<String>> {
        let mut slot = self.answer.lock();
        if self.cancelled.load(Ordering::Acquire) {
            *slot = None;
        }
        let Some(answer) = slot.as_mut() else {
            return Poll::Ready(Err(Error::Cancelled));
        };
        let poll = answer.as_mut().poll(cx);
        if poll.is_ready() {
            *slot = None;
        }
        poll
    }
}

#[pymethods]
impl PendingCall {
    /// Waits up to `timeout` seconds: the answer as JSON, or `None` if it is not ready yet.
    fn wait(&self, py: Python<'_>, timeout: f64) -> PyResult<Option<String>> {
        enter_engine_for(py, seconds(timeout), |cx| self.poll_answer(cx))
    }

    /// Stops the work. Never blocks: a concurrent `wait` drops it on its way out.
    fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        if let Some(mut slot) = self.answer.try_lock() {
            slot.take();
        }
    }
}

/// The chunks of a streamed call, each as JSON.
#[pyclass(module = "modelservice._native", name = "ResponseStream", frozen)]
pub struct PyResponseStream {
    id: String,
    chunks: Mutex<Option<ResponseStream>>,
    closed: AtomicBool,
}

impl PyResponseStream {
    pub fn new(stream: ResponseStream) -> Self {
        PyResponseStream {
            id: stream.id().to_owned(),
            chunks: Mutex::new(Some(stream)),
            closed: AtomicBool::new(false),
        }
    }

    /// The next chunk; `Ok(None)` at the end or once closed.
    fn poll_chunk(&self, cx: &mut Context<'_>) -> Poll<modelservice::Result<Option<String>>> {
        let mut slot = self.chunks.lock();
        if self.closed.load(Ordering::Acquire) {
            *slot = None;
        }
        let Some(stream) = slot.as_mut() else {
            return Poll::Ready(Ok(None));
        };
        let poll = stream.poll_next_json(cx);
        // Finished, failed or closed meanwhile: drop the stream to free its slot now.
        if matches!(poll, Poll::Ready(None | Some(Err(_)))) || self.closed.load(Ordering::Acquire) {
            *slot = None;
        }
        poll.map(Option::transpose)
    }
}

#[pymethods]
impl PyResponseStream {
    /// The response's ID, shared by all its chunks.
    #[getter]
    fn id(&self) -> &str {
        &self.id
    }

    /// Whether `close()` was called or the stream ended.
    #[getter]
    fn closed(&self) -> bool {
        self.closed.load(Ordering::Acquire) || self.chunks.try_lock().is_some_and(|s| s.is_none())
    }

    /// The next chunk as JSON, or `None` at the end. Ctrl-C raises `KeyboardInterrupt`.
    fn next(&self, py: Python<'_>) -> PyResult<Option<String>> {
        enter_engine(py, |cx| self.poll_chunk(cx))
    }

    /// Waits up to `timeout` seconds: the next chunk as JSON, `""` if none came in time, or
    /// `None` at the end.
    fn poll(&self, py: Python<'_>, timeout: f64) -> PyResult<Option<String>> {
        let next = enter_engine_for(py, seconds(timeout), |cx| self.poll_chunk(cx))?;
        Ok(next.unwrap_or_else(|| Some(String::new())))
    }

    /// Stops the generation. Never blocks: a concurrent `next`/`poll` drops it on its way out.
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        if let Some(mut slot) = self.chunks.try_lock() {
            slot.take();
        }
    }
}
