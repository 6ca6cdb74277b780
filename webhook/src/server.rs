//! The HTTP side: the axum router (`/mutate`, `/validate`, `/healthz`, `/readyz`, `/metrics`),
//! the request body read within its limits, and the review answered with its metric.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt as _;
use kube::core::DynamicObject;
use kube::core::admission::AdmissionReview;
use serin_api::hold::Kind;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::index::CanaryIndex;
use crate::limits::Limits;
use crate::metrics::{Metrics, ReviewLabels};
use crate::review::{Review, ReviewError, Verdict, denial};

/// What the handlers share.
pub struct AppState {
    pub index: Arc<dyn CanaryIndex>,
    pub metrics: Metrics,
    pub limits: Limits,
    /// A permit per KiB of request body held, `limits.max_buffered_bytes` in all.
    buffered: Arc<Semaphore>,
}

impl AppState {
    /// State with the default [`Limits`].
    pub fn new(index: Arc<dyn CanaryIndex>) -> Arc<Self> {
        Self::with_limits(index, Limits::default())
    }

    pub fn with_limits(index: Arc<dyn CanaryIndex>, limits: Limits) -> Arc<Self> {
        let kib = limits
            .max_buffered_bytes
            .div_ceil(1024)
            .min(Semaphore::MAX_PERMITS);
        Arc::new(AppState {
            index,
            metrics: Metrics::new(),
            limits,
            buffered: Arc::new(Semaphore::new(kib)),
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
        .fallback(|| async { json_error(StatusCode::NOT_FOUND, ROUTES) })
        .method_not_allowed_fallback(|| async {
            json_error(StatusCode::METHOD_NOT_ALLOWED, ROUTES)
        })
        .with_state(state)
}

const ROUTES: &str =
    "serin webhook serves POST /mutate, POST /validate, GET /healthz, GET /readyz and GET /metrics";

async fn mutate(State(state): State<Arc<AppState>>, request: Request) -> Response {
    answer(&state, "/mutate", request, |review| {
        let kind = &review.request.kind;
        let held = Kind::from_name(&kind.kind).filter(|_| kind.group == "apps");
        match (held, review.object.as_ref()) {
            (Some(kind), Some(object)) if review.writes_object() => {
                crate::hold::hold(kind, object, review.namespace(), review.name())
            }
            _ => Verdict::allow(),
        }
    })
    .await
}

async fn validate(State(state): State<Arc<AppState>>, request: Request) -> Response {
    answer(&state, "/validate", request, |review| {
        crate::admit::validate(review, state.index.as_ref())
    })
    .await
}

/// Answers one request: the body read within the limits, the review decided, the metric.
async fn answer(
    state: &AppState,
    webhook: &'static str,
    request: Request,
    decide: impl FnOnce(&Review) -> Verdict,
) -> Response {
    let start = Instant::now();
    let record = |kind, operation, verdict| {
        let labels = ReviewLabels {
            webhook,
            kind,
            operation,
            verdict,
        };
        state.metrics.record(labels, start.elapsed().as_secs_f64());
    };
    let (parts, body) = request.into_parts();
    let (body, held) = match read_body(&parts.headers, body, state).await {
        Ok(read) => read,
        Err((status, message)) => {
            record("unknown", "unknown", "rejected");
            return json_error(status, &message);
        }
    };
    let review = match Review::parse(&body) {
        Ok(review) => review,
        Err(ReviewError::Denied {
            api_version,
            uid,
            message,
        }) => {
            record("unknown", "unknown", "denied");
            return json_ok(&denial(&api_version, &uid, &message));
        }
        Err(err) => {
            record("unknown", "unknown", "rejected");
            return json_error(StatusCode::BAD_REQUEST, &err.to_string());
        }
    };
    drop(body);
    drop(held);
    let verdict = decide(&review);
    record(
        kind_label(&review.request.kind.kind),
        review.operation(),
        verdict.label(),
    );
    json_ok(&verdict.into_review(&review.request))
}

/// Reads a request body of at most `max_body_bytes` within `body_timeout`. A body declared larger
/// is refused before a byte of it is read; one that turns out larger is refused as soon as it
/// passes the limit. Only what arrived is held, never the declared size, and only while the
/// budget of all bodies together (`max_buffered_bytes`) allows: the permits returned hold it.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    state: &AppState,
) -> Result<(Vec<u8>, Option<OwnedSemaphorePermit>), (StatusCode, String)> {
    let limits = &state.limits;
    let max = limits.max_body_bytes;
    let too_large = || {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request body exceeds {max} bytes ({}), the limit for an AdmissionReview (--max-body-bytes)",
                human_bytes(max)
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let read = async {
        let mut body = body;
        let mut chunks = Vec::new();
        let mut total = 0;
        let mut held: Option<OwnedSemaphorePermit> = None;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|err| {
                (
                    StatusCode::BAD_REQUEST,
                    format!("reading the request body failed: {err}"),
                )
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            total += data.len();
            if total > max {
                return Err(too_large());
            }
            hold(&state.buffered, &mut held, total, limits.max_buffered_bytes)?;
            chunks.push(data);
        }
        let mut out = Vec::with_capacity(total);
        for chunk in chunks {
            out.extend_from_slice(&chunk);
        }
        Ok((out, held))
    };
    let timeout = limits.body_timeout;
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or_else(|_| {
            Err((
                StatusCode::REQUEST_TIMEOUT,
                format!("the request body did not arrive within {timeout:?} (--body-timeout)"),
            ))
        })
}

/// Grows `held` to a permit per KiB of `total` bytes, or refuses with 503 when the budget of
/// all request bodies is spent (many clients each holding part of a body).
fn hold(
    budget: &Arc<Semaphore>,
    held: &mut Option<OwnedSemaphorePermit>,
    total: usize,
    max_buffered: usize,
) -> Result<(), (StatusCode, String)> {
    let have = held.as_ref().map_or(0, OwnedSemaphorePermit::num_permits);
    let more = u32::try_from(total.div_ceil(1024).saturating_sub(have)).unwrap_or(u32::MAX);
    if more == 0 {
        return Ok(());
    }
    let permit = budget.clone().try_acquire_many_owned(more).map_err(|_| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the webhook already holds {} of request bodies (--max-buffered-bytes); retry",
                human_bytes(max_buffered)
            ),
        )
    })?;
    match held {
        Some(held) => held.merge(permit),
        None => *held = Some(permit),
    }
    Ok(())
}

/// `3 MiB`, `64 KiB`, `1000 bytes`.
fn human_bytes(n: usize) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}

/// Keeps the metric's label set bounded whatever clients send: the held kinds (one list,
/// [`Kind`]) and the validated ones.
fn kind_label(kind: &str) -> &'static str {
    Kind::from_name(kind)
        .map(Kind::as_str)
        .or_else(|| crate::admit::KINDS.into_iter().find(|k| *k == kind))
        .unwrap_or("other")
}

fn json_ok(review: &AdmissionReview<DynamicObject>) -> Response {
    match crate::review::to_json(review) {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(err) => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot write the response: {err}"),
        ),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_held_and_validated_kind_has_its_label() {
        for kind in Kind::ALL {
            assert_eq!(kind_label(kind.as_str()), kind.as_str());
        }
        for kind in crate::admit::KINDS {
            assert_eq!(kind_label(kind), kind);
        }
        assert_eq!(kind_label("Pod"), "other");
    }

    #[test]
    fn sizes_are_written_for_people() {
        assert_eq!(human_bytes(3 << 20), "3 MiB");
        assert_eq!(human_bytes(64 << 10), "64 KiB");
        assert_eq!(human_bytes(1000), "1000 bytes");
    }
}
