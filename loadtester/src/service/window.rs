//! The recent runs of each canary as time series of cumulative counters, so that a metric can
//! read the requests completed in its last `interval`, from a run still going or from runs that
//! ended within it. The worker reports its counters about once a second, so a window resolves to
//! about a second.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::summary::{LATENCY_BUCKETS, Snapshot};

/// How long a finished run, and the points of a running one, are kept.
pub const RETENTION_SECS: f64 = 3600.0;
/// Runs kept per canary (a rollout hook starts one per interval at most).
pub const MAX_RUNS: usize = 64;
/// A window counts as covered when its first run started at most this long after the window's
/// start: the engine's next tick comes one interval after the tick whose hook started the run,
/// a few milliseconds short of a full window, and the counters are per second anyway.
pub const TOLERANCE_SECS: f64 = 1.0;

struct Run {
    id: u64,
    started_at: f64,
    finished_at: Option<f64>,
    /// (Unix time, counters since the run started), oldest first.
    points: VecDeque<(f64, Snapshot)>,
}

impl Run {
    /// The counters as they were at `t` (the last report at or before it).
    fn at(&self, t: f64) -> Snapshot {
        self.points
            .iter()
            .rev()
            .find(|(at, _)| *at <= t)
            .map(|(_, s)| s.clone())
            .unwrap_or_default()
    }
}

/// The runs of one canary.
#[derive(Default)]
pub struct History {
    runs: VecDeque<Run>,
}

/// The load a canary received in a window ending now: what `GET /results/{ns}/{name}?window=`
/// answers and what the `loadtester` metric provider reads.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// `namespace/name` of the canary whose runs were read.
    pub canary: String,
    pub window_secs: f64,
    /// False while the runs in the window started less than a window ago and still run: the
    /// window is not covered yet, so its figures are no data.
    pub complete: bool,
    /// Runs that overlap the window, and how many of them still run.
    pub runs: usize,
    pub running: usize,
    pub requests: u64,
    pub failed: u64,
    pub error_rate: f64,
    pub rps: f64,
    /// Requests without a response (counted in `failed`).
    pub errors: u64,
    pub status_codes: BTreeMap<u16, u64>,
    /// Latency in milliseconds, interpolated in the Prometheus buckets (1 ms … 10 s) as
    /// `histogram_quantile` does; `None` without requests.
    pub latency_ms: Option<WindowLatency>,
    /// Why the window has no figures yet, in words.
    pub message: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowLatency {
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
}

impl History {
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    pub fn start(&mut self, id: u64, now: f64) {
        self.runs
            .retain(|r| r.finished_at.is_none_or(|f| f >= now - RETENTION_SECS));
        while self.runs.len() >= MAX_RUNS {
            self.runs.pop_front();
        }
        self.runs.push_back(Run {
            id,
            started_at: now,
            finished_at: None,
            points: VecDeque::from([(now, Snapshot::default())]),
        });
    }

    pub fn progress(&mut self, id: u64, now: f64, snap: &Snapshot) {
        let Some(run) = self.runs.iter_mut().find(|r| r.id == id) else {
            return;
        };
        run.points.push_back((now, snap.clone()));
        // Keep one point before the retention horizon: it is the base of the oldest window.
        while run.points.len() > 2 && run.points[1].0 < now - RETENTION_SECS {
            run.points.pop_front();
        }
    }

    pub fn finish(&mut self, id: u64, now: f64, snap: &Snapshot) {
        self.progress(id, now, snap);
        if let Some(run) = self.runs.iter_mut().find(|r| r.id == id) {
            run.finished_at = Some(now);
        }
    }

