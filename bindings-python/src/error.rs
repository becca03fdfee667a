//! The one mapping from the engine's errors to Python exceptions named like the `openai`
//! SDK's. Each raised exception carries the OpenAI error envelope as attributes:
//! `status_code`, `message`, `type`, `code`, `param` and `body` (the inner error object).

use modelservice::Error;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyDict;

pyo3::create_exception!(
    modelservice,
    ModelServiceError,
    PyException,
    "Base class of every error raised by modelservice (the SDK's `OpenAIError`)."
);
pyo3::create_exception!(
    modelservice,
    APIError,
    ModelServiceError,
    "An error reported by a model service."
);
pyo3::create_exception!(
    modelservice,
    APIStatusError,
    APIError,
    "An error with an HTTP status, as an OpenAI server would answer."
);
pyo3::create_exception!(modelservice, BadRequestError, APIStatusError, "Status 400.");
pyo3::create_exception!(
    modelservice,
    AuthenticationError,
    APIStatusError,
    "Status 401."
);
pyo3::create_exception!(modelservice, NotFoundError, APIStatusError, "Status 404.");
pyo3::create_exception!(modelservice, ConflictError, APIStatusError, "Status 409.");
pyo3::create_exception!(modelservice, RateLimitError, APIStatusError, "Status 429.");
pyo3::create_exception!(
    modelservice,
    InternalServerError,
    APIStatusError,
    "Status 500 and above."
);
pyo3::create_exception!(
    modelservice,
    ModelLoadError,
    BadRequestError,
    "A model file could not be loaded (status 400, code `model_load_failed`)."
);

/// The Python exception for an engine error, with the envelope's fields as attributes.
pub fn to_py(err: Error) -> PyErr {
    Python::attach(|py| {
        let message = err.to_string();
        let exc = match &err {
            Error::ModelLoad { .. } => ModelLoadError::new_err(message.clone()),
            _ => match err.status() {
                400 => BadRequestError::new_err(message.clone()),
                401 => AuthenticationError::new_err(message.clone()),
                404 => NotFoundError::new_err(message.clone()),
                409 => ConflictError::new_err(message.clone()),
                429 => RateLimitError::new_err(message.clone()),
                s if s >= 500 => InternalServerError::new_err(message.clone()),
                _ => APIStatusError::new_err(message.clone()),
            },
        };
        if let Err(e) = annotate(py, &exc, &err) {
            return e;
        }
        exc
    })
}

fn annotate(py: Python<'_>, exc: &PyErr, err: &Error) -> PyResult<()> {
    let body = err.body();
    let value = exc.value(py);
    let dict = PyDict::new(py);
    dict.set_item("message", &body.message)?;
    dict.set_item("type", &body.kind)?;
    dict.set_item("param", &body.param)?;
    dict.set_item("code", &body.code)?;
    value.setattr("message", &body.message)?;
    value.setattr("status_code", err.status())?;
    value.setattr("type", &body.kind)?;
    value.setattr("param", &body.param)?;
    value.setattr("code", &body.code)?;
    value.setattr("body", dict)?;
    Ok(())
}

/// Result of an engine call, mapped.
pub trait IntoPyResult<T> {
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for modelservice::Result<T> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

/// Adds every exception class to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("ModelServiceError", py.get_type::<ModelServiceError>())?;
    m.add("APIError", py.get_type::<APIError>())?;
    m.add("APIStatusError", py.get_type::<APIStatusError>())?;
    m.add("BadRequestError", py.get_type::<BadRequestError>())?;
    m.add("AuthenticationError", py.get_type::<AuthenticationError>())?;
    m.add("NotFoundError", py.get_type::<NotFoundError>())?;
    m.add("ConflictError", py.get_type::<ConflictError>())?;
    m.add("RateLimitError", py.get_type::<RateLimitError>())?;
    m.add("InternalServerError", py.get_type::<InternalServerError>())?;
    m.add("ModelLoadError", py.get_type::<ModelLoadError>())?;
    Ok(())
}
