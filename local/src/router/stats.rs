//! Per-backend request accounting for the embedded and nginx routers: totals, and time-bucketed
//! samples from which the builtin metrics are computed over any window up to `RETAIN`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Width of one time bucket.
const BUCKET: Duration = Duration::from_millis(250);
/// How far back a window may reach (Flagger's metric intervals are usually 1m–5m).
const RETAIN: Duration = Duration::from_secs(15 * 60);

/// Cumulative counts of one backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    pub requests: u64,
    /// 5xx answers and requests the backend could not be reached for.
    pub errors: u64,
    /// Copies sent by mirroring (also counted in `requests`).
    pub mirrored: u64,
}

/// What a backend answered over a window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Window {
    pub requests: u64,
    pub errors: u64,
    /// Latencies in microseconds, unordered.
    latencies_us: Vec<u32>,
}

impl Window {
    /// `request-success-rate`: percentage of non-5xx answers; `None` without requests.
    pub fn success_rate(&self) -> Option<f64> {
        (self.requests > 0)
            .then(|| (self.requests - self.errors) as f64 * 100.0 / self.requests as f64)
    }

    /// `request-duration`: the 99th percentile in milliseconds; `None` without requests.
    pub fn p99_ms(&self) -> Option<f64> {
        self.quantile_ms(0.99)
    }

    /// Requests that took longer than `bound_ms`: the latency judge's "bad" requests.
    pub fn slower_than_ms(&self, bound_ms: f64) -> u64 {
        let bound_us = bound_ms * 1000.0;
        self.latencies_us
            .iter()
            .filter(|&&us| f64::from(us) > bound_us)
            .count() as u64
    }

    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.latencies_us.is_empty() {
            return None;
        }
        let mut sorted = self.latencies_us.clone();
        sorted.sort_unstable();
        // Nearest rank, as hey and most load tools report it.
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        Some(f64::from(sorted[rank - 1]) / 1000.0)
    }
}

struct Bucket {
    index: u64,
    requests: u64,
    errors: u64,
    latencies_us: Vec<u32>,
}

/// The accounting of one backend.
pub struct BackendStats {
    origin: Instant,
    totals: Totals,
    buckets: VecDeque<Bucket>,
    last_request: Option<Instant>,
}

impl BackendStats {
    pub fn new(origin: Instant) -> Self {
        Self {
            origin,
            totals: Totals::default(),
            buckets: VecDeque::new(),
            last_request: None,
        }
    }

    fn index(&self, at: Instant) -> u64 {
        (at.saturating_duration_since(self.origin).as_nanos() / BUCKET.as_nanos()) as u64
    }

    /// Records that a request was sent to the backend at `sent`, before its answer.
    pub fn dispatched(&mut self, sent: Instant) {
        self.last_request = Some(self.last_request.map_or(sent, |l| l.max(sent)));
    }

    /// Records one answered request.
    pub fn record(&mut self, at: Instant, latency: Duration, error: bool, mirrored: bool) {
        self.totals.requests += 1;
        self.totals.errors += u64::from(error);
        self.totals.mirrored += u64::from(mirrored);
        let index = self.index(at);
        if self.buckets.back().is_none_or(|b| b.index < index) {
            self.buckets.push_back(Bucket {
                index,
                requests: 0,
                errors: 0,
                latencies_us: Vec::new(),
            });
        }
        // A sample that finishes out of order lands in the newest bucket: off by < 250 ms.
        let bucket = self.buckets.back_mut().expect("pushed above");
        bucket.requests += 1;
        bucket.errors += u64::from(error);
        bucket
            .latencies_us
            .push(latency.as_micros().min(u128::from(u32::MAX)) as u32);
        let keep = RETAIN.as_nanos() / BUCKET.as_nanos();
        while self
            .buckets
            .front()
            .is_some_and(|b| u128::from(index - b.index) > keep)
        {
            self.buckets.pop_front();
        }
    }

    pub fn totals(&self) -> Totals {
        self.totals
    }

    /// When the last request was sent to this backend.
    pub fn last_request(&self) -> Option<Instant> {
        self.last_request
    }

    /// What was answered in the `window` before `now`.
    pub fn window(&self, now: Instant, window: Duration) -> Window {
        let from = self.index(now.checked_sub(window).unwrap_or(self.origin));
        let mut out = Window::default();
        for b in self.buckets.iter().filter(|b| b.index >= from) {
            out.requests += b.requests;
            out.errors += b.errors;
            out.latencies_us.extend_from_slice(&b.latencies_us);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_counts_only_recent_requests() {
        let t0 = Instant::now();
        let mut s = BackendStats::new(t0);
        s.record(t0, Duration::from_millis(5), false, false);
        s.record(
            t0 + Duration::from_secs(10),
            Duration::from_millis(7),
            true,
            false,
        );
        s.record(
            t0 + Duration::from_secs(11),
            Duration::from_millis(9),
            false,
            true,
        );
        let w = s.window(t0 + Duration::from_secs(12), Duration::from_secs(5));
        assert_eq!((w.requests, w.errors), (2, 1));
        assert_eq!(w.success_rate(), Some(50.0));
        assert_eq!(w.p99_ms(), Some(9.0));
        assert_eq!(
            s.totals(),
            Totals {
                requests: 3,
                errors: 1,
                mirrored: 1
            }
        );
        let empty = s.window(t0 + Duration::from_secs(100), Duration::from_secs(5));
        assert_eq!(empty.success_rate(), None);
    }

    #[test]
    fn p99_is_nearest_rank() {
        let t0 = Instant::now();
        let mut s = BackendStats::new(t0);
        for ms in 1..=200u64 {
            s.record(t0, Duration::from_millis(ms), false, false);
        }
        let w = s.window(t0, Duration::from_secs(1));
        assert_eq!(w.p99_ms(), Some(198.0));
        assert_eq!(w.quantile_ms(0.5), Some(100.0));
        assert_eq!(w.slower_than_ms(198.0), 2);
        assert_eq!(w.slower_than_ms(0.5), 200);
        assert_eq!(w.slower_than_ms(200.0), 0);
    }
}
