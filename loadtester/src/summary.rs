//! Recording of request outcomes and the summary of an attack: per-request latency in an
//! HdrHistogram (microseconds, 3 significant digits), status codes, errors, and hey-like text.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Upper bounds (seconds) of the latency buckets exported to Prometheus.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How one request ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// A response arrived (body read in full); `failed` per the expected status or ≥ 500.
    Response { status: u16, failed: bool },
    /// No response: connection refused, timeout, reset…; always failed.
    Error(String),
}

/// Accumulates outcomes. One per worker, merged at the end, so recording takes no shared lock.
#[derive(Clone, Debug)]
pub struct Recorder {
    latency: Histogram<u64>,
    requests: u64,
    failed: u64,
    latency_sum_us: u64,
    status_codes: BTreeMap<u16, u64>,
    errors: BTreeMap<String, u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Self {
        // 1 µs to 1 h; values above are clamped rather than lost.
        let latency = Histogram::new_with_bounds(1, 3_600_000_000, 3)
            .expect("static histogram bounds are valid");
        Recorder {
            latency,
            requests: 0,
            failed: 0,
            latency_sum_us: 0,
            status_codes: BTreeMap::new(),
            errors: BTreeMap::new(),
        }
    }

    pub fn record(&mut self, latency: Duration, outcome: Outcome) {
        let us = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.latency.saturating_record(us);
        self.latency_sum_us = self.latency_sum_us.saturating_add(us);
        self.requests += 1;
        match outcome {
            Outcome::Response { status, failed } => {
                *self.status_codes.entry(status).or_default() += 1;
                if failed {
                    self.failed += 1;
                }
            }
            Outcome::Error(kind) => {
                self.failed += 1;
                *self.errors.entry(kind).or_default() += 1;
            }
        }
    }

    pub fn merge(&mut self, other: &Recorder) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
        self.requests += other.requests;
        self.failed += other.failed;
        self.latency_sum_us = self.latency_sum_us.saturating_add(other.latency_sum_us);
        for (k, v) in &other.status_codes {
            *self.status_codes.entry(*k).or_default() += v;
        }
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
    }

    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Cumulative counters for exporters (Prometheus), cheap to send every second.
    pub fn snapshot(&self) -> Snapshot {
        let latency_buckets = LATENCY_BUCKETS
            .iter()
            .map(|le| self.latency.count_between(0, (le * 1e6) as u64))
            .collect();
        Snapshot {
            requests: self.requests,
            failed: self.failed,
            status_codes: self.status_codes.clone(),
            errors: self.errors.values().sum(),
            latency_sum_us: self.latency_sum_us,
            latency_buckets,
        }
    }

    pub fn summary(&self, elapsed: Duration) -> Summary {
        let h = &self.latency;
        let empty = self.requests == 0;
        let q = |p: f64| if empty { 0 } else { h.value_at_quantile(p) };
        let secs = elapsed.as_secs_f64();
        Summary {
            requests: self.requests,
            failed: self.failed,
            error_rate: if empty {
                0.0
            } else {
                self.failed as f64 / self.requests as f64
            },
            duration_secs: secs,
            rps: if secs > 0.0 {
                self.requests as f64 / secs
            } else {
                0.0
            },
            latency_us: Latency {
                min: if empty { 0 } else { h.min() },
                mean: if empty {
                    0
                } else {
                    self.latency_sum_us / self.requests
                },
                p50: q(0.50),
                p90: q(0.90),
                p95: q(0.95),
                p99: q(0.99),
                max: if empty { 0 } else { h.max() },
            },
            status_codes: self.status_codes.clone(),
            errors: self.errors.clone(),
        }
    }
}

/// Cumulative counters of a run so far; `latency_buckets[i]` counts requests ≤ `LATENCY_BUCKETS[i]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub requests: u64,
    pub failed: u64,
    pub status_codes: BTreeMap<u16, u64>,
    /// Requests without a response.
    pub errors: u64,
    pub latency_sum_us: u64,
    pub latency_buckets: Vec<u64>,
}

/// Latency figures in microseconds; failed requests included (time until the failure).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub min: u64,
    pub mean: u64,
    pub p50: u64,
    pub p90: u64,
    pub p95: u64,
    pub p99: u64,
    pub max: u64,
}

/// The result of one attack.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub requests: u64,
    /// Requests without a response, with a status ≥ 500, or with another status than expected.
    pub failed: u64,
    pub error_rate: f64,
    pub duration_secs: f64,
    pub rps: f64,
    pub latency_us: Latency,
    pub status_codes: BTreeMap<u16, u64>,
    /// Requests without a response, by reason.
    pub errors: BTreeMap<String, u64>,
}

impl Summary {
    /// `--max-error-rate` verdict: true when the failed fraction is within the limit. A run that
    /// sent no request never passes: it measured nothing.
    pub fn passes(&self, max_error_rate: f64) -> bool {
        self.requests > 0 && self.error_rate <= max_error_rate
    }

