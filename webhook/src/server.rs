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

use crate::admit::{name_of, namespace_of};
use crate::index::CanaryIndex;
use crate::metrics::{Metrics, ReviewLabels};
use crate::review::{
    AdmissionRequest, MutateRequest, Operation, Review, ReviewError, Verdict, response_body,
};

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
    answer(&state, "/mutate", body, |body| {
        review(body, |request: &MutateRequest| {
            let held_kind = request.kind.group == "apps"
                && crate::hold::HELD_KINDS.contains(&request.kind.kind.as_str());
            let writes = matches!(request.operation, Operation::Create | Operation::Update);
            let main_resource = request.sub_resource.as_deref().unwrap_or("").is_empty();
            match request.object.as_ref() {
                Some(object) if held_kind && writes && main_resource => crate::hold::hold(
                    object,
                    namespace_of(request, object.namespace.as_deref()),
                    name_of(request, object.name.as_deref()),
                ),
                _ => Verdict::allow(),
            }
        })
    })
}

async fn validate(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    answer(&state, "/validate", body, |body| {
        review(body, |request: &AdmissionRequest| {
            crate::admit::validate(request, state.index.as_ref())
        })
    })
}

/// What one review came to: the response body and the labels of its metric.
struct Answered {
    body: Vec<u8>,
    kind: &'static str,
    operation: &'static str,
    verdict: &'static str,
}

/// Parses a review (`Old` and `Obj` may borrow from `body`), decides and writes the response.
fn review<'a, Old: serde::Deserialize<'a>, Obj: serde::Deserialize<'a>>(
    body: &'a [u8],
    decide: impl FnOnce(&AdmissionRequest<Old, Obj>) -> Verdict,
) -> Result<Answered, ReviewError> {
    let review = Review::<Old, Obj>::parse(body)?;
    let verdict = decide(&review.request);
    Ok(Answered {
        body: response_body(&review.api_version, &review.request.uid, &verdict),
        kind: kind_label(&review.request.kind.kind),
        operation: review.request.operation.as_str(),
        verdict: verdict.label(),
    })
}

/// Answers one request: the body's errors, the review's answer, the metrics.
fn answer(
    state: &AppState,
    webhook: &'static str,
    body: Result<Bytes, BytesRejection>,
    respond: impl FnOnce(&[u8]) -> Result<Answered, ReviewError>,
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
    let answered = match respond(&body) {
        Ok(answered) => answered,
        Err(err) => return rejected(StatusCode::BAD_REQUEST, err.to_string()),
    };
    state.metrics.record(
        ReviewLabels {
            webhook,
            kind: answered.kind,
            operation: answered.operation,
            verdict: answered.verdict,
        },
        start.elapsed().as_secs_f64(),
    );
    ([(header::CONTENT_TYPE, "application/json")], answered.body).into_response()
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

/// Serves `app` over TLS on `listener` until the future is dropped, on `threads` threads of
/// their own: this future accepts, and hands each connection to the next thread in turn, which
/// does the handshake and answers every request of that connection (HTTP/2 streams included).
/// A connection never moves between threads: a work-stealing runtime spent a fifth more CPU per
/// review here (89.7 vs 74.2 µs), waking other threads and moving connections' state between
/// cores. Each connection keeps the certificate it was handshaken with, so a reload never drops
/// one. Dropping the future closes the threads' queues; each thread then stops, closing its
/// connections.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    threads: usize,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let mut queues = Vec::new();
    for n in 0..threads.max(1) {
        queues.push(connection_thread(n, acceptor.clone(), app.clone())?);
    }
    let mut next = 0;
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
        // Leaves this runtime's reactor; the connection's thread registers it with its own.
        let tcp = match tcp.into_std() {
            Ok(tcp) => tcp,
            Err(err) => {
                tracing::warn!(%peer, error = %err, "cannot hand the connection to a thread");
                continue;
            }
        };
        if queues[next].send((tcp, peer)).is_err() {
            return Err(std::io::Error::other(format!(
                "connection thread {next} has stopped"
            )));
        }
        next = (next + 1) % queues.len();
    }
}

type Accepted = (std::net::TcpStream, std::net::SocketAddr);

/// Starts thread `n`: a runtime with one worker serving the connections sent to the queue it
/// returns, until the queue is closed. Not tokio's current-thread runtime: measured here, it
/// answered 19,300 small requests/s on one thread where a one-worker runtime answers 33,800 (it
/// polls for I/O less eagerly between tasks).
fn connection_thread(
    n: usize,
    acceptor: tokio_rustls::TlsAcceptor,
    app: Router,
) -> std::io::Result<tokio::sync::mpsc::UnboundedSender<Accepted>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let (queue, mut accepted) = tokio::sync::mpsc::unbounded_channel::<Accepted>();
    std::thread::Builder::new()
        .name(format!("serin-webhook-{n}"))
        .spawn(move || {
            runtime.block_on(async move {
                while let Some((tcp, peer)) = accepted.recv().await {
                    match tokio::net::TcpStream::from_std(tcp) {
                        Ok(tcp) => {
                            tokio::spawn(serve_connection(
                                acceptor.clone(),
                                tcp,
                                peer,
                                app.clone(),
                            ));
                        }
                        Err(err) => tracing::warn!(%peer, error = %err, "cannot take a connection"),
                    }
                }
            });
        })?;
    Ok(queue)
}

/// The TLS handshake, then HTTP/1.1 or HTTP/2 (ALPN) until the client closes.
async fn serve_connection(
    acceptor: tokio_rustls::TlsAcceptor,
    tcp: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    app: Router,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;

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
    // The executor runs HTTP/2 streams on this thread's runtime, beside their connection.
    if let Err(err) = Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app))
        .await
    {
        tracing::debug!(%peer, error = %err, "connection ended with an error");
    }
}
