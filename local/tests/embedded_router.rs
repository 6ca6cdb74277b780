//! The embedded router over real HTTP: weights, A/B matches, mirroring, unreachable backends,
//! and the builtin metrics it measures.

use std::time::Duration;

use serin_api::canary::HttpMatchRequest;
use serin_local::demo_app::{self, DemoAppConfig};
use serin_local::router::{Backend, EmbeddedRouter, MatchRules, Routes};

async fn app(version: &str, error_rate: f64) -> String {
    let (addr, serving) = demo_app::bind(
        "127.0.0.1:0".parse().unwrap(),
        DemoAppConfig {
            version: version.into(),
            error_rate,
            latency: Duration::ZERO,
        },
    )
    .await
    .unwrap();
    tokio::spawn(serving);
    format!("http://{addr}")
}

async fn version(client: &reqwest::Client, url: &str, headers: &[(&str, &str)]) -> String {
    let mut req = client.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let body: serde_json::Value = req.send().await.unwrap().json().await.unwrap();
    body["version"].as_str().unwrap().to_owned()
}

async fn router(primary: &str, canary: &str) -> (EmbeddedRouter, String) {
    let r = EmbeddedRouter::start("127.0.0.1:0".parse().unwrap(), primary, canary)
        .await
        .unwrap();
    let url = format!("http://{}/", r.addr());
    (r, url)
}

#[tokio::test]
async fn weights_apply_from_the_next_request() {
    let (v1, v2) = (app("v1", 0.0).await, app("v2", 0.0).await);
    let (r, url) = router(&v1, &v2).await;
    let client = reqwest::Client::new();
    for weight in [0u32, 10, 35, 100, 0] {
        r.set_routes(Routes::canary_at(weight));
        let mut at_canary = 0;
        for _ in 0..100 {
            at_canary += u32::from(version(&client, &url, &[]).await == "v2");
        }
        assert_eq!(at_canary, weight, "weight {weight}");
    }
    assert_eq!(r.totals(Backend::Canary).requests, 145);
}

#[tokio::test]
async fn ab_matches_go_to_the_canary_and_nothing_else_does() {
    let (v1, v2) = (app("v1", 0.0).await, app("v2", 0.0).await);
    let (r, url) = router(&v1, &v2).await;
    let entries: Vec<HttpMatchRequest> = serde_json::from_value(serde_json::json!([
        {"headers": {"x-canary": {"exact": "insider"}}},
        {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}}
    ]))
    .unwrap();
    r.set_matches(Some(
        MatchRules::compile(&entries, "spec.analysis.match").unwrap(),
    ));
    let client = reqwest::Client::new();
    // Before the canary gets its weight, even matching requests stay on the primary.
    assert_eq!(
        version(&client, &url, &[("x-canary", "insider")]).await,
        "v1"
    );
    r.set_routes(Routes::canary_at(100));
    for _ in 0..20 {
        assert_eq!(
            version(&client, &url, &[("x-canary", "insider")]).await,
            "v2"
        );
        assert_eq!(
            version(&client, &url, &[("cookie", "a=b;canary=always")]).await,
            "v2"
        );
        assert_eq!(version(&client, &url, &[]).await, "v1");
        assert_eq!(version(&client, &url, &[("x-canary", "other")]).await, "v1");
    }
}

#[tokio::test]
async fn mirroring_copies_primary_requests_to_the_canary() {
    let (v1, v2) = (app("v1", 0.0).await, app("v2", 0.0).await);
    let (r, url) = router(&v1, &v2).await;
    r.set_routes(Routes {
        primary: 100,
        canary: 0,
        mirror: true,
    });
    let client = reqwest::Client::new();
    for _ in 0..30 {
        assert_eq!(version(&client, &url, &[]).await, "v1");
    }
    // The copies are fire-and-forget: wait for them with a deadline.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while r.totals(Backend::Canary).mirrored < 30 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            r.totals(Backend::Canary)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(r.totals(Backend::Canary).requests, 30);
}

#[tokio::test]
async fn builtin_metrics_measure_the_canary_only() {
    let (v1, v2) = (app("v1", 0.0).await, app("v2", 0.25).await);
    let (r, url) = router(&v1, &v2).await;
    r.set_routes(Routes::canary_at(50));
    let client = reqwest::Client::new();
    for _ in 0..200 {
        let _ = client.get(&url).send().await.unwrap().bytes().await;
    }
    let w = r.window(Backend::Canary, Duration::from_secs(60));
    assert_eq!(w.requests, 100);
    assert_eq!(w.success_rate(), Some(75.0));
    assert!(w.p99_ms().unwrap() > 0.0);
    assert_eq!(
        r.window(Backend::Primary, Duration::from_secs(60))
            .success_rate(),
        Some(100.0)
    );
}

#[tokio::test]
async fn an_unreachable_canary_counts_as_errors_with_a_502() {
    let v1 = app("v1", 0.0).await;
    let dead = format!(
        "http://127.0.0.1:{}",
        serin_local::process::free_port().unwrap()
    );
    let (r, url) = router(&v1, &dead).await;
    r.set_routes(Routes::canary_at(100));
    let client = reqwest::Client::new();
    let resp = client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 502);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("canary backend unreachable")
    );
    assert_eq!(r.totals(Backend::Canary).errors, 1);
    assert_eq!(
        r.window(Backend::Canary, Duration::from_secs(60))
            .success_rate(),
        Some(0.0)
    );
}

#[tokio::test]
async fn a_bad_backend_url_is_refused_with_its_role() {
    let err = EmbeddedRouter::start(
        "127.0.0.1:0".parse().unwrap(),
        "ftp://x",
        "http://127.0.0.1:1",
    )
    .await
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("primary") && err.contains("http://host:port"),
        "{err}"
    );
}