    /// Why the verdict failed, in words.
    pub fn verdict_error(&self, max_error_rate: f64) -> Option<String> {
        if self.requests == 0 {
            return Some("no request was sent: nothing to judge (is -q too low for -z?)".into());
        }
        (!self.passes(max_error_rate)).then(|| {
            format!(
                "error rate {:.2}% exceeds maxErrorRate {:.2}%",
                self.error_rate * 100.0,
                max_error_rate * 100.0
            )
        })
    }

    /// The summary in hey's layout (seconds with microsecond digits).
    pub fn to_text(&self) -> String {
        let s = |us: u64| us as f64 / 1e6;
        let l = &self.latency_us;
        let mut out = String::new();
        let _ = writeln!(out, "\nSummary:");
        let _ = writeln!(out, "  Total:\t{:.6} secs", self.duration_secs);
        let _ = writeln!(out, "  Slowest:\t{:.6} secs", s(l.max));
        let _ = writeln!(out, "  Fastest:\t{:.6} secs", s(l.min));
        let _ = writeln!(out, "  Average:\t{:.6} secs", s(l.mean));
        let _ = writeln!(out, "  Requests/sec:\t{:.4}", self.rps);
        let _ = writeln!(out, "  Requests:\t{}", self.requests);
        let _ = writeln!(
            out,
            "  Failed:\t{} ({:.2}%)",
            self.failed,
            self.error_rate * 100.0
        );
        let _ = writeln!(out, "\nLatency distribution:");
        for (p, v) in [(50, l.p50), (90, l.p90), (95, l.p95), (99, l.p99)] {
            let _ = writeln!(out, "  {p}% in {:.6} secs", s(v));
        }
        let _ = writeln!(out, "  max in {:.6} secs", s(l.max));
        let _ = writeln!(out, "\nStatus code distribution:");
        for (code, n) in &self.status_codes {
            let _ = writeln!(out, "  [{code}]\t{n} responses");
        }
        if !self.errors.is_empty() {
            let _ = writeln!(out, "\nError distribution:");
            for (e, n) in &self.errors {
                let _ = writeln!(out, "  [{n}]\t{e}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_stay_in_the_figures() {
        let mut r = Recorder::new();
        for ms in 1..=98 {
            r.record(
                Duration::from_millis(ms),
                Outcome::Response {
                    status: 200,
                    failed: false,
                },
            );
        }
        r.record(
            Duration::from_millis(500),
            Outcome::Response {
                status: 503,
                failed: true,
            },
        );
        r.record(Duration::from_secs(20), Outcome::Error("timeout".into()));
        let s = r.summary(Duration::from_secs(10));
        assert_eq!(s.requests, 100);
        assert_eq!(s.failed, 2);
        assert!((s.error_rate - 0.02).abs() < 1e-9);
        assert!((s.rps - 10.0).abs() < 1e-9);
        assert_eq!(s.status_codes[&200], 98);
        assert_eq!(s.status_codes[&503], 1);
        assert_eq!(s.errors["timeout"], 1);
        // The timeout is the slowest request: it is not dropped like hey does.
        assert!(s.latency_us.max >= 19_990_000, "{}", s.latency_us.max);
        assert!(
            (49_900..=50_100).contains(&s.latency_us.p50),
            "{}",
            s.latency_us.p50
        );
        assert!(s.passes(0.02) && !s.passes(0.019));
        let text = s.to_text();
        assert!(
            text.contains("[503]\t1 responses") && text.contains("[1]\ttimeout"),
            "{text}"
        );
    }

    #[test]
    fn microsecond_resolution() {
        let mut r = Recorder::new();
        r.record(
            Duration::from_micros(1234),
            Outcome::Response {
                status: 200,
                failed: false,
            },
        );
        let s = r.summary(Duration::from_secs(1));
        assert_eq!(s.latency_us.p50, 1234);
        assert_eq!(s.latency_us.min, 1234);
    }

    #[test]
    fn merge_and_snapshot_buckets() {
        let mut a = Recorder::new();
        let mut b = Recorder::new();
        a.record(
            Duration::from_micros(800),
            Outcome::Response {
                status: 200,
                failed: false,
            },
        );
        b.record(
            Duration::from_millis(30),
            Outcome::Response {
                status: 500,
                failed: true,
            },
        );
        a.merge(&b);
        let snap = a.snapshot();
        assert_eq!(snap.requests, 2);
        assert_eq!(snap.failed, 1);
        assert_eq!(snap.latency_buckets[0], 1); // ≤ 1 ms
        assert_eq!(snap.latency_buckets[4], 1); // ≤ 25 ms
        assert_eq!(snap.latency_buckets[5], 2); // ≤ 50 ms
        assert_eq!(snap.latency_buckets.len(), LATENCY_BUCKETS.len());
    }

    #[test]
    fn empty_run_has_zero_figures() {
        let s = Recorder::new().summary(Duration::ZERO);
        assert_eq!(s.requests, 0);
        assert_eq!(s.rps, 0.0);
        // Nothing measured is not a pass, whatever the limit.
        assert!(!s.passes(1.0));
        assert!(s.verdict_error(1.0).unwrap().contains("no request"));
    }
}
