//! The schema walk: typos, wrong types, missing fields, and agreement with the Rust types.

use serde_json::{Value, json};
use serin_api::validate::{Severity, validate_document};
use serin_api::{Canary, CanarySpec};

fn canary(analysis: Value) -> Value {
    json!({
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "web", "namespace": "prod"},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "service": {"port": 80},
            "analysis": analysis,
        }
    })
}

fn messages(doc: &Value) -> Vec<String> {
    validate_document(doc)
        .into_iter()
        .map(|d| format!("{}: {}: {}", d.path, d.severity.as_str(), d.message))
        .collect()
}

#[test]
fn typo_gets_the_closest_name() {
    let doc = canary(json!({"interval": "1m", "threshold": 2, "stepweight": 10, "maxWeigth": 50}));
    let found = messages(&doc);
    assert!(
        found.contains(
            &"spec.analysis.stepweight: error: unknown field, did you mean stepWeight?".to_string()
        ),
        "{found:#?}"
    );
    assert!(
        found.contains(
            &"spec.analysis.maxWeigth: error: unknown field, did you mean maxWeight?".to_string()
        ),
        "{found:#?}"
    );
}

#[test]
fn unknown_field_without_a_close_name_lists_the_known_ones() {
    let mut doc = canary(json!({"interval": "1m", "stepWeight": 10}));
    doc["spec"]["targetRef"]["replicas"] = json!(3);
    let found = messages(&doc);
    assert!(
        found.iter().any(|m| m.starts_with("spec.targetRef.replicas: error: unknown field; known fields here: apiVersion, kind, name")),
        "{found:#?}"
    );
}

#[test]
fn wrong_types_name_expected_and_got() {
    let doc = canary(json!({"interval": 60, "stepWeight": "ten", "mirror": "yes", "metrics": {}}));
    let found = messages(&doc);
    for want in [
        "spec.analysis.stepWeight: error: expected integer, got string \"ten\"",
        "spec.analysis.interval: error: expected string, got integer 60",
        "spec.analysis.mirror: error: expected boolean (true or false), got string \"yes\"",
        "spec.analysis.metrics: error: expected array, got object",
    ] {
        assert!(
            found.contains(&want.to_string()),
            "missing {want:?} in {found:#?}"
        );
    }
}

#[test]
fn int32_range_and_int_or_string() {
    let mut doc = canary(json!({"interval": "1m", "stepWeight": 5_000_000_000_i64}));
    doc["spec"]["service"]["targetPort"] = json!(true);
    let found = messages(&doc);
    assert!(
        found
            .iter()
            .any(|m| m.starts_with("spec.analysis.stepWeight: error: 5000000000 is out of range")),
        "{found:#?}"
    );
    assert!(
        found.contains(
            &"spec.service.targetPort: error: expected integer or string, got boolean true"
                .to_string()
        ),
        "{found:#?}"
    );
    doc["spec"]["service"]["targetPort"] = json!("http");
    doc["spec"]["analysis"]["stepWeight"] = json!(10.0);
    let found = messages(&doc);
    assert!(
        !found
            .iter()
            .any(|m| m.contains("targetPort") || m.contains("stepWeight")),
        "{found:#?}"
    );
}

#[test]
fn missing_required_fields_and_envelope() {
    let doc = json!({"kind": "Canary", "spec": {"service": {}}});
    let found = messages(&doc);
    for prefix in [
        "apiVersion: error: missing: write apiVersion: flagger.app/v1beta1",
        "metadata: error: missing",
        "spec.targetRef: error: missing required field",
        "spec.service.port: error: missing required field",
    ] {
        assert!(
            found.iter().any(|m| m.starts_with(prefix)),
            "missing {prefix:?} in {found:#?}"
        );
    }
}

#[test]
fn free_form_fields_accept_anything() {
    let mut doc = canary(json!({"interval": "1m", "stepWeight": 10}));
    doc["spec"]["service"]["trafficPolicy"] =
        json!({"loadBalancer": {"consistentHash": {"httpCookie": {"name": "x", "ttl": "0s"}}}});
    doc["spec"]["service"]["apex"] = json!({"labels": {"app.kubernetes.io/name": "web"}});
    let errors: Vec<_> = validate_document(&doc)
        .into_iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn other_kinds_and_groups_are_skipped() {
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"bogus": 1}});
    assert!(validate_document(&deployment).is_empty());
    let other_canary =
        json!({"apiVersion": "example.com/v1", "kind": "Canary", "spec": {"bogus": 1}});
    assert!(validate_document(&other_canary).is_empty());
}

/// Every field the Rust types serialise is known to the schema walk: a Canary built with all
/// optional structs present yields no unknown-field error. New fields in the types are covered
/// by construction since the schema is generated from them.
#[test]
fn schema_knows_every_serialised_field() {
    let spec: CanarySpec = serde_json::from_value(json!({
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "service": {"port": 80, "retries": {"attempts": 1}, "headers": {"request": {"set": {"a": "b"}}},
                    "gatewayRefs": [{"name": "gw", "namespace": "gw", "sectionName": "http", "port": 80}],
                    "unmanagedMetadata": {"labels": ["x"]}},
        "autoscalerRef": {"name": "web", "primaryScalerQueries": {"a": "q"}},
        "upstreamRef": {"name": "u", "namespace": "gloo"},
        "analysis": {"interval": "1m", "stepWeight": 10, "mirrorWeight": 10,
                     "match": [{"headers": {"x": {"exact": "y"}}, "sourceLabels": {"a": "b"}}],
                     "webhooks": [{"name": "w", "url": "http://w.test/", "disableTLS": true}]}
    }))
    .unwrap();
    let mut canary = Canary::new("web", spec);
    canary.metadata.namespace = Some("prod".into());
    let mut doc = serde_json::to_value(&canary).unwrap();
    doc["apiVersion"] = json!("flagger.app/v1beta1");
    let unknown: Vec<_> = validate_document(&doc)
        .into_iter()
        .filter(|d| d.message.contains("unknown field"))
        .collect();
    assert!(unknown.is_empty(), "{unknown:#?}");
}

/// A typo does not hide the other problems: semantic rules still run (the typo'd field is
/// ignored when reading), and report alongside it.
#[test]
fn typo_does_not_hide_semantic_findings() {
    let doc = canary(
        json!({"interval": "5s", "stepWeight": 10, "maxWeight": 50, "treshold": 2,
        "webhooks": [{"name": "w", "type": "pre-rolout", "url": "http://w.test/"}]}),
    );
    let found = messages(&doc);
    for prefix in [
        "spec.analysis.treshold: error: unknown field, did you mean threshold?",
        "spec.analysis.interval: warning: 5s is below 10s",
        "spec.analysis.webhooks[0].type: error: unknown webhook type \"pre-rolout\": did you mean pre-rollout?",
    ] {
        assert!(
            found.iter().any(|m| m.starts_with(prefix)),
            "missing {prefix:?} in {found:#?}"
        );
    }
}

/// Status is not the user's: what `kubectl get -o yaml` prints validates like the manifest.
#[test]
fn status_is_not_judged() {
    let mut doc = canary(json!({"interval": "1m", "stepWeight": 10}));
    doc["status"] = json!({"phase": "Succeeded", "someFutureField": {"x": 1}, "canaryWeight": "0"});
    let errors: Vec<_> = validate_document(&doc)
        .into_iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}
