//! A 1 GiB answer from an address a user chose (a MetricTemplate's, a Canary webhook's) is not
//! read into memory: the call fails at the limit with an error that names it, and this process's
//! peak memory stays far below the answer's size.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::routing::{get, post};
use futures::StreamExt;
use serin_providers::body::max_response_bytes;
use serin_providers::prometheus::Prometheus;
use serin_providers::webhook::{WebhookCall, WebhookPayload, call};

const GIB: usize = 1 << 30;

/// 1 GiB in 1 MiB chunks, made as they are sent; with or without a Content-Length.
fn huge(declared: bool) -> axum::response::Response {
    let chunk = Bytes::from(vec![b'7'; 1 << 20]);
    let stream = futures::stream::repeat(chunk)
        .take(GIB >> 20)
        .map(Ok::<_, std::io::Error>);
    let mut resp = axum::response::Response::new(Body::from_stream(stream));
    if declared {
        resp.headers_mut()
            .insert("content-length", GIB.to_string().parse().unwrap());
    }
    resp
}

async fn server() -> String {
    let app = axum::Router::new()
        .route("/api/v1/query", get(|| async { huge(false) }))
        .route("/declared/api/v1/query", get(|| async { huge(true) }))
        .route("/hook", post(|| async { huge(false) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// This process's peak resident memory (VmHWM), in bytes.
fn peak_rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_answer_is_an_error_at_the_limit_not_an_oom() {
    let base = server().await;
    let before = peak_rss();
    for address in [base.clone(), format!("{base}/declared")] {
        let err = Prometheus::new(&address)
            .unwrap()
            .query("up")
            .await
            .unwrap_err();
        assert!(!err.is_no_data(), "{err}");
        assert!(
            err.to_string()
                .contains(&format!("larger than {}", max_response_bytes())),
            "{err}"
        );
    }
    let hook = WebhookCall {
        url: format!("{base}/hook"),
        timeout: Duration::from_secs(30),
        retries: 2,
        disable_tls: false,
    };
    let err = call(&hook, &WebhookPayload::default()).await.unwrap_err();
    assert!(err.to_string().contains("--max-response-bytes"), "{err}");
    let grown = peak_rss().saturating_sub(before);
    assert!(
        grown < 4 * max_response_bytes(),
        "peak memory grew by {grown} bytes reading 1 GiB answers"
    );
}
