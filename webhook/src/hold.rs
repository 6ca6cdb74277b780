//! The hold invariant of DESIGN.md ("hold, don't clone") at admission: a workload labelled
//! `serin.dev/canary` is held exactly when it carries `serin.dev/stable-hash` and its pod
//! template hashes to something else: a Deployment is paused, a DaemonSet gets
//! `updateStrategy: OnDelete`, a StatefulSet a partition above every ordinal (the decision, shared
//! with the controller's fallback hold, is `serin_api::hold`). Pure: one workload in, the patch
//! and warning out.

use serde_json::Value;
use serin_api::hold::{Kind, decide};

use crate::review::{Verdict, patch_op};

/// Decides the response for a workload of `kind` being created or updated. `namespace` and
/// `name` come from the request when the object lacks them (e.g. `generateName` on CREATE).
pub fn hold(kind: Kind, workload: &Value, namespace: &str, name: &str) -> Verdict {
    let decision = decide(kind, workload, namespace, name);
    let patch: Result<Vec<_>, String> = decision.ops.into_iter().map(patch_op).collect();
    let mut verdict = match patch {
        Ok(patch) => Verdict {
            patch,
            ..Verdict::allow()
        },
        // The decision's paths are constants; this would be a bug of serin's, not the user's.
        Err(err) => return Verdict::deny(format!("serin: internal error: bad patch path {err}")),
    };
    verdict.warnings.extend(decision.warning);
    verdict
}

/// [`hold`] of a workload whose `kind` says how it is held (a Deployment when it has none).
#[cfg(test)]
pub(crate) fn hold_value(workload: &Value, namespace: &str, name: &str) -> Verdict {
    let kind = workload
        .get("kind")
        .and_then(Value::as_str)
        .and_then(Kind::from_name)
        .unwrap_or(Kind::Deployment);
    hold(kind, workload, namespace, name)
}

#[cfg(test)]
mod strategy_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use serin_api::hash::template_hash;
    use serin_api::labels::{CANARY_LABEL, STABLE_HASH_ANNOTATION};

    fn template(image: &str) -> Value {
        json!({"metadata": {"labels": {"app": "web"}},
               "spec": {"containers": [{"name": "web", "image": image}]}})
    }

    fn deployment(image: &str, stable_image: Option<&str>, paused: Option<bool>) -> Value {
        let mut d = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "prod", "labels": {CANARY_LABEL: "web"}},
            "spec": {"replicas": 2, "template": template(image)}
        });
        if let Some(stable) = stable_image {
            d["metadata"]["annotations"] =
                json!({STABLE_HASH_ANNOTATION: template_hash(&template(stable))});
        }
        if let Some(p) = paused {
            d["spec"]["paused"] = json!(p);
        }
        d
    }

    fn paused_patch(value: bool) -> Vec<json_patch::PatchOperation> {
        serde_json::from_value(json!([{"op": "add", "path": "/spec/paused", "value": value}]))
            .unwrap()
    }

    #[test]
    fn new_image_is_held_with_a_warning() {
        let v = hold_value(&deployment("web:2", Some("web:1"), None), "prod", "web");
        assert!(v.allowed);
        assert_eq!(v.patch, paused_patch(true));
        assert_eq!(v.warnings.len(), 1);
        let revision = template_hash(&template("web:2"));
        assert!(
            v.warnings[0].contains(&format!(
                "deployment/web revision {revision} held for canary analysis (canary prod/web)"
            )),
            "{}",
            v.warnings[0]
        );
    }

    #[test]
    fn already_held_needs_no_patch_but_still_warns() {
        let v = hold_value(
            &deployment("web:2", Some("web:1"), Some(true)),
            "prod",
            "web",
        );
        assert!(v.patch.is_empty());
        assert_eq!(v.warnings.len(), 1);
    }

    #[test]
    fn stable_template_runs_and_is_unpaused() {
        let v = hold_value(
            &deployment("web:1", Some("web:1"), Some(true)),
            "prod",
            "web",
        );
        assert_eq!(v.patch, paused_patch(false));
        let v = hold_value(&deployment("web:1", Some("web:1"), None), "prod", "web");
        assert!(v.patch.is_empty() && v.warnings.is_empty());
        let v = hold_value(
            &deployment("web:1", Some("web:1"), Some(false)),
            "prod",
            "web",
        );
        assert!(v.patch.is_empty());
    }

    #[test]
    fn no_stable_hash_means_no_hold() {
        let v = hold_value(&deployment("web:2", None, None), "prod", "web");
        assert!(v.patch.is_empty() && v.warnings.is_empty());
    }

    #[test]
    fn unlabelled_deployment_is_untouched() {
        let mut d = deployment("web:2", Some("web:1"), None);
        d["metadata"]["labels"] = json!({"app": "web"});
        assert_eq!(hold_value(&d, "prod", "web"), Verdict::allow());
    }

    #[test]
    fn non_string_label_or_annotation_does_not_hold() {
        let mut d = deployment("web:2", Some("web:1"), None);
        d["metadata"]["labels"][CANARY_LABEL] = json!(3);
        assert_eq!(hold_value(&d, "prod", "web"), Verdict::allow());
    }
}
