//! Webhook calls against a real HTTP server: status semantics, retries, payload on the wire.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serin_providers::webhook::{WebhookCall, WebhookError, WebhookPayload, call};

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn hook(url: String, retries: u32) -> WebhookCall {
    WebhookCall {
        url,
        timeout: Duration::from_secs(2),
        retries,
        disable_tls: false,
    }
}

#[tokio::test]
async fn status_202_passes_and_203_fails_with_body() {
    let base = serve(
        axum::Router::new()
            .route("/ok", post(|| async { (StatusCode::ACCEPTED, "queued") }))
            .route(
                "/no",
                post(|| async { (StatusCode::NON_AUTHORITATIVE_INFORMATION, "nope") }),
            )
            .route(
                "/gate",
                post(|| async { (StatusCode::FORBIDDEN, "Forbidden") }),
            ),
    )
    .await;
    let p = WebhookPayload {
        name: "web".into(),
        namespace: "prod".into(),
        ..Default::default()
    };
    assert_eq!(
        call(&hook(format!("{base}/ok"), 0), &p).await.unwrap(),
        "queued"
    );
    let err = call(&hook(format!("{base}/no"), 0), &p).await.unwrap_err();
    assert!(
        matches!(err, WebhookError::Status { status: 203, .. }),
        "{err}"
    );
    let err = call(&hook(format!("{base}/gate"), 3), &p)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("403: Forbidden"), "{err}");
}

#[tokio::test]
async fn retries_5xx_then_succeeds_and_sends_payload() {
    let hits = Arc::new(AtomicUsize::new(0));
    let base =
        serve(
            axum::Router::new()
                .route(
                    "/flaky",
                    post(
                        |State(hits): State<Arc<AtomicUsize>>,
                         Json(body): Json<serde_json::Value>| async move {
                            assert_eq!(body["name"], "web");
                            assert_eq!(body["failedChecks"], 2);
                            if hits.fetch_add(1, Ordering::SeqCst) < 2 {
                                (StatusCode::SERVICE_UNAVAILABLE, "later")
                            } else {
                                (StatusCode::OK, "fine")
                            }
                        },
                    ),
                )
                .with_state(hits.clone()),
        )
        .await;
    let p = WebhookPayload {
        name: "web".into(),
        failed_checks: Some(2),
        ..Default::default()
    };
    assert_eq!(
        call(&hook(format!("{base}/flaky"), 2), &p).await.unwrap(),
        "fine"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn unreachable_and_bad_urls() {
    let p = WebhookPayload::default();
    let err = call(&hook("http://127.0.0.1:1/".into(), 0), &p)
        .await
        .unwrap_err();
    assert!(matches!(err, WebhookError::Unreachable { .. }), "{err}");
    let err = call(&hook("ftp://x/".into(), 0), &p).await.unwrap_err();
    assert!(matches!(err, WebhookError::BadUrl(_)));
}
