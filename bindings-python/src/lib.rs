//! `modelservice._native`: the compiled half of the `modelservice` Python package.
//!
//! One way in: [`registry::PyRegistry`] serves every core operation by name with JSON in and
//! JSON out (`call`, `start`, `stream`), so a new operation needs no Rust here. Waiting on the
//! engine always goes through [`enter::enter_engine`] (GIL released, Ctrl-C honoured, errors
//! mapped to the `openai` SDK's exception classes by [`error`]).

use pyo3::prelude::*;

mod calls;
mod enter;
mod error;
mod registry;

/// The name of every operation the engine serves (`chat.completions.create`, `models.list` ...).
#[pyfunction]
fn operations() -> Vec<&'static str> {
    modelservice::Operation::names()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<registry::PyRegistry>()?;
    m.add_class::<calls::PendingCall>()?;
    m.add_class::<calls::PyResponseStream>()?;
    m.add_function(wrap_pyfunction!(operations, m)?)?;
    error::register(m)?;
    Ok(())
}
