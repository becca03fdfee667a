//! `modelservice._native`: the compiled half of the `modelservice` Python package.
//!
//! A thin layer over `Arc`-shared core handles. Requests and responses cross the boundary as
//! JSON and are parsed by the core's own serde types, so the core's validation and error
//! `param` naming apply unchanged. Every call that waits on the engine leaves the GIL, and the
//! blocking ones wake up every [`SIGNAL_CHECK`] to let Ctrl-C raise `KeyboardInterrupt`.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use modelservice::{
    ChatCompletion, ChatCompletionRequest, ChatCompletionStream, Error, ServiceSpec,
};
use parking_lot::Mutex;
use pyo3::exceptions::PyBaseException;
use pyo3::prelude::*;
use serde::Serialize;

mod error;
mod fields;

use error::IntoPyResult;

/// How long a blocked call waits on the engine before it looks for Ctrl-C.
const SIGNAL_CHECK: Duration = Duration::from_millis(50);

fn to_json<T: Serialize>(value: &T) -> PyResult<String> {
    serde_json::to_string(value).map_err(|e| error::to_py(Error::internal(e)))
}

fn parse_request(json: &str) -> PyResult<ChatCompletionRequest> {
    ChatCompletionRequest::from_json(json).py_err()
}

fn parse_spec(json: &str) -> PyResult<ServiceSpec> {
    ServiceSpec::from_json(json).py_err()
}

fn timeout_from_secs(seconds: f64) -> Duration {
    Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or(Duration::MAX)
}

/// Wakes a parked thread: enough to drive the core's futures, which need no runtime.
struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `fut` on this thread until it is ready or `timeout` has passed.
fn poll_for<F: Future + Unpin>(fut: &mut F, timeout: Duration) -> Poll<F::Output> {
    let deadline = Instant::now().checked_add(timeout);
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = Pin::new(&mut *fut).poll(&mut cx) {
            return Poll::Ready(v);
        }
        match deadline {
            None => std::thread::park(),
            Some(deadline) => {
                let now = Instant::now();
                if now >= deadline {
                    return Poll::Pending;
                }
                std::thread::park_timeout(deadline - now);
            }
        }
    }
}

/// Runs `step` with the GIL released until it is ready, checking for signals in between, so
/// Ctrl-C raises `KeyboardInterrupt` (and the caller's drop of its state cancels the work).
fn wait_interruptibly<T: Send>(
    py: Python<'_>,
    mut step: impl FnMut(Duration) -> Poll<T> + Send,
) -> PyResult<T> {
    loop {
        if let Poll::Ready(v) = py.detach(|| step(SIGNAL_CHECK)) {
            return Ok(v);
        }
        py.check_signals()?;
    }
}

/// The services of a process (or of some clients), shared by every client built on it.
#[pyclass(module = "modelservice._native", name = "Registry", frozen)]
struct PyRegistry {
    inner: Arc<modelservice::Registry>,
}

#[pymethods]
impl PyRegistry {
    #[new]
    fn new() -> Self {
        PyRegistry {
            inner: Arc::new(modelservice::Registry::new()),
        }
    }

    /// Loads the model and starts the service; returns its info as JSON.
    fn deploy(&self, py: Python<'_>, spec: &str) -> PyResult<String> {
        let spec = parse_spec(spec)?;
        let registry = self.inner.clone();
        let info = py.detach(move || registry.deploy(spec)).py_err()?;
        to_json(&info)
    }

    /// Every service's info, as a JSON array.
    fn list(&self) -> PyResult<String> {
        to_json(&self.inner.list().data)
    }

    fn retrieve(&self, access_name: &str) -> PyResult<String> {
        to_json(&self.inner.retrieve(access_name).py_err()?)
    }

    fn scale(&self, py: Python<'_>, access_name: &str, instances: usize) -> PyResult<String> {
        let registry = self.inner.clone();
        let info = py
            .detach(move || registry.scale(access_name, instances))
            .py_err()?;
        to_json(&info)
    }

