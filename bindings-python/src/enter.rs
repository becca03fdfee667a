//! Entering the engine from Python, the one way every native method does it (the shape of
//! polars' `enter_polars`): leave the GIL, wait interruptibly, map the error.

use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use modelservice::wait::poll_for;
use pyo3::prelude::*;

use crate::error::IntoPyResult;

/// How long a wait leaves the GIL before it looks for Ctrl-C.
const SIGNAL_CHECK: Duration = Duration::from_millis(50);

/// Polls `poll` with the GIL released until it is ready or `timeout` has passed (`None`: no
/// limit), in slices of [`SIGNAL_CHECK`] between which Ctrl-C raises `KeyboardInterrupt` (the
/// caller then drops what it polled, which cancels the work). `Ok(None)`: time ran out.
pub fn enter_engine_for<T: Send>(
    py: Python<'_>,
    timeout: Option<Duration>,
    mut poll: impl FnMut(&mut Context<'_>) -> Poll<modelservice::Result<T>> + Send,
) -> PyResult<Option<T>> {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    loop {
        let slice = deadline.map_or(SIGNAL_CHECK, |d| {
            d.saturating_duration_since(Instant::now())
                .min(SIGNAL_CHECK)
        });
        if let Poll::Ready(result) = py.detach(|| poll_for(&mut poll, Some(slice))) {
            return result.map(Some).py_err();
        }
        py.check_signals()?;
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
    }
}

/// [`enter_engine_for`] with no time limit. Work that does not wait is a `poll` that is ready
/// at once (`|_| Poll::Ready(work())`).
pub fn enter_engine<T: Send>(
    py: Python<'_>,
    poll: impl FnMut(&mut Context<'_>) -> Poll<modelservice::Result<T>> + Send,
) -> PyResult<T> {
    match enter_engine_for(py, None, poll)? {
        Some(value) => Ok(value),
        None => unreachable!("waiting without a deadline ends only when ready"),
    }
}

/// A timeout given in seconds from Python (negative or NaN: don't wait; huge: no limit).
pub fn seconds(timeout: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(timeout.max(0.0)).ok()
}
