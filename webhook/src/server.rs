//! The HTTP side: the axum router (`/mutate`, `/validate`, `/healthz`, `/readyz`, `/metrics`)
//! and the TLS accept loop that serves it over HTTP/1.1 and HTTP/2.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::IgnoredAny;

use crate::admit::{name_of, namespace_of};
use crate::index::CanaryIndex;
use crate::metrics::{Metrics, ReviewLabels};
use crate::review::{AdmissionRequest, Operation, Review, Verdict, Workload, response_body};

/// Largest request body accepted (the API server's own limit for an object is 3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;
/// A client that has not finished the TLS handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the handlers share.
pub struct AppState {
    pub index: Arc<dyn CanaryIndex>,
    pub metrics: Metrics,
}

impl AppState {
    pub fn new(index: Arc<dyn CanaryIndex>) -> Arc<Self> {
        Arc::new(AppState {
            index,
            metrics: Metrics::new(),
        })
    }
}

/// The webhook's routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/mutate", post(mutate))
        .route("/validate", post(validate))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn mutate(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    answer(
        &state,
        "/mutate",
        body,
        |request: &AdmissionRequest<IgnoredAny, Workload>, _| {
            let held_kind = request.kind.group == "apps"
                && crate::hold::HELD_KINDS.contains(&request.kind.kind.as_str());
            let writes = matches!(request.operation, Operation::Create | Operation::Update);
            let main_resource = request.sub_resource.as_deref().unwrap_or("").is_empty();
            match request.object.as_ref().map(|workload| &workload.0) {
                Some(object) if held_kind && writes && main_resource => crate::hold::hold(
                    object,
                    namespace_of(request, object),
                    name_of(request, object),
                ),
                _ => Verdict::allow(),
            }
        },
    )
}

async fn validate(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    answer(
        &state,
        "/validate",
        body,
        |request: &AdmissionRequest, state| crate::admit::validate(request, state.index.as_ref()),
    )
}

/// Parses the review, decides, records the metrics and writes the response.
fn answer<Old: serde::de::DeserializeOwned, Obj: serde::de::DeserializeOwned>(
    state: &AppState,
    webhook: &'static str,
    body: Result<Bytes, BytesRejection>,
    decide: impl FnOnce(&AdmissionRequest<Old, Obj>, &AppState) -> Verdict,
) -> Response {
    let start = Instant::now();
    let rejected = |status: StatusCode, message: String| {
        state.metrics.record(
            ReviewLabels {
                webhook,
                kind: "unknown",
                operation: "unknown",
                verdict: "rejected",
            },
            start.elapsed().as_secs_f64(),
        );
        json_error(status, &message)
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return rejected(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "request body exceeds {MAX_BODY_BYTES} bytes (3 MiB), the limit for an AdmissionReview"
                ),
            );
        }
        Err(rejection) => return rejected(rejection.status(), rejection.body_text()),
    };
    let review = match Review::<Old, Obj>::parse(&body) {
        Ok(review) => review,
        Err(err) => return rejected(StatusCode::BAD_REQUEST, err.to_string()),
    };
    let verdict = decide(&review.request, state);
    let out = response_body(&review.api_version, &review.request.uid, &verdict);
    state.metrics.record(
        ReviewLabels {
            webhook,
            kind: kind_label(&review.request.kind.kind),
            operation: review.request.operation.as_str(),
            verdict: verdict.label(),
        },
        start.elapsed().as_secs_f64(),
    );
    ([(header::CONTENT_TYPE, "application/json")], out).into_response()
}

/// Keeps the metric's label set bounded whatever clients send.
fn kind_label(kind: &str) -> &'static str {
    const KNOWN: [&str; 4] = ["Deployment", "Canary", "MetricTemplate", "AlertProvider"];
    KNOWN.into_iter().find(|k| *k == kind).unwrap_or("other")
}

fn json_error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({"error": message, "code": status.as_u16()});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.index.is_ready() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "waiting for the first list of Canaries\n",
        )
            .into_response()
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

/// Serves `app` over TLS on `listener` until the task is dropped. Each connection keeps the
/// certificate it was handshaken with, so a reload never drops a connection.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;

    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of file descriptors and the like: back off instead of spinning.
            Err(err) => {
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(err)) => {
                    tracing::debug!(%peer, error = %err, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            if let Err(err) = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(%peer, error = %err, "connection ended with an error");
            }
        });
    }
}