    /// Deletes a service once its in-flight requests have finished.
    fn delete(&self, py: Python<'_>, access_name: &str, confirm: &str) -> PyResult<String> {
        let registry = self.inner.clone();
        let info = py
            .detach(move || registry.delete(access_name, confirm))
            .py_err()?;
        to_json(&info)
    }

    /// The running services as an OpenAI model list (JSON).
    fn models(&self) -> PyResult<String> {
        to_json(&self.inner.models())
    }

    fn model(&self, access_name: &str) -> PyResult<String> {
        to_json(&self.inner.model(access_name).py_err()?)
    }

    /// A whole chat completion (JSON), waiting with the GIL released; Ctrl-C cancels it.
    fn chat(&self, py: Python<'_>, request: &str) -> PyResult<String> {
        let mut collecting = self.collecting(py, request)?;
        let done = wait_interruptibly(py, |t| poll_for(&mut collecting, t))?;
        to_json(&done.py_err()?)
    }

    /// Starts a chat completion whose result is awaited with `PendingCompletion.wait`.
    fn start_chat(&self, py: Python<'_>, request: &str) -> PyResult<PyPendingCompletion> {
        Ok(PyPendingCompletion {
            inner: Mutex::new(Some(self.collecting(py, request)?)),
            cancelled: AtomicBool::new(false),
        })
    }

    /// Starts a streamed chat completion.
    fn chat_stream(&self, py: Python<'_>, request: &str) -> PyResult<PyChatStream> {
        let request = parse_request(request)?;
        let registry = self.inner.clone();
        let stream = py.detach(move || registry.chat_stream(request)).py_err()?;
        Ok(PyChatStream {
            id: stream.id().to_owned(),
            inner: Mutex::new(Some(stream)),
            closed: AtomicBool::new(false),
        })
    }

    /// Tokens the request's prompt renders to.
    fn count_prompt_tokens(&self, py: Python<'_>, request: &str) -> PyResult<u32> {
        let request = parse_request(request)?;
        let registry = self.inner.clone();
        py.detach(move || registry.count_prompt_tokens(&request))
            .py_err()
    }

    /// Token ids of `text` under a service's tokenizer.
    fn tokenize(&self, py: Python<'_>, access_name: &str, text: &str) -> PyResult<Vec<i32>> {
        let registry = self.inner.clone();
        py.detach(move || registry.tokenize(access_name, text))
            .py_err()
    }

    /// How many times this process has loaded a model file.
    #[staticmethod]
    fn model_loads() -> u64 {
        modelservice::Registry::model_loads()
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

type Collecting = Pin<Box<dyn Future<Output = modelservice::Result<ChatCompletion>> + Send>>;

impl PyRegistry {
    fn collecting(&self, py: Python<'_>, request: &str) -> PyResult<Collecting> {
        let request = parse_request(request)?;
        let registry = self.inner.clone();
        let stream = py.detach(move || registry.chat_stream(request)).py_err()?;
        Ok(Box::pin(stream.collect()))
    }
}

/// A chat completion being generated. Dropping it (or `cancel()`) stops the generation.
#[pyclass(module = "modelservice._native", name = "PendingCompletion", frozen)]
struct PyPendingCompletion {
    inner: Mutex<Option<Collecting>>,
    cancelled: AtomicBool,
}

#[pymethods]
impl PyPendingCompletion {
    /// Waits up to `timeout` seconds; the completion as JSON, or `None` if not ready yet.
    fn wait(&self, py: Python<'_>, timeout: f64) -> PyResult<Option<String>> {
        let timeout = timeout_from_secs(timeout);
        let result = py.detach(|| {
            let mut slot = self.inner.lock();
            let Some(collecting) = slot.as_mut() else {
                return Some(Err(Error::Cancelled));
            };
            let poll = poll_for(collecting, timeout);
            if poll.is_ready() || self.cancelled.load(Ordering::Acquire) {
                *slot = None;
            }
            match poll {
                Poll::Ready(r) => Some(r),
                Poll::Pending => None,
            }
        });
        match result {
            None => Ok(None),
            Some(r) => Ok(Some(to_json(&r.py_err()?)?)),
        }
    }

    /// Stops the generation. Never blocks: a concurrent `wait` drops it on its way out.
    fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        if let Some(mut slot) = self.inner.try_lock() {
            slot.take();
        }
    }
}

/// The chunks of a streamed chat completion. Dropping it (or `close()`) stops the generation.
#[pyclass(module = "modelservice._native", name = "ChatStream", frozen)]
struct PyChatStream {
    id: String,
    inner: Mutex<Option<ChatCompletionStream>>,
    closed: AtomicBool,
}

impl PyChatStream {
    /// One attempt at the next chunk: `Ready(None)` at the end, `Pending` after `timeout`.
    fn step(&self, timeout: Duration) -> Poll<Option<modelservice::Result<String>>> {
        let mut slot = self.inner.lock();
        let Some(stream) = slot.as_mut() else {
            return Poll::Ready(None);
        };
        let poll = stream.next_timeout(timeout);
        // The stream is finished, failed or closed meanwhile: drop it to free its slot now.
        let finished = matches!(poll, Poll::Ready(None | Some(Err(_))));
        if finished || self.closed.load(Ordering::Acquire) {
            *slot = None;
        }
        poll.map(|next| {
            next.map(|r| r.and_then(|c| serde_json::to_string(&c).map_err(Error::internal)))
        })
    }
}

#[pymethods]
impl PyChatStream {
    /// The completion's ID, shared by all its chunks.
    #[getter]
    fn id(&self) -> &str {
        &self.id
    }

