//! The demo app: a small podinfo-like HTTP service that the demo, the tests and the benchmarks
//! run as the primary and the canary.
//!
//! Faults are deterministic so that a test can state exact expectations: with `error_rate` r,
//! request number n (counting every request except probes and `/metrics`) fails with HTTP 500
//! exactly when ⌊n·r⌋ > ⌊(n−1)·r⌋, so any run of k requests holds ⌊k·r⌋ or ⌈k·r⌉ errors.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

/// How the demo app behaves.
#[derive(Clone, Debug)]
pub struct DemoAppConfig {
    /// Reported in `/` and as the `version` label of every metric.
    pub version: String,
    /// Fraction of requests answered with HTTP 500, in [0, 1].
    pub error_rate: f64,
    /// Added to every request before it is answered.
    pub latency: Duration,
}

/// Why a demo app configuration is refused.
#[derive(Debug, thiserror::Error)]
pub enum DemoAppError {
    #[error("--error-rate must be between 0 and 1 (0.2 fails one request in five), got {0}")]
    ErrorRate(f64),
    #[error("--version must not be empty")]
    EmptyVersion,
    #[error("cannot serve the demo app: {0}")]
    Io(#[from] std::io::Error),
}

impl DemoAppConfig {
    pub fn validate(&self) -> Result<(), DemoAppError> {
        if !(0.0..=1.0).contains(&self.error_rate) || self.error_rate.is_nan() {
            return Err(DemoAppError::ErrorRate(self.error_rate));
        }
        if self.version.is_empty() {
            return Err(DemoAppError::EmptyVersion);
        }
        Ok(())
    }
}

type Labels = Vec<(String, String)>;

#[derive(Clone)]
struct Buckets;

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        // podinfo's buckets plus finer ones below 100 ms, where healthy local services live.
        Histogram::new([
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ])
    }
}

struct AppState {
    config: DemoAppConfig,
    served: AtomicU64,
    registry: Registry,
    requests: Family<Labels, Counter>,
    durations: Family<Labels, Histogram, Buckets>,
}

impl AppState {
    /// Whether the n-th counted request (1-based) fails; see the module comment.
    fn fails(&self, n: u64) -> bool {
        let r = self.config.error_rate;
        (n as f64 * r).floor() > ((n - 1) as f64 * r).floor()
    }
}

/// Builds the demo app's routes.
pub fn app(config: DemoAppConfig) -> Router {
    let mut registry = Registry::default();
    let requests = Family::<Labels, Counter>::default();
    let durations = Family::<Labels, Histogram, Buckets>::new_with_constructor(Buckets);
    registry.register(
        "http_requests",
        "Number of HTTP requests served",
        requests.clone(),
    );
    registry.register(
        "http_request_duration_seconds",
        "Time spent answering HTTP requests",
        durations.clone(),
    );
    let state = Arc::new(AppState {
        config,
        served: AtomicU64::new(0),
        registry,
        requests,
        durations,
    });
    let faulty = Router::new()
        .route("/", get(index).post(index))
        .route("/status/{code}", get(status).post(status))
        .route("/delay/{d}", get(delay))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), inject));
    Router::new()
        .route("/healthz", get(ok))
        .route("/readyz", get(ok))
        .route("/metrics", get(metrics))
        .merge(faulty)
        .with_state(state)
}

/// Serves the demo app on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, config: DemoAppConfig) -> Result<(), DemoAppError> {
    config.validate()?;
    axum::serve(listener, app(config)).await?;
    Ok(())
}

/// Binds `addr` and returns the bound address with the serving future.
pub async fn bind(
    addr: SocketAddr,
    config: DemoAppConfig,
) -> Result<(SocketAddr, impl Future<Output = Result<(), DemoAppError>>), DemoAppError> {
    config.validate()?;
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((local, serve(listener, config)))
}

