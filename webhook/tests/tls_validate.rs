//! The validating webhook over real TLS: every invalid fixture of the validation work is denied
//! (or warned about) with its field path, a second Canary on one workload is denied, malformed
//! input gets HTTP 400/413 with a JSON error.

mod common;

use std::sync::Arc;

use common::{review, warnings};
use serde_json::{Value, json};
use serin_webhook::MemoryCanaryIndex;

fn fixtures_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/invalid")
}

/// The `# expect: <severity> <path>` lines of a fixture.
fn expectations(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# expect:"))
        .filter_map(|rest| {
            let mut words = rest.split_whitespace();
            Some((words.next()?.to_string(), words.next()?.to_string()))
        })
        .collect()
}

fn admission_review(doc: &Value) -> Value {
    let kind = doc["kind"].as_str().unwrap_or("Canary").to_string();
    review("flagger.app", &kind, "CREATE", Some(doc.clone()), None)
}

#[tokio::test]
async fn every_invalid_fixture_is_denied_or_warned_with_its_path() {
    let server = common::start(Arc::new(MemoryCanaryIndex::new())).await;
    let mut files: Vec<_> = std::fs::read_dir(fixtures_dir())
        .expect("tests/fixtures/invalid exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "only {} fixtures", files.len());
    let mut denied = 0;
    let mut skipped = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let docs = serin_api::validate::parse_stream(&text).unwrap();
        let expected = expectations(&text);
        assert!(!expected.is_empty(), "{}: no expectations", file.display());
        // Several documents: the first is the one the expectations are about.
        let doc = &docs[0];
        let own: Vec<_> = serin_api::validate::validate_document(doc);
        let response = server.review("/validate", &admission_review(doc)).await;
        let message = response["status"]["message"].as_str().unwrap_or("");
        let warned = warnings(&response).join("\n");
        for (severity, path) in &expected {
            // Cross-document findings (a templateRef to a MetricTemplate that is not in the set)
            // are not one document's business; the webhook sees one object.
            if !own.iter().any(|d| &d.path == path) {
                assert_eq!(severity, "warning", "{}: {path}", file.display());
                skipped += 1;
                continue;
            }
            match severity.as_str() {
                "error" => {
                    assert_eq!(response["allowed"], false, "{}", file.display());
                    assert_eq!(response["status"]["code"], 422);
                    assert!(
                        message.contains(&format!("{path}: ")),
                        "{}: {path} not in {message:?}",
                        file.display()
                    );
                }
                _ => assert!(
                    warned.contains(&format!("{path}: ")),
                    "{}: {path} not in {warned:?}",
                    file.display()
                ),
            }
        }
        if expected.iter().any(|(s, _)| s == "error") {
            assert_eq!(response["allowed"], false, "{}", file.display());
            denied += 1;
        }
    }
    assert!(denied >= 10, "only {denied} fixtures denied");
    assert!(
        skipped <= 2,
        "{skipped} expectations are not single-document findings"
    );
}

fn canary(name: &str, target: &str) -> Value {
    json!({
        "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
        "metadata": {"name": name, "namespace": "prod"},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "service": {"port": 80},
            "analysis": {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10,
                         "metrics": [{"name": "request-success-rate", "interval": "1m",
                                      "thresholdRange": {"min": 99}}]}
        }
    })
}