    /// Whether `close()` was called or the stream ended.
    #[getter]
    fn closed(&self) -> bool {
        self.closed.load(Ordering::Acquire) || self.inner.try_lock().is_some_and(|s| s.is_none())
    }

    /// The next chunk as JSON, or `None` at the end; waits with the GIL released.
    fn next(&self, py: Python<'_>) -> PyResult<Option<String>> {
        match wait_interruptibly(py, |t| self.step(t))? {
            None => Ok(None),
            Some(r) => Ok(Some(r.py_err()?)),
        }
    }

    /// Waits up to `timeout` seconds: the next chunk as JSON, `""` if none came in time, or
    /// `None` at the end.
    fn poll(&self, py: Python<'_>, timeout: f64) -> PyResult<Option<String>> {
        let timeout = timeout_from_secs(timeout);
        match py.detach(|| self.step(timeout)) {
            Poll::Pending => Ok(Some(String::new())),
            Poll::Ready(None) => Ok(None),
            Poll::Ready(Some(r)) => Ok(Some(r.py_err()?)),
        }
    }

    /// Stops the generation. Never blocks: a concurrent `next`/`poll` drops it on its way out.
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        if let Some(mut slot) = self.inner.try_lock() {
            slot.take();
        }
    }
}

/// The exception an invalid request raises, for checks made on the Python side.
#[pyfunction]
#[pyo3(signature = (message, param=None))]
fn invalid_request_error(
    py: Python<'_>,
    message: String,
    param: Option<String>,
) -> Py<PyBaseException> {
    error::to_py(Error::InvalidRequest { message, param }).into_value(py)
}

/// The fields of a chat completion request, as the core's serde type declares them.
#[pyfunction]
fn request_fields() -> Vec<&'static str> {
    fields::of::<ChatCompletionRequest>()
}

/// The fields of a service spec, as the core's serde type declares them.
#[pyfunction]
fn service_spec_fields() -> Vec<&'static str> {
    fields::of::<ServiceSpec>()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<PyRegistry>()?;
    m.add_class::<PyPendingCompletion>()?;
    m.add_class::<PyChatStream>()?;
    m.add_function(wrap_pyfunction!(invalid_request_error, m)?)?;
    m.add_function(wrap_pyfunction!(request_fields, m)?)?;
    m.add_function(wrap_pyfunction!(service_spec_fields, m)?)?;
    error::register(m)?;
    Ok(())
}
