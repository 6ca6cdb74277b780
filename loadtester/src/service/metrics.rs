//! The service's Prometheus metrics: the traffic it generated, per canary and target, so a
//! MetricTemplate can score what the loadtester saw. Workers report cumulative counters about
//! once a second; the service adds the difference since the previous report.

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

use crate::summary::{LATENCY_BUCKETS, Snapshot};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub namespace: String,
    pub canary: String,
    pub target: String,
    /// HTTP status code, or `error` for requests without a response.
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunLabels {
    pub namespace: String,
    pub canary: String,
    pub target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub namespace: String,
    pub canary: String,
    /// `passed`, `failed` (error rate over the limit or the worker failed) or `cancelled`.
    pub result: String,
}

/// A histogram fed with bucket counts rather than single observations.
#[derive(Debug, Default)]
pub struct BucketHistogram {
    inner: Mutex<(f64, u64, Vec<u64>)>,
}

impl BucketHistogram {
    /// Adds `count` requests, `sum` seconds in total, `buckets[i]` of them ≤ `LATENCY_BUCKETS[i]`.
    fn add(&self, sum: f64, count: u64, cumulative: &[u64]) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if g.2.len() != LATENCY_BUCKETS.len() {
            g.2 = vec![0; LATENCY_BUCKETS.len()];
        }
        g.0 += sum;
        g.1 += count;
        for (slot, v) in g.2.iter_mut().zip(cumulative) {
            *slot += v;
        }
    }
}

impl TypedMetric for BucketHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for BucketHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        // The encoder wants per-bucket counts; ours are cumulative, with +Inf last.
        let mut buckets = Vec::with_capacity(LATENCY_BUCKETS.len() + 1);
        let mut prev = 0;
        for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
            let c = g.2.get(i).copied().unwrap_or(0);
            buckets.push((*le, c.saturating_sub(prev)));
            prev = c;
        }
        buckets.push((f64::INFINITY, g.1.saturating_sub(prev)));
        encoder
            .encode_histogram::<prometheus_client::encoding::NoLabelSet>(g.0, g.1, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

pub struct Metrics {
    pub registry: Registry,
    requests: Family<RequestLabels, Counter<u64, AtomicU64>>,
    latency: Family<RunLabels, BucketHistogram>,
    runs: Family<OutcomeLabels, Counter<u64, AtomicU64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter<u64, AtomicU64>>::default();
        let latency = Family::<RunLabels, BucketHistogram>::default();
        let runs = Family::<OutcomeLabels, Counter<u64, AtomicU64>>::default();
        registry.register(
            "serin_loadtester_requests",
            "Requests the loadtester sent, by canary, target and status code (error: no response)",
            requests.clone(),
        );
        registry.register(
            "serin_loadtester_request_duration_seconds",
            "Latency of the requests the loadtester sent, failed ones included",
            latency.clone(),
        );
        registry.register(
            "serin_loadtester_runs",
            "Load-test runs by result",
            runs.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            runs,
        }
    }
}

impl Metrics {
    /// Adds what happened between two cumulative snapshots of one run.
    pub fn add_delta(&self, run: &RunLabels, before: &Snapshot, now: &Snapshot) {
        for (code, n) in &now.status_codes {
            let d = n.saturating_sub(before.status_codes.get(code).copied().unwrap_or(0));
            if d > 0 {
                self.requests
                    .get_or_create(&labels(run, code.to_string()))
                    .inc_by(d);
            }
        }
        let errors = now.errors.saturating_sub(before.errors);
        if errors > 0 {
            self.requests
                .get_or_create(&labels(run, "error".into()))
                .inc_by(errors);
        }
        let count = now.requests.saturating_sub(before.requests);
        if count > 0 {
            let sum = now.latency_sum_us.saturating_sub(before.latency_sum_us) as f64 / 1e6;
            let buckets: Vec<u64> = now
                .latency_buckets
                .iter()
                .enumerate()
                .map(|(i, v)| v.saturating_sub(before.latency_buckets.get(i).copied().unwrap_or(0)))
                .collect();
            self.latency.get_or_create(run).add(sum, count, &buckets);
        }
    }

    pub fn run_ended(&self, namespace: &str, canary: &str, result: &str) {
        self.runs
            .get_or_create(&OutcomeLabels {
                namespace: namespace.into(),
                canary: canary.into(),
                result: result.into(),
            })
            .inc();
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

fn labels(run: &RunLabels, code: String) -> RequestLabels {
    RequestLabels {
        namespace: run.namespace.clone(),
        canary: run.canary.clone(),
        target: run.target.clone(),
        code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::{Outcome, Recorder};
    use std::time::Duration;

    #[test]
    fn deltas_become_counters_and_buckets() {
        let m = Metrics::default();
        let run = RunLabels {
            namespace: "test".into(),
            canary: "web".into(),
            target: "http://web-canary:9898".into(),
        };
        let mut r = Recorder::new();
        let first = r.snapshot();
        r.record(
            Duration::from_micros(700),
            Outcome::Response {
                status: 200,
                failed: false,
            },
        );
        r.record(
            Duration::from_millis(40),
            Outcome::Response {
                status: 500,
                failed: true,
            },
        );
        let second = r.snapshot();
        m.add_delta(&run, &first, &second);
        r.record(Duration::from_secs(3), Outcome::Error("timeout".into()));
        m.add_delta(&run, &second, &r.snapshot());
        let text = m.encode();
        assert!(text.contains(r#"serin_loadtester_requests_total{namespace="test",canary="web",target="http://web-canary:9898",code="200"} 1"#), "{text}");
        assert!(text.contains(r#"code="500"} 1"#), "{text}");
        assert!(text.contains(r#"code="error"} 1"#), "{text}");
        let series = r#"namespace="test",canary="web",target="http://web-canary:9898"}"#;
        assert!(
            text.contains(&format!(
                r#"serin_loadtester_request_duration_seconds_bucket{{le="0.001",{series} 1"#
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                r#"serin_loadtester_request_duration_seconds_bucket{{le="0.05",{series} 2"#
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                r#"serin_loadtester_request_duration_seconds_bucket{{le="+Inf",{series} 3"#
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                r#"serin_loadtester_request_duration_seconds_count{{{series} 3"#
            )),
            "{text}"
        );
    }
}
