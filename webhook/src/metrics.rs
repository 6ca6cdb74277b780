//! The webhook's own Prometheus metrics: reviews by kind, operation and verdict, how long a
//! review took to decide, and the connections: open, closed by the server and why, and how often
//! the connection limit was reached.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReviewLabels {
    /// `/mutate` or `/validate`.
    pub webhook: &'static str,
    pub kind: &'static str,
    pub operation: &'static str,
    /// `allowed`, `patched`, `denied`, or `rejected` (HTTP 4xx: not a usable review).
    pub verdict: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CloseLabels {
    /// `handshake_timeout`, `header_timeout`, `idle_timeout` or `drained`.
    pub reason: &'static str,
}

/// The registry and the metrics in it.
pub struct Metrics {
    registry: Registry,
    reviews: Family<ReviewLabels, Counter>,
    duration: Histogram,
    connections: Gauge,
    closed: Family<CloseLabels, Counter>,
    limit_reached: Counter,
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
        let connections = Gauge::default();
        registry.register(
            "connections",
            "Connections open (TLS handshake included)",
            connections.clone(),
        );
        let closed = Family::<CloseLabels, Counter>::default();
        registry.register(
            "connections_closed",
            "Connections the server closed, by reason",
            closed.clone(),
        );
        let limit_reached = Counter::default();
        registry.register(
            "connection_limit_reached",
            "Times every connection slot was taken: new connections waited in the backlog",
            limit_reached.clone(),
        );
        Metrics {
            registry,
            reviews,
            duration,
            connections,
            closed,
            limit_reached,
        }
    }

    /// Counts an open connection until the guard is dropped.
    pub fn open_connection(&self) -> impl Drop + Send + use<> {
        struct Open(Gauge);
        impl Drop for Open {
            fn drop(&mut self) {
                self.0.dec();
            }
        }
        self.connections.inc();
        Open(self.connections.clone())
    }

    /// Connections open now.
    pub fn connections(&self) -> i64 {
        self.connections.get()
    }

    pub fn connection_closed(&self, reason: &'static str) {
        self.closed.get_or_create(&CloseLabels { reason }).inc();
    }

    pub fn limit_reached(&self) {
        self.limit_reached.inc();
    }

    /// Times the connection limit was reached.
    pub fn limit_reached_count(&self) -> u64 {
        self.limit_reached.get()
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
