//! The webhook's own Prometheus metrics: reviews by kind, operation and verdict, and how long a
//! review took to decide.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReviewLabels {
    /// `/mutate` or `/validate`.
    pub webhook: &'static str,
    pub kind: &'static str,
    pub operation: &'static str,
    /// `allowed`, `patched`, `denied`, or `rejected` (HTTP 400: not a usable review).
    pub verdict: &'static str,
}

/// The registry and the metrics in it.
pub struct Metrics {
    registry: Registry,
    reviews: Family<ReviewLabels, Counter>,
    duration: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("serin_webhook");
        let reviews = Family::<ReviewLabels, Counter>::default();
        registry.register(
            "reviews",
            "Admission reviews answered, by kind, operation and verdict",
            reviews.clone(),
        );
        // 50 µs .. ~0.8 s: a review is decided in microseconds; the tail shows contention.
        let duration = Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
            0.00005, 2.0, 15,
        ));
        registry.register(
            "review_duration_seconds",
            "Time from a review's body being read to its response being serialised",
            duration.clone(),
        );
        Metrics {
            registry,
            reviews,
            duration,
        }
    }

    pub fn record(&self, labels: ReviewLabels, seconds: f64) {
        self.reviews.get_or_create(&labels).inc();
        self.duration.observe(seconds);
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
