//! Property test: at least 10,000 mutated AdmissionReviews (byte-level damage and structural
//! JSON changes) sent through the router in-process; none panics, none gets a 5xx, every 200 is
//! a well-formed AdmissionReview response for the request's uid.

use std::sync::Arc;

use axum::body::Body;
use http::Request;
use http_body_util::BodyExt as _;
use proptest::prelude::*;
use serde_json::{Value, json};
use serin_api::labels::{CANARY_LABEL, STABLE_HASH_ANNOTATION};
use serin_webhook::{AppState, MemoryCanaryIndex};
use tower::ServiceExt as _;

const CASES: u32 = 12_000;

fn seeds() -> Vec<(&'static str, Value)> {
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "prod",
                     "labels": {CANARY_LABEL: "web"},
                     "annotations": {STABLE_HASH_ANNOTATION: "0123456789abcdef"}},
        "spec": {"replicas": 2, "paused": false,
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "web:2"}]}}}
    });
    let canary = json!({
        "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
        "metadata": {"name": "web-2", "namespace": "prod"},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "service": {"port": 80},
                 "analysis": {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10,
                              "metrics": [{"name": "request-success-rate", "interval": "1m",
                                           "thresholdRange": {"min": 99}}],
                              "webhooks": [{"name": "load", "url": "http://loadtester/",
                                            "timeout": "5s", "metadata": {"cmd": "hey -z 1m http://web"}}]}}
    });
    let template = json!({
        "apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
        "metadata": {"name": "errors", "namespace": "prod"},
        "spec": {"provider": {"type": "prometheus", "address": "http://prometheus:9090"},
                 "query": "sum(rate(x{namespace='{{ namespace }}'}[{{ interval }}]))"}
    });
    let provider = json!({
        "apiVersion": "flagger.app/v1beta1", "kind": "AlertProvider",
        "metadata": {"name": "on-call", "namespace": "prod"},
        "spec": {"type": "slack", "address": "https://hooks.slack.com/x", "channel": "ops"}
    });
    let review = |group: &str, kind: &str, op: &str, object: &Value| {
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
               "request": {"uid": "fuzz", "kind": {"group": group, "version": "v1", "kind": kind},
                           "operation": op, "namespace": "prod", "name": "web",
                           "object": object, "oldObject": object}})
    };
    vec![
        (
            "/mutate",
            review("apps", "Deployment", "UPDATE", &deployment),
        ),
        (
            "/mutate",
            review("apps", "Deployment", "CREATE", &deployment),
        ),
        (
            "/validate",
            review("flagger.app", "Canary", "CREATE", &canary),
        ),
        (
            "/validate",
            review("flagger.app", "Canary", "UPDATE", &canary),
        ),
        (
            "/validate",
            review("flagger.app", "MetricTemplate", "CREATE", &template),
        ),
        (
            "/validate",
            review("flagger.app", "AlertProvider", "UPDATE", &provider),
        ),
    ]
}

fn pointers(value: &Value, prefix: String, out: &mut Vec<String>) {
    out.push(prefix.clone());
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let k = k.replace('~', "~0").replace('/', "~1");
                pointers(v, format!("{prefix}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                pointers(v, format!("{prefix}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "\\PC{0,12}".prop_map(Value::String),
        Just(json!("-1")),
        Just(json!("1m")),
        Just(json!("")),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the node at the n-th JSON pointer with a value.
    Replace(usize, Value),
    /// Remove the node at the n-th JSON pointer.
    Remove(usize),
    /// Overwrite one byte of the serialised body.
    Byte(usize, u8),
    /// Cut the serialised body at a position.
    Truncate(usize),
    /// Insert bytes at a position.
    Insert(usize, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), arbitrary_json()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        2 => any::<usize>().prop_map(Mutation::Remove),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Byte(i, b)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
    ]
}

fn mutate(seed: &Value, mutations: &[Mutation]) -> Vec<u8> {
    let mut value = seed.clone();
    let mut bytes: Option<Vec<u8>> = None;
    for m in mutations {
        match (m, bytes.as_mut()) {
            (Mutation::Replace(i, v), None) => {
                let mut ps = Vec::new();
                pointers(&value, String::new(), &mut ps);
                let p = &ps[i % ps.len()];
                if p.is_empty() {
                    value = v.clone();
                } else if let Some(slot) = value.pointer_mut(p) {
                    *slot = v.clone();
                }
            }
            (Mutation::Remove(i), None) => {
                let mut ps = Vec::new();
                pointers(&value, String::new(), &mut ps);
                let p = &ps[i % ps.len()];
                if let Some((parent, key)) = p.rsplit_once('/')
                    && let Some(Value::Object(map)) = value.pointer_mut(parent)
                {
                    map.remove(&key.replace("~1", "/").replace("~0", "~"));
                }
            }
            (Mutation::Replace(..) | Mutation::Remove(_), Some(_)) => {}
            (byte_level, _) => {
                let b = bytes.get_or_insert_with(|| serde_json::to_vec(&value).unwrap());
                match byte_level {
                    Mutation::Byte(i, x) if !b.is_empty() => {
                        let n = b.len();
                        b[i % n] = *x;
                    }
                    Mutation::Truncate(i) => b.truncate(i % (b.len() + 1)),
                    Mutation::Insert(i, xs) => {
                        let at = i % (b.len() + 1);
                        b.splice(at..at, xs.iter().copied());
                    }
                    _ => {}
                }
            }
        }
    }
    bytes.unwrap_or_else(|| serde_json::to_vec(&value).unwrap())
}

#[test]
fn mutated_reviews_never_panic_or_5xx() {
    // Timers on: the handlers bound how long a request body may take.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let index = Arc::new(MemoryCanaryIndex::new());
    index.insert("prod", "web", "Deployment", "web");
    let app = serin_webhook::router(AppState::new(index));
    let seeds = seeds();
    let statuses = std::cell::RefCell::new(std::collections::BTreeMap::<u16, u32>::new());

    let config = ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(seed in 0..seeds.len(), mutations in prop::collection::vec(mutation(), 1..4))| {
        let (path, seed) = &seeds[seed];
        let body = mutate(seed, &mutations);
        let request = Request::post(*path)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        let (status, bytes) = runtime.block_on(async {
            let response = app.clone().oneshot(request).await.unwrap();
            let status = response.status().as_u16();
            (status, response.into_body().collect().await.unwrap().to_bytes())
        });
        *statuses.borrow_mut().entry(status).or_default() += 1;
        prop_assert!(status == 200 || status == 400, "HTTP {}: {}", status, String::from_utf8_lossy(&bytes));
        let answer: Value = serde_json::from_slice(&bytes).unwrap();
        if status == 200 {
            prop_assert_eq!(&answer["kind"], "AdmissionReview");
            prop_assert!(answer["response"]["uid"].as_str().is_some_and(|u| !u.is_empty()));
            prop_assert!(answer["response"]["allowed"].is_boolean());
        } else {
            prop_assert!(answer["error"].as_str().is_some());
        }
    });
    let statuses = statuses.into_inner();
    let total: u32 = statuses.values().sum();
    eprintln!("responses by HTTP status: {statuses:?}");
    assert!(total >= 10_000, "{total} cases");
    // Both kinds of answer were exercised: the mutations are not all fatal nor all harmless.
    assert!(
        statuses.get(&200).copied().unwrap_or(0) > 1_000,
        "{statuses:?}"
    );
    assert!(
        statuses.get(&400).copied().unwrap_or(0) > 1_000,
        "{statuses:?}"
    );
}