    /// The load completed in `(now - window_secs, now]`, summed over the runs that overlap it.
    pub fn window(&self, canary: &str, now: f64, window_secs: f64) -> Window {
        let from = now - window_secs;
        let overlapping: Vec<&Run> = self
            .runs
            .iter()
            .filter(|r| r.started_at <= now && r.finished_at.is_none_or(|f| f > from))
            .collect();
        let mut sum = Snapshot::default();
        for r in &overlapping {
            add_delta(&mut sum, &r.at(now), &r.at(from));
        }
        let running = overlapping
            .iter()
            .filter(|r| r.finished_at.is_none())
            .count();
        let first = overlapping
            .iter()
            .map(|r| r.started_at)
            .fold(f64::INFINITY, f64::min);
        let complete = !overlapping.is_empty() && (first <= from + TOLERANCE_SECS || running == 0);
        let covered = (now - first.max(from)).max(1e-3);
        let message = if overlapping.is_empty() {
            Some(match self.runs.back() {
                Some(r) => format!(
                    "no load test for {canary} ran in the last {}: the last one ended {} ago; is the rollout hook starting load?",
                    secs(window_secs),
                    secs(now - r.finished_at.unwrap_or(now))
                ),
                None => format!("no load test has run for {canary}"),
            })
        } else if !complete {
            Some(format!(
                "the load test for {canary} started {} ago; its first {} window completes in {}",
                secs(now - first),
                secs(window_secs),
                secs(first + window_secs - now - TOLERANCE_SECS)
            ))
        } else if sum.requests == 0 {
            Some(format!(
                "the load test for {canary} completed no request in the last {}: is the target answering, and -q high enough?",
                secs(window_secs)
            ))
        } else {
            None
        };
        Window {
            canary: canary.to_string(),
            window_secs,
            complete,
            runs: overlapping.len(),
            running,
            requests: sum.requests,
            failed: sum.failed,
            error_rate: ratio(sum.failed, sum.requests),
            rps: sum.requests as f64 / covered,
            errors: sum.errors,
            status_codes: sum.status_codes.clone(),
            latency_ms: latency(&sum),
            message,
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Seconds in words, rounded: `3s`, `1m0s` reads worse than `60s` here.
fn secs(s: f64) -> String {
    format!("{}s", s.max(0.0).round())
}

/// `sum += end - start`, for counters that only grow within a run.
fn add_delta(sum: &mut Snapshot, end: &Snapshot, start: &Snapshot) {
    sum.requests += end.requests.saturating_sub(start.requests);
    sum.failed += end.failed.saturating_sub(start.failed);
    sum.errors += end.errors.saturating_sub(start.errors);
    sum.latency_sum_us += end.latency_sum_us.saturating_sub(start.latency_sum_us);
    for (code, n) in &end.status_codes {
        let before = start.status_codes.get(code).copied().unwrap_or(0);
        *sum.status_codes.entry(*code).or_default() += n.saturating_sub(before);
    }
    sum.status_codes.retain(|_, n| *n > 0);
    sum.latency_buckets.resize(LATENCY_BUCKETS.len(), 0);
    for (i, slot) in sum.latency_buckets.iter_mut().enumerate() {
        let e = end.latency_buckets.get(i).copied().unwrap_or(0);
        let s = start.latency_buckets.get(i).copied().unwrap_or(0);
        *slot += e.saturating_sub(s);
    }
}

fn latency(sum: &Snapshot) -> Option<WindowLatency> {
    if sum.requests == 0 {
        return None;
    }
    let q = |p: f64| quantile_ms(p, &sum.latency_buckets, sum.requests);
    Some(WindowLatency {
        mean: sum.latency_sum_us as f64 / sum.requests as f64 / 1e3,
        p50: q(0.50),
        p90: q(0.90),
        p95: q(0.95),
        p99: q(0.99),
    })
}

/// Prometheus' `histogram_quantile`: linear within the bucket holding the rank; a rank beyond the
/// last bound is that bound.
fn quantile_ms(p: f64, buckets: &[u64], total: u64) -> f64 {
    let rank = p * total as f64;
    let mut lower = (0.0, 0u64);
    for (le, count) in LATENCY_BUCKETS.iter().zip(buckets) {
        if *count as f64 >= rank {
            let (lo, below) = lower;
            let inside = (*count - below).max(1) as f64;
            return (lo + (le - lo) * (rank - below as f64) / inside) * 1e3;
        }
        lower = (*le, *count);
    }
    lower.0 * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(requests: u64, failed: u64) -> Snapshot {
        Snapshot {
            requests,
            failed,
            status_codes: BTreeMap::from([(200, requests - failed), (500, failed)]),
            errors: 0,
            latency_sum_us: requests * 2_000,
            // All between 1 and 2.5 ms.
            latency_buckets: LATENCY_BUCKETS
                .iter()
                .enumerate()
                .map(|(i, _)| if i == 0 { 0 } else { requests })
                .collect(),
        }
    }

    #[test]
    fn a_running_run_is_read_over_the_last_window_once_it_covers_it() {
        let mut h = History::default();
        h.start(1, 100.0);
        // 10 requests a second, the last second of each ten failing.
        for t in 1..=30u64 {
            let failed = t / 10;
            h.progress(1, 100.0 + t as f64, &snap(10 * t, failed * 10));
        }
        let early = h.window("test/web", 105.0, 10.0);
        assert!(!early.complete, "{early:?}");
        assert!(early.message.unwrap().contains("completes in 4s"));
        let w = h.window("test/web", 130.0, 10.0);
        assert!(w.complete && w.running == 1);
        // (120, 130]: 100 requests, 10 of them failed: the run's earlier seconds are not in it.
        assert_eq!((w.requests, w.failed), (100, 10));
        assert!((w.error_rate - 0.1).abs() < 1e-9);
        assert!((w.rps - 10.0).abs() < 1e-9);
        assert_eq!(w.status_codes[&500], 10);
        let l = w.latency_ms.unwrap();
        assert!((l.mean - 2.0).abs() < 1e-9);
        assert!(l.p99 > 1.0 && l.p99 <= 2.5, "{l:?}");
    }

    #[test]
    fn a_window_spans_the_run_that_ended_and_the_one_just_started() {
        let mut h = History::default();
        h.start(1, 0.0);
        h.progress(1, 30.0, &snap(300, 0));
        h.finish(1, 60.0, &snap(600, 6));
        h.start(2, 60.5);
        h.progress(2, 61.0, &snap(5, 5));
        let w = h.window("test/web", 61.0, 60.0);
        assert!(w.complete);
        assert_eq!(w.runs, 2);
        // Run 1 from t=1 (its point at 0 is the base) to its end, plus run 2.
        assert_eq!((w.requests, w.failed), (605, 11));
    }

    #[test]
    fn nothing_in_the_window_says_why() {
        let mut h = History::default();
        h.start(1, 0.0);
        h.finish(1, 10.0, &snap(100, 0));
        let w = h.window("test/web", 200.0, 60.0);
        assert_eq!(w.runs, 0);
        assert!(!w.complete);
        assert!(w.message.unwrap().contains("ended 190s ago"));
        // A finished run shorter than the window is all the window will ever have.
        let w = h.window("test/web", 30.0, 60.0);
        assert!(w.complete);
        assert_eq!(w.requests, 100);
    }

    #[test]
    fn quantiles_interpolate_like_prometheus() {
        // 100 requests: 50 ≤ 1 ms, 50 in (1, 2.5] ms.
        let mut b = vec![100u64; LATENCY_BUCKETS.len()];
        b[0] = 50;
        assert!((quantile_ms(0.5, &b, 100) - 1.0).abs() < 1e-9);
        assert!((quantile_ms(0.75, &b, 100) - 1.75).abs() < 1e-9);
        let slow = vec![0u64; LATENCY_BUCKETS.len()];
        assert!((quantile_ms(0.99, &slow, 10) - 10_000.0).abs() < 1e-9);
    }
}
