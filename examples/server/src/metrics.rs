//! `GET /metrics`: the core's per-service metrics (`Registry::metrics`) in Prometheus' text
//! exposition format. The figures are counted once, in the core; this only renders them, so a
//! small renderer does, rather than a metrics crate that would keep a second set of counters.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use modelservice::metrics::{HistogramSnapshot, ServiceMetrics};

use crate::AppState;

/// A family of one sample per service: name, type, help, the value.
type Scalar = (
    &'static str,
    &'static str,
    &'static str,
    fn(&ServiceMetrics) -> u64,
);
/// A histogram family: name, help, the histogram.
type Histograms = (
    &'static str,
    &'static str,
    fn(&ServiceMetrics) -> &HistogramSnapshot,
);

/// The exposition format's content type.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let text = render(&state.registry.metrics());
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
}

/// A label value with `\`, `"` and newlines escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', r#"\""#)
        .replace('\n', r"\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn histogram(out: &mut String, name: &str, service: &str, h: &HistogramSnapshot) {
    let mut cumulative = 0;
    for (i, count) in h.counts.iter().enumerate() {
        cumulative += count;
        let le = h
            .bounds
            .get(i)
            .map_or_else(|| "+Inf".to_owned(), f64::to_string);
        let _ = writeln!(
            out,
            "{name}_bucket{{service=\"{service}\",le=\"{le}\"}} {cumulative}"
        );
    }
    let _ = writeln!(out, "{name}_sum{{service=\"{service}\"}} {}", h.sum_seconds);
    let _ = writeln!(out, "{name}_count{{service=\"{service}\"}} {}", h.count);
}

/// Every service's metrics, one family at a time (the format wants a family's samples together).
pub fn render(services: &[ServiceMetrics]) -> String {
    let mut out = String::new();
    let names: Vec<String> = services.iter().map(|m| label(&m.access_name)).collect();
    family(
        &mut out,
        "modelservice_requests_total",
        "counter",
        "Requests by the status they ended with (499: the caller gave up first).",
    );
    for (m, service) in services.iter().zip(&names) {
        for (status, count) in &m.requests {
            let _ = writeln!(
                out,
                "modelservice_requests_total{{service=\"{service}\",status=\"{status}\"}} {count}"
            );
        }
    }
    let gauges: [Scalar; 6] = [
        (
            "modelservice_prompt_tokens_total",
            "counter",
            "Prompt tokens of accepted requests.",
            |m| m.prompt_tokens,
        ),
        (
            "modelservice_completion_tokens_total",
            "counter",
            "Tokens generated, over all choices.",
            |m| m.completion_tokens,
        ),
        (
            "modelservice_queue_depth",
            "gauge",
            "Requests waiting for a slot.",
            |m| m.queue_depth as u64,
        ),
        (
            "modelservice_queue_size",
            "gauge",
            "Waiting requests the service holds before answering 429.",
            |m| m.queue_size as u64,
        ),
        (
            "modelservice_running_sequences",
            "gauge",
            "Sequences (or embedding inputs) being worked on.",
            |m| m.running as u64,
        ),
        (
            "modelservice_instances",
            "gauge",
            "Running instances.",
            |m| m.instances as u64,
        ),
    ];
    for (name, kind, help, value) in gauges {
        family(&mut out, name, kind, help);
        for (m, service) in services.iter().zip(&names) {
            let _ = writeln!(out, "{name}{{service=\"{service}\"}} {}", value(m));
        }
    }
    let histograms: [Histograms; 2] = [
        (
            "modelservice_time_to_first_token_seconds",
            "Time from a request's acceptance to its first output.",
            |m| &m.time_to_first_token,
        ),
        (
            "modelservice_request_duration_seconds",
            "Time from a request's acceptance to its end, whatever its outcome.",
            |m| &m.latency,
        ),
    ];
    for (name, help, value) in histograms {
        family(&mut out, name, "histogram", help);
        for (m, service) in services.iter().zip(&names) {
            histogram(&mut out, name, service, value(m));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_cumulative_buckets() {
        let h = HistogramSnapshot {
            bounds: vec![0.1, 1.0],
            counts: vec![1, 2, 1],
            sum_seconds: 4.05,
            count: 4,
        };
        let m = ServiceMetrics {
            access_name: "u-1/a\"b".into(),
            id: "svc-1".into(),
            requests: [(200, 3), (429, 1)].into(),
            prompt_tokens: 10,
            completion_tokens: 20,
            queue_depth: 2,
            running: 1,
            queue_size: 64,
            instances: 1,
            time_to_first_token: h.clone(),
            latency: h,
        };
        let text = render(&[m]);
        for line in [
            r#"modelservice_requests_total{service="u-1/a\"b",status="200"} 3"#,
            r#"modelservice_requests_total{service="u-1/a\"b",status="429"} 1"#,
            r#"modelservice_completion_tokens_total{service="u-1/a\"b"} 20"#,
            r#"modelservice_queue_depth{service="u-1/a\"b"} 2"#,
            r#"modelservice_request_duration_seconds_bucket{service="u-1/a\"b",le="0.1"} 1"#,
            r#"modelservice_request_duration_seconds_bucket{service="u-1/a\"b",le="1"} 3"#,
            r#"modelservice_request_duration_seconds_bucket{service="u-1/a\"b",le="+Inf"} 4"#,
            r#"modelservice_time_to_first_token_seconds_count{service="u-1/a\"b"} 4"#,
            "# TYPE modelservice_time_to_first_token_seconds histogram",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
    }
}
