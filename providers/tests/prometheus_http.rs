//! The client against a real HTTP server that checks what a Prometheus server would see.

use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use serin_providers::prometheus::{Auth, Prometheus};

type Seen = Arc<Mutex<Vec<(String, Option<String>, Option<String>)>>>;

async fn handler(
    State(seen): State<Seen>,
    headers: HeaderMap,
    Query(params): Query<std::collections::HashMap<String, String>>,
) -> String {
    let q = params.get("query").cloned().unwrap_or_default();
    let auth = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_string());
    let org = headers
        .get("x-scope-orgid")
        .map(|v| v.to_str().unwrap().to_string());
    seen.lock().unwrap().push((q.clone(), auth, org));
    let value = if q == "vector(1)" { "1" } else { "42.5" };
    format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1,"{value}"]}}]}}}}"#
    )
}

#[tokio::test]
async fn sends_query_auth_and_headers() {
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route("/api/v1/query", get(handler))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let prom = Prometheus::builder(
        &format!("http://{addr}/"),
        Some(Auth::Bearer("s3cret".into())),
        vec![("X-Scope-OrgID".into(), "tenant-1".into())],
        std::time::Duration::from_secs(2),
        false,
    )
    .unwrap();
    prom.is_online().await.unwrap();
    let v = prom.query("sum(rate(x[1m]))\n  / 2").await.unwrap();
    assert_eq!(v, 42.5);
    let seen = seen.lock().unwrap();
    assert_eq!(seen[1].0, "sum(rate(x[1m])) / 2", "whitespace collapsed");
    assert_eq!(seen[1].1.as_deref(), Some("Bearer s3cret"));
    assert_eq!(seen[1].2.as_deref(), Some("tenant-1"));
}

#[tokio::test]
async fn unreachable_server_is_an_error_not_no_data() {
    let prom = Prometheus::new("http://127.0.0.1:1").unwrap();
    let err = prom.query("up").await.unwrap_err();
    assert!(!err.is_no_data());
    assert!(err.to_string().contains("unreachable"), "{err}");
}

#[test]
fn bad_address_names_the_fix() {
    let err = Prometheus::new("prometheus:9090").unwrap_err().to_string();
    assert!(err.contains("http://"), "{err}");
}
