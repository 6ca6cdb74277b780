//! `noDataPolicy` / `errorPolicy` are validated with field paths.

use serin_api::validate::{Severity, validate_document};

fn diagnostics(policy: &str) -> Vec<(String, Severity, String)> {
    let yaml = format!(
        r#"
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {{name: web, namespace: prod}}
spec:
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: web}}
  service: {{port: 80}}
  analysis:
    interval: 1m
    threshold: 3
    maxWeight: 50
    stepWeight: 10
    {policy}
"#
    );
    let doc: serde_json::Value = serde_saphyr::from_str(&yaml).unwrap();
    validate_document(&doc)
        .into_iter()
        .filter(|d| d.path.contains("Policy"))
        .map(|d| (d.path, d.severity, d.message))
        .collect()
}

#[test]
fn a_halt_policy_with_a_limit_is_clean() {
    assert!(diagnostics("noDataPolicy: {action: halt, limit: 10}").is_empty());
}

#[test]
fn a_negative_limit_is_an_error_naming_the_field() {
    let d = diagnostics("errorPolicy: {action: halt, limit: -1}");
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].0, "spec.analysis.errorPolicy.limit");
    assert_eq!(d[0].1, Severity::Error);
}

#[test]
fn halt_without_limit_warns() {
    let d = diagnostics("noDataPolicy: {action: halt}");
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].1, Severity::Warning);
}

#[test]
fn an_unknown_action_is_rejected() {
    let d = diagnostics("noDataPolicy: {action: ignore}");
    assert!(!d.is_empty() && d[0].1 == Severity::Error, "{d:?}");
}
