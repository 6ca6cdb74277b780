//! Rules for the workload kinds serin holds besides Deployments: a DaemonSet target (held with
//! `updateStrategy: OnDelete`) and a StatefulSet target (held with a partition). Every strategy
//! (canary weights, A/B, blue/green, mirroring) works with both; what does not fit is refused
//! with the fix, and mirroring to a StatefulSet is warned about.

use super::Diagnostic;
use crate::Canary;

/// The API version that serves DaemonSets and StatefulSets.
const APPS_V1: &str = "apps/v1";

/// The rule, appended to the Canary rules.
pub fn rule(canary: &Canary, out: &mut Vec<Diagnostic>) {
    let t = &canary.spec.target_ref;
    let kind = match t.kind.as_deref() {
        Some(k @ ("DaemonSet" | "StatefulSet")) => k,
        _ => return,
    };
    if let Some(v) = t.api_version.as_deref()
        && !v.is_empty()
        && v != APPS_V1
    {
        out.push(Diagnostic::error(
            "spec.targetRef.apiVersion",
            format!("{v:?} does not serve {kind}: use {APPS_V1}"),
        ));
    }
    if kind == "DaemonSet" && canary.spec.autoscaler_ref.is_some() {
        out.push(Diagnostic::error(
            "spec.autoscalerRef",
            "a DaemonSet runs one pod per node and has no replicas to scale: remove autoscalerRef",
        ));
    }
    let mirrored = [&canary.spec.analysis, &canary.spec.canary_analysis]
        .into_iter()
        .flatten()
        .any(|a| a.mirror == Some(true));
    if kind == "StatefulSet" && mirrored {
        out.push(Diagnostic::warning(
            "spec.analysis.mirror",
            "mirrored requests reach the canary StatefulSet as well as the stable one, so writes \
             are applied twice (the canary's to its own volumes): mirror only idempotent traffic",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::validate_document;
    use serde_json::json;

    fn problems(target: serde_json::Value, extra: serde_json::Value) -> Vec<(String, bool)> {
        let mut spec = json!({"targetRef": target, "service": {"port": 80},
            "analysis": {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10}});
        if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                s.insert(k.clone(), v.clone());
            }
        }
        validate_document(
            &json!({"apiVersion": "flagger.app/v1beta1", "kind": "Canary",
            "metadata": {"name": "web", "namespace": "prod"}, "spec": spec}),
        )
        .into_iter()
        .map(|d| (format!("{}: {}", d.path, d.message), d.is_error()))
        .collect()
    }

    #[test]
    fn daemonset_and_statefulset_targets_are_accepted() {
        for kind in ["DaemonSet", "StatefulSet"] {
            let found = problems(
                json!({"apiVersion": "apps/v1", "kind": kind, "name": "web"}),
                json!({}),
            );
            assert!(!found.iter().any(|(_, e)| *e), "{kind}: {found:?}");
        }
        // A/B and blue/green too.
        let found = problems(
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web"}),
            json!({"analysis": {"interval": "1m", "threshold": 5, "iterations": 5,
                                "match": [{"headers": {"x-canary": {"exact": "1"}}}]}}),
        );
        assert!(!found.iter().any(|(_, e)| *e), "{found:?}");
    }

    #[test]
    fn misfits_get_a_clear_error() {
        let found = problems(
            json!({"apiVersion": "extensions/v1beta1", "kind": "DaemonSet", "name": "web"}),
            json!({"autoscalerRef": {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": "web"}}),
        );
        assert!(
            found.contains(&(
                "spec.targetRef.apiVersion: \"extensions/v1beta1\" does not serve DaemonSet: use apps/v1".into(),
                true
            )),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|(m, e)| *e && m.starts_with("spec.autoscalerRef: a DaemonSet")),
            "{found:?}"
        );
        let found = problems(json!({"kind": "ReplicaSet", "name": "web"}), json!({}));
        assert!(
            found.iter().any(|(m, e)| *e
                && m.contains("StatefulSet")
                && m.starts_with("spec.targetRef.kind")),
            "{found:?}"
        );
    }

    #[test]
    fn mirroring_a_statefulset_is_warned_about() {
        let found = problems(
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web"}),
            json!({"analysis": {"interval": "1m", "threshold": 5, "iterations": 5, "mirror": true}}),
        );
        assert!(
            found
                .iter()
                .any(|(m, e)| !*e && m.starts_with("spec.analysis.mirror: mirrored requests")),
            "{found:?}"
        );
    }
}