#[tokio::test]
async fn invalid_canaries_are_denied_with_every_field_path() {
    let server = common::start(Arc::new(MemoryCanaryIndex::new())).await;

    let valid = canary("web", "web");
    let response = server.review("/validate", &admission_review(&valid)).await;
    assert_eq!(response["allowed"], true, "{response}");

    // Two problems at once: both paths are in the one message.
    let mut two = canary("web", "web");
    two["spec"]["analysis"]["maxWeight"] = json!(150);
    two["spec"]["service"]["port"] = json!(0);
    let response = server.review("/validate", &admission_review(&two)).await;
    assert_eq!(response["allowed"], false);
    let message = response["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("serin: Canary prod/web is invalid: "),
        "{message}"
    );
    assert!(message.contains("spec.analysis.maxWeight: "), "{message}");
    assert!(message.contains("spec.service.port: "), "{message}");

    // An unknown field (a typo) and a wrong type.
    let mut typo = canary("web", "web");
    typo["spec"]["analysis"]["stepweight"] = json!(5);
    typo["spec"]["analysis"]["interval"] = json!(true);
    let response = server.review("/validate", &admission_review(&typo)).await;
    assert_eq!(response["allowed"], false);
    let message = response["status"]["message"].as_str().unwrap();
    assert!(message.contains("spec.analysis.stepweight"), "{message}");
    assert!(message.contains("spec.analysis.interval"), "{message}");

    // A MetricTemplate without a query; an AlertProvider of an unknown type.
    let template = json!({"apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
        "metadata": {"name": "errors", "namespace": "prod"},
        "spec": {"provider": {"type": "prometheus", "address": "http://prometheus:9090"}}});
    let response = server
        .review("/validate", &admission_review(&template))
        .await;
    assert_eq!(response["allowed"], false);
    assert!(
        response["status"]["message"]
            .as_str()
            .unwrap()
            .contains("spec.query")
    );
    let provider = json!({"apiVersion": "flagger.app/v1beta1", "kind": "AlertProvider",
        "metadata": {"name": "on-call", "namespace": "prod"},
        "spec": {"type": "carrier-pigeon", "address": "https://example.com/hook"}});
    let response = server
        .review("/validate", &admission_review(&provider))
        .await;
    assert_eq!(response["allowed"], false);
    assert!(
        response["status"]["message"]
            .as_str()
            .unwrap()
            .contains("spec.type")
    );

    // DELETE of an invalid object is allowed.
    let delete = review("flagger.app", "Canary", "DELETE", None, Some(two));
    assert_eq!(server.review("/validate", &delete).await["allowed"], true);
}

#[tokio::test]
async fn a_second_canary_on_one_workload_is_denied() {
    let index = Arc::new(MemoryCanaryIndex::new());
    index.insert("prod", "web", "Deployment", "web");
    let server = common::start(index.clone()).await;

    let response = server
        .review("/validate", &admission_review(&canary("web-2", "web")))
        .await;
    assert_eq!(response["allowed"], false);
    let message = response["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("spec.targetRef: deployment/web is already the target of canary prod/web"),
        "{message}"
    );
    // The holder itself may be updated; after it is gone the target is free.
    let update = review(
        "flagger.app",
        "Canary",
        "UPDATE",
        Some(canary("web", "web")),
        Some(canary("web", "old")),
    );
    assert_eq!(server.review("/validate", &update).await["allowed"], true);
    index.remove("prod", "web");
    let response = server
        .review("/validate", &admission_review(&canary("web-2", "web")))
        .await;
    assert_eq!(response["allowed"], true);
}

#[tokio::test]
async fn malformed_input_gets_400_or_413_with_a_json_error() {
    let server = common::start(Arc::new(MemoryCanaryIndex::new())).await;
    let good = serde_json::to_vec(&admission_review(&canary("web", "web"))).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("not JSON", b"apiVersion: admission.k8s.io/v1".to_vec()),
        ("array", b"[]".to_vec()),
        ("wrong apiVersion", br#"{"apiVersion":"v1","kind":"AdmissionReview","request":{"uid":"u","operation":"CREATE"}}"#.to_vec()),
        ("wrong kind", br#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod","request":{"uid":"u","operation":"CREATE"}}"#.to_vec()),
        ("no request", br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec()),
        ("no uid", br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"CREATE"}}"#.to_vec()),
        ("operation not a string", br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":7}}"#.to_vec()),
    ];
    for path in ["/mutate", "/validate"] {
        for (name, body) in &cases {
            let (status, value) = server.post(path, body.clone()).await;
            assert_eq!(status, 400, "{path} {name}: {value}");
            assert_eq!(value["code"], 400);
            assert!(!value["error"].as_str().unwrap().is_empty(), "{name}");
        }
    }
    let big = vec![b' '; serin_webhook::MAX_BODY_BYTES + 1];
    let (status, value) = server.post("/mutate", big).await;
    assert_eq!(status, 413);
    assert!(
        value["error"].as_str().unwrap().contains("3 MiB"),
        "{value}"
    );

    // The server still answers after all that, and counted the rejections.
    let response = server
        .review("/validate", &admission_review(&canary("web", "web")))
        .await;
    assert_eq!(response["allowed"], true);
    let metrics = server
        .client
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"serin_webhook_reviews_total{webhook="/mutate",kind="unknown",operation="unknown",verdict="rejected"} 10"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"serin_webhook_reviews_total{webhook="/validate",kind="Canary",operation="CREATE",verdict="allowed"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains("serin_webhook_review_duration_seconds_count"));
}
