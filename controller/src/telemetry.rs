//! The controller's own telemetry: Flagger's `flagger_canary_*` series (reference/flagger.md §6)
//! so existing dashboards work, served with `/healthz` on the controller's HTTP port.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use axum::Router;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InfoLabels {
    pub version: String,
    pub mesh_provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CanaryLabels {
    pub name: String,
    pub namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WeightLabels {
    pub workload: String,
    pub namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MetricLabels {
    pub name: String,
    pub namespace: String,
    pub metric: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub name: String,
    pub namespace: String,
    pub deployment_strategy: String,
    pub analysis_status: String,
}

pub struct Telemetry {
    registry: Registry,
    pub info: Family<InfoLabels, Gauge>,
    pub status: Family<CanaryLabels, Gauge>,
    pub weight: Family<WeightLabels, Gauge>,
    pub duration: Family<CanaryLabels, Histogram>,
    pub metric_analysis: Family<MetricLabels, Gauge<f64, AtomicU64>>,
    pub successes: Family<ResultLabels, Counter>,
    pub failures: Family<ResultLabels, Counter>,
}

impl Telemetry {
    pub fn new(mesh_provider: &str) -> Self {
        let mut registry = Registry::default();
        let info = Family::<InfoLabels, Gauge>::default();
        let status = Family::<CanaryLabels, Gauge>::default();
        let weight = Family::<WeightLabels, Gauge>::default();
        let duration = Family::<CanaryLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 14))
        });
        let metric_analysis = Family::<MetricLabels, Gauge<f64, AtomicU64>>::default();
        let successes = Family::<ResultLabels, Counter>::default();
        let failures = Family::<ResultLabels, Counter>::default();
        registry.register("flagger_info", "Version and mesh provider", info.clone());
        registry.register(
            "flagger_canary_status",
            "Canary status: 0 progressing, 1 other, 2 failed",
            status.clone(),
        );
        registry.register(
            "flagger_canary_weight",
            "Traffic weight per workload",
            weight.clone(),
        );
        registry.register(
            "flagger_canary_duration_seconds",
            "Duration of one analysis tick",
            duration.clone(),
        );
        registry.register(
            "flagger_canary_metric_analysis",
            "Last value of each analysed metric",
            metric_analysis.clone(),
        );
        registry.register("flagger_canary_successes", "Promotions", successes.clone());
        registry.register("flagger_canary_failures", "Rollbacks", failures.clone());
        info.get_or_create(&InfoLabels {
            version: env!("CARGO_PKG_VERSION").into(),
            mesh_provider: mesh_provider.into(),
        })
        .set(1);
        Self {
            registry,
            info,
            status,
            weight,
            duration,
            metric_analysis,
            successes,
            failures,
        }
    }

    /// The registry in Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// `/metrics` and `/healthz`.
pub fn router(telemetry: Arc<Telemetry>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let t = telemetry.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        t.encode(),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
}
