//! CPU cost of one `/mutate` review without the network: the router called in-process, and the
//! decision alone (parse + hold), on a Deployment UPDATE review of the size kube-apiserver sends.
//! `cargo run --release -p serin-webhook --example mutate_cost [REVIEW.json [N]]` (default: a
//! built-in review; bench/webhook.sh writes the one it sends with `--review-out FILE`).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use serde_json::json;
use serin_webhook::review::MutateReview;
use serin_webhook::{AppState, MemoryCanaryIndex};
use tower::ServiceExt as _;

// The allocator the `serin` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn review() -> Vec<u8> {
    let deployment = |image: &str| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "prod", "resourceVersion": "184467", "generation": 7,
                "labels": {"app": "web", "serin.dev/canary": "web"},
                "annotations": {"serin.dev/stable-hash": "0123456789abcdef", "deployment.kubernetes.io/revision": "6"},
                "managedFields": [{"manager": "kubectl", "operation": "Update", "fieldsType": "FieldsV1",
                                   "fieldsV1": {"f:spec": {"f:replicas": {}}}}]},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "template": {"metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": image,
                        "ports": [{"name": "http", "containerPort": 9898, "protocol": "TCP"}],
                        "env": [{"name": "LOG_LEVEL", "value": "info"}],
                        "readinessProbe": {"httpGet": {"path": "/readyz", "port": 9898}, "periodSeconds": 5},
                        "resources": {"limits": {"cpu": "1", "memory": "256Mi"}, "requests": {"cpu": "100m"}}}],
                        "restartPolicy": "Always", "terminationGracePeriodSeconds": 30}}},
            "status": {"replicas": 3, "readyReplicas": 3}})
    };
    serde_json::to_vec(
        &json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "3f1c2b7e", "operation": "UPDATE", "namespace": "prod", "name": "web",
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "object": deployment("web:1.4.3"), "oldObject": deployment("web:1.4.2")}}),
    )
    .unwrap()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let body = match args.next() {
        Some(path) => std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}")),
        None => review(),
    };
    let n: u32 = args
        .next()
        .map_or(20_000, |n| n.parse().expect("N: a count of reviews"));
    let start = Instant::now();
    for _ in 0..n {
        let review = MutateReview::parse(&body).unwrap();
        let object = review.request.object.as_ref().unwrap();
        let verdict = serin_webhook::hold::hold(object, "prod", "web");
        assert_eq!(verdict.patch.len(), 1);
        std::hint::black_box(serin_webhook::review::response_body(
            &review.api_version,
            &review.request.uid,
            &verdict,
        ));
    }
    let decide = start.elapsed().as_secs_f64() * 1e6 / f64::from(n);

    // Where the decision's time goes: reading the JSON at all, reading the review, hashing.
    let per_review = |f: &dyn Fn()| {
        let start = Instant::now();
        for _ in 0..n {
            f();
        }
        start.elapsed().as_secs_f64() * 1e6 / f64::from(n)
    };
    let scan = per_review(&|| {
        let text = std::str::from_utf8(&body).unwrap();
        std::hint::black_box(serde_json::from_str::<serde::de::IgnoredAny>(text).unwrap());
    });
    let read = per_review(&|| {
        std::hint::black_box(MutateReview::parse(&body).unwrap());
    });
    let review = MutateReview::parse(&body).unwrap();
    let object = review.request.object.as_ref().unwrap();
    let hash = per_review(&|| {
        std::hint::black_box(object.revision());
    });

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let app = serin_webhook::router(AppState::new(Arc::new(MemoryCanaryIndex::new())));
    let start = Instant::now();
    runtime.block_on(async {
        for _ in 0..n {
            let request = http::Request::post("/mutate")
                .header("content-type", "application/json")
                .body(Body::from(body.clone()))
                .unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), 200);
            let _ = http_body_util::BodyExt::collect(response.into_body()).await;
        }
    });
    let routed = start.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    println!("review: {} bytes, {n} reviews", body.len());
    println!("parse + hold + response: {decide:8.1} us/review");
    println!("through the router:      {routed:8.1} us/review");
    println!("  of which: JSON scan {scan:.1}, review read {read:.1}, template hash {hash:.1} us");
}