async fn inject(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let path = route_label(req.uri().path());
    let n = state.served.fetch_add(1, Ordering::Relaxed) + 1;
    if !state.config.latency.is_zero() {
        tokio::time::sleep(state.config.latency).await;
    }
    let response = if state.fails(n) {
        (StatusCode::INTERNAL_SERVER_ERROR, "injected failure\n").into_response()
    } else {
        next.run(req).await
    };
    let labels: Labels = vec![
        ("method".into(), method),
        ("path".into(), path),
        ("status".into(), response.status().as_u16().to_string()),
        ("version".into(), state.config.version.clone()),
    ];
    state.requests.get_or_create(&labels).inc();
    state
        .durations
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    response
}

/// Keeps the `path` label's cardinality bounded: parameterised routes are labelled by pattern.
fn route_label(path: &str) -> String {
    if path.starts_with("/status/") {
        "/status/{code}".into()
    } else if path.starts_with("/delay/") {
        "/delay/{d}".into()
    } else if path == "/" {
        "/".into()
    } else {
        "other".into()
    }
}

async fn index(State(state): State<Arc<AppState>>) -> Response {
    let body = serde_json::json!({
        "hostname": "serin-demo-app",
        "version": state.config.version,
        "message": format!("greetings from serin demo app {}", state.config.version),
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        format!("{body}\n"),
    )
        .into_response()
}

async fn status(Path(code): Path<String>) -> Response {
    match code
        .parse::<u16>()
        .ok()
        .and_then(|c| StatusCode::from_u16(c).ok())
    {
        Some(code) => (code, format!("{{\"status\":{}}}\n", code.as_u16())).into_response(),
        None => (
            StatusCode::BAD_REQUEST,
            format!("status code must be a number between 100 and 999, got {code:?}\n"),
        )
            .into_response(),
    }
}

async fn delay(Path(d): Path<String>) -> Response {
    // podinfo counts in seconds; a Go duration (`250ms`) is accepted too.
    let parsed = d
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0 && *s <= 600.0)
        .map(Duration::from_secs_f64)
        .or_else(|| serin_api::duration::parse(&d).ok());
    match parsed {
        Some(wait) if wait <= Duration::from_secs(600) => {
            tokio::time::sleep(wait).await;
            (
                StatusCode::OK,
                format!("{{\"delay\":{}}}\n", wait.as_secs_f64()),
            )
                .into_response()
        }
        _ => (
            StatusCode::BAD_REQUEST,
            format!("delay must be seconds (1.5) or a duration (250ms) up to 10m, got {d:?}\n"),
        )
            .into_response(),
    }
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

async fn ok() -> &'static str {
    "{\"status\":\"OK\"}\n"
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let mut text = String::new();
    if encode(&mut text, &state.registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(rate: f64) -> AppState {
        AppState {
            config: DemoAppConfig {
                version: "v".into(),
                error_rate: rate,
                latency: Duration::ZERO,
            },
            served: AtomicU64::new(0),
            registry: Registry::default(),
            requests: Family::default(),
            durations: Family::new_with_constructor(Buckets),
        }
    }

    #[test]
    fn error_injection_is_exact_over_any_prefix() {
        for rate in [0.0, 0.05, 0.2, 0.5, 1.0] {
            let s = state(rate);
            let mut errors = 0u64;
            for n in 1..=1000u64 {
                errors += u64::from(s.fails(n));
                let expected = (n as f64 * rate).floor() as u64;
                assert_eq!(errors, expected, "rate {rate} after {n} requests");
            }
        }
    }

    #[test]
    fn bad_rates_are_refused_with_the_flag_name() {
        let mut c = DemoAppConfig {
            version: "v1".into(),
            error_rate: 1.5,
            latency: Duration::ZERO,
        };
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("--error-rate"), "{err}");
        c.error_rate = f64::NAN;
        assert!(c.validate().is_err());
        c.error_rate = 0.1;
        assert!(c.validate().is_ok());
    }
}
