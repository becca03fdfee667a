//! Per-service request metrics, kept by the core so every surface reads the same figures:
//! requests by outcome (HTTP status), time to first token and latency histograms, beside the
//! usage counters and the queue. [`Registry::metrics`](crate::Registry::metrics) returns one
//! [`ServiceMetrics`] snapshot per service; the HTTP server renders them for Prometheus.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

pub use crate::api::{HistogramSnapshot, ServiceMetrics};
use crate::error::Error;

/// The status a request gets when its caller gave up (dropped the stream or the call) before
/// the answer was complete: nginx's "client closed request".
pub const STATUS_CANCELLED: u16 = 499;

/// Upper bounds (seconds) of the time-to-first-token buckets (a queued request's wait counts).
pub const TTFT_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];
/// Upper bounds (seconds) of the request latency buckets.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// A fixed-bucket histogram updated without locks.
struct Histogram {
    bounds: &'static [f64],
    /// One count per bound, then the overflow bucket (+Inf).
    counts: Vec<AtomicU64>,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    fn observe(&self, seconds: f64) {
        let bucket = self
            .bounds
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(self.bounds.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    fn snapshot(&self) -> HistogramSnapshot {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        HistogramSnapshot {
            bounds: self.bounds.to_vec(),
            count: counts.iter().sum(),
            counts,
            sum_seconds: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

/// The request metrics a service keeps.
pub(crate) struct RequestMetrics {
    statuses: Mutex<BTreeMap<u16, u64>>,
    ttft: Histogram,
    latency: Histogram,
}

impl Default for RequestMetrics {
    fn default() -> Self {
        RequestMetrics {
            statuses: Mutex::default(),
            ttft: Histogram::new(TTFT_BUCKETS),
            latency: Histogram::new(LATENCY_BUCKETS),
        }
    }
}

impl RequestMetrics {
    /// Counts a request that ended with `status`.
    pub(crate) fn count(&self, status: u16) {
        *self.statuses.lock().entry(status).or_default() += 1;
    }

    /// Counts a request refused with `error` before it was queued, passing the error on.
    pub(crate) fn refused(&self, error: Error) -> Error {
        self.count(error.status());
        error
    }

    /// Times a request that arrived at `start` and was accepted (queued).
    pub(crate) fn accepted(self: &Arc<Self>, start: Instant) -> RequestTimer {
        RequestTimer {
            metrics: self.clone(),
            start,
            first_output: false,
            finished: false,
        }
    }
}

/// One accepted request in progress. It records the time to its first output, and its status
/// and latency when it finishes; dropped unfinished, it counts as cancelled.
pub(crate) struct RequestTimer {
    metrics: Arc<RequestMetrics>,
    start: Instant,
    first_output: bool,
    finished: bool,
}

impl RequestTimer {
    /// The request produced output (its first one sets the time to first token).
    pub(crate) fn output(&mut self) {
        if !std::mem::replace(&mut self.first_output, true) {
            let elapsed = self.start.elapsed().as_secs_f64();
            self.metrics.ttft.observe(elapsed);
        }
    }

    /// The request ended with `status` (200 when it was answered completely).
    pub(crate) fn finish(&mut self, status: u16) {
        if !std::mem::replace(&mut self.finished, true) {
            self.metrics
                .latency
                .observe(self.start.elapsed().as_secs_f64());
            self.metrics.count(status);
        }
    }
}

impl Drop for RequestTimer {
    fn drop(&mut self) {
        self.finish(STATUS_CANCELLED);
    }
}

impl std::fmt::Debug for RequestTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestTimer")
            .field("elapsed", &self.start.elapsed())
            .finish()
    }
}

impl RequestMetrics {
    /// The request part of a snapshot: statuses, then time to first token and latency.
    pub(crate) fn snapshot(&self) -> (BTreeMap<u16, u64>, HistogramSnapshot, HistogramSnapshot) {
        (
            self.statuses.lock().clone(),
            self.ttft.snapshot(),
            self.latency.snapshot(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_and_quantiles() {
        let h = Histogram::new(&[0.1, 1.0]);
        for s in [0.05, 0.5, 0.5, 3.0] {
            h.observe(s);
        }
        let snap = h.snapshot();
        assert_eq!(snap.counts, vec![1, 2, 1]);
        assert_eq!(snap.count, 4);
        assert!((snap.sum_seconds - 4.05).abs() < 1e-6);
        assert_eq!(snap.quantile(0.25), Some(0.1));
        assert_eq!(snap.quantile(0.5), Some(1.0));
        assert_eq!(snap.quantile(0.99), Some(f64::INFINITY));
    }

    #[test]
    fn timers_count_their_outcome_once() {
        let metrics = Arc::new(RequestMetrics::default());
        let mut answered = metrics.accepted(Instant::now());
        answered.output();
        answered.output();
        answered.finish(200);
        drop(answered);
        drop(metrics.accepted(Instant::now()));
        let _ = metrics.refused(Error::internal("x"));
        let (statuses, ttft, latency) = metrics.snapshot();
        assert_eq!(
            statuses,
            BTreeMap::from([(200, 1), (500, 1), (STATUS_CANCELLED, 1)])
        );
        assert_eq!(ttft.count, 1);
        assert_eq!(latency.count, 2);
    }
}
