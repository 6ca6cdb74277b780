//! The validating webhook: CREATE and UPDATE of Canary, MetricTemplate and AlertProvider run the
//! `api` validation; errors deny with their field paths (the first 20, then how many more),
//! warnings become admission warnings; a Canary whose target another Canary already holds is
//! denied.

use serin_api::validate::{Severity, validate_document};

use crate::index::{CanaryIndex, target_of};
use crate::review::{Review, Verdict, bounded};

/// The API group whose kinds are validated.
pub const GROUP: &str = "flagger.app";
/// The kinds validated at admission.
pub const KINDS: [&str; 3] = ["Canary", "MetricTemplate", "AlertProvider"];

/// Decides the response for a review sent to `/validate`.
pub fn validate(review: &Review, index: &dyn CanaryIndex) -> Verdict {
    let kind = review.request.kind.kind.as_str();
    let relevant =
        review.request.kind.group == GROUP && KINDS.contains(&kind) && review.writes_object();
    if !relevant {
        return Verdict::allow();
    }
    let Some(object) = review.object.as_ref() else {
        return Verdict::deny(format!(
            "serin: the {} review has no request.object to validate",
            review.operation()
        ));
    };
    // An object on its way out only loses finalizers; refusing that would make it undeletable.
    if object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
    {
        return Verdict::allow();
    }
    let namespace = review.namespace();
    let name = review.name();

    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for d in validate_document(object) {
        let line = format!("{}: {}", d.path, d.message);
        match d.severity {
            Severity::Error => errors.push(line),
            Severity::Warning => warnings.push(line),
        }
    }
    if kind == "Canary"
        && let Some((target_kind, target_name)) = target_of(object)
    {
        let others: Vec<String> = index
            .targeting(namespace, target_kind, target_name)
            .into_iter()
            .filter(|other| other != name)
            .collect();
        if !others.is_empty() {
            errors.push(format!(
                "spec.targetRef: {}/{target_name} is already the target of canary {}; one workload can have one Canary: point spec.targetRef at another workload or delete the other Canary",
                target_kind.to_lowercase(),
                others
                    .iter()
                    .map(|o| format!("{namespace}/{o}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }

    // An update that leaves the spec as it was (labels, finalizers, the controller's annotations)
    // must not be blocked by problems the object already had before the webhook existed.
    let spec_unchanged = review.operation() == "UPDATE"
        && review
            .old_object
            .as_ref()
            .is_some_and(|old| old.get("spec") == object.get("spec"));
    if spec_unchanged && !errors.is_empty() {
        warnings.extend(
            errors
                .drain(..)
                .map(|e| format!("{e} (existing problem; fix it with the next spec change)")),
        );
    }

    let mut verdict = if errors.is_empty() {
        Verdict::allow()
    } else {
        Verdict::deny(format!(
            "serin: {kind} {namespace}/{name} is invalid: {}",
            bounded(errors, "errors").join("; ")
        ))
    };
    verdict.warnings = warnings
        .into_iter()
        .map(|w| format!("serin: {kind} {namespace}/{name}: {w}"))
        .collect();
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::MemoryCanaryIndex;
    use serde_json::{Value, json};

    fn request(operation: &str, object: Value, old: Option<Value>) -> Review {
        let review = json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u", "operation": operation, "namespace": "prod",
                        "kind": {"group": "flagger.app", "version": "v1beta1", "kind": "Canary"},
                        "object": object, "oldObject": old}
        });
        Review::parse(&serde_json::to_vec(&review).unwrap()).unwrap()
    }

    fn canary(name: &str, target: &str) -> Value {
        json!({"apiVersion": "flagger.app/v1beta1", "kind": "Canary",
               "metadata": {"name": name, "namespace": "prod"},
               "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                        "service": {"port": 80},
                        "analysis": {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10}}})
    }

    #[test]
    fn second_canary_on_one_target_is_denied() {
        let index = MemoryCanaryIndex::new();
        index.insert("prod", "web", "Deployment", "web");
        let v = validate(&request("CREATE", canary("web-b", "web"), None), &index);
        assert!(!v.allowed);
        let message = v.message.unwrap();
        assert!(message.contains("spec.targetRef"), "{message}");
        assert!(message.contains("canary prod/web"), "{message}");
        // The Canary that holds the target may be updated.
        let v = validate(&request("UPDATE", canary("web", "web"), None), &index);
        assert!(v.allowed, "{:?}", v.message);
        // Another target, another namespace: fine.
        assert!(validate(&request("CREATE", canary("api", "api"), None), &index).allowed);
    }

    #[test]
    fn delete_and_other_kinds_are_allowed() {
        let index = MemoryCanaryIndex::new();
        index.insert("prod", "web", "Deployment", "web");
        assert!(validate(&request("DELETE", canary("web-b", "web"), None), &index).allowed);
        let mut r = request("CREATE", canary("web-b", "web"), None);
        r.request.kind.kind = "Deployment".into();
        r.request.kind.group = "apps".into();
        assert!(validate(&r, &index).allowed);
    }

    #[test]
    fn unchanged_spec_turns_errors_into_warnings() {
        let index = MemoryCanaryIndex::new();
        index.insert("prod", "web", "Deployment", "web");
        let c = canary("web-b", "web");
        let v = validate(&request("UPDATE", c.clone(), Some(c)), &index);
        assert!(v.allowed);
        assert!(v.warnings.iter().any(|w| w.contains("spec.targetRef")));
    }

    #[test]
    fn terminating_object_is_allowed() {
        let index = MemoryCanaryIndex::new();
        index.insert("prod", "web", "Deployment", "web");
        let mut c = canary("web-b", "web");
        c["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert!(validate(&request("UPDATE", c, None), &index).allowed);
    }
}
