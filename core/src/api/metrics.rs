//! `services.metrics`: each service's request metrics (requests by status, tokens, queue, time
//! to first token and latency histograms) as the core counts them (`crate::metrics`). The HTTP
//! server's Prometheus `/metrics` renders these same snapshots.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A histogram as read at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HistogramSnapshot {
    /// Upper bounds of the buckets, in seconds, ascending.
    pub bounds: Vec<f64>,
    /// Observations per bucket (not cumulative): one per bound, then those above the last.
    pub counts: Vec<u64>,
    /// Sum of all observations, in seconds.
    pub sum_seconds: f64,
    /// Number of observations.
    pub count: u64,
}

impl HistogramSnapshot {
    /// The value below which `q` (0–1) of the observations fall, as the upper bound of the
    /// bucket that holds it (`f64::INFINITY` when it is the overflow bucket); `None` if empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = (q * self.count as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(self.bounds.get(i).copied().unwrap_or(f64::INFINITY));
            }
        }
        Some(f64::INFINITY)
    }
}

/// One service's metrics as read at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ServiceMetrics {
    /// The service's access name (what requests put in `model`).
    pub access_name: String,
    /// The service's ID (`svc-…`).
    pub id: String,
    /// Requests by the status they ended with (the JSON keys are the statuses as text): 200
    /// answered, 4xx/5xx refused or failed, 499 when the caller gave up first.
    #[schemars(with = "BTreeMap<String, u64>")]
    pub requests: BTreeMap<u16, u64>,
    /// Prompt tokens of accepted requests.
    pub prompt_tokens: u64,
    /// Tokens generated over all choices.
    pub completion_tokens: u64,
    /// Requests waiting for a slot (or, on an embedding service, with inputs waiting).
    pub queue_depth: usize,
    /// Sequences (or embedding inputs) being worked on.
    pub running: usize,
    /// The queue's bound (`queue_size`).
    pub queue_size: usize,
    /// Running instances.
    pub instances: usize,
    /// Time from acceptance to a request's first output.
    pub time_to_first_token: HistogramSnapshot,
    /// Time from acceptance to a request's end, whatever its outcome.
    pub latency: HistogramSnapshot,
}

/// `services.metrics`: every service's metrics, or one service's (`access_name`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceMetricsRequest {
    /// Only this service (`model_not_found` if there is none by that name).
    #[serde(default)]
    pub access_name: Option<String>,
}

/// The services' metrics, shaped like OpenAI lists (`{"object": "list", "data": [...]}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ServiceMetricsList {
    pub object: String,
    pub data: Vec<ServiceMetrics>,
}

impl ServiceMetricsList {
    pub fn new(data: Vec<ServiceMetrics>) -> Self {
        ServiceMetricsList {
            object: "list".into(),
            data,
        }
    }
}
