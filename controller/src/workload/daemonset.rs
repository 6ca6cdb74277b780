//! A DaemonSet target and its canary DaemonSet. A DaemonSet has no replica count: its canary is
//! scaled to zero with a node selector that no node matches (as Flagger does) and scaled up by
//! removing it.

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetSpec};
use kube::ResourceExt;
use serin_analysis::Readiness;
use serin_api::Canary;
use serin_api::hold::Kind;
use serin_api::labels::{SCALE_TO_ZERO_NODE_SELECTOR, UPDATE_STRATEGY_ANNOTATION};

use super::{canary_meta, canary_selector, canary_template, needed};

/// Whether serin holds the DaemonSet (`updateStrategy: OnDelete` with the user's saved).
pub fn is_held(d: &DaemonSet) -> bool {
    let strategy = d
        .spec
        .as_ref()
        .and_then(|s| serde_json::to_value(&s.update_strategy).ok());
    d.annotations().contains_key(UPDATE_STRATEGY_ANNOTATION)
        && Kind::DaemonSet.is_hold_strategy(strategy.as_ref())
}

/// Whether the canary DaemonSet runs pods (its template lacks the scale-to-zero node selector).
pub fn is_scaled_up(d: &DaemonSet) -> bool {
    !d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.node_selector.as_ref())
        .is_some_and(|n| n.contains_key(SCALE_TO_ZERO_NODE_SELECTOR))
}

/// The merge patch that scales a canary DaemonSet to zero.
pub fn scale_to_zero_patch() -> serde_json::Value {
    serde_json::json!({"spec": {"template": {"spec": {"nodeSelector": {SCALE_TO_ZERO_NODE_SELECTOR: "true"}}}}})
}

/// Readiness of a DaemonSet. Held, it serves with the pods of its stable template: ready when
/// enough of them are. Otherwise the rollout must be complete: generation observed, the updated
/// pod on every node that should run one, `threshold`% of them available.
pub fn readiness(d: &DaemonSet, threshold_percent: u32) -> Readiness {
    let name = d.name_any();
    let status = d.status.clone().unwrap_or_default();
    let generation = d.metadata.generation.unwrap_or(0);
    let observed = status.observed_generation.unwrap_or(0);
    if observed < generation {
        return Readiness::NotReady {
            reason: format!(
                "daemonset {name}: waiting for the rollout to be observed (generation {generation}, observed {observed})"
            ),
        };
    }
    let desired = status.desired_number_scheduled;
    let wanted = needed(desired, threshold_percent);
    if is_held(d) {
        let ready = status.number_ready;
        return if ready >= wanted {
            Readiness::Ready
        } else {
            Readiness::NotReady {
                reason: format!("daemonset {name}: {ready} of {wanted} pods ready"),
            }
        };
    }
    let updated = status.updated_number_scheduled.unwrap_or(0);
    if updated < desired {
        let on_delete = d
            .spec
            .as_ref()
            .and_then(|s| s.update_strategy.as_ref())
            .and_then(|s| s.type_.as_deref())
            == Some("OnDelete");
        let hint = if on_delete {
            " (updateStrategy OnDelete: delete the old pods to roll out)"
        } else {
            ""
        };
        return Readiness::NotReady {
            reason: format!(
                "daemonset {name}: {updated} of {desired} nodes run the updated pod{hint}"
            ),
        };
    }
    let available = status.number_available.unwrap_or(0);
    if available < wanted {
        return Readiness::NotReady {
            reason: format!("daemonset {name}: {available} of {wanted} updated pods available"),
        };
    }
    Readiness::Ready
}

/// The canary DaemonSet: the target's current (held) template with the selector label's value
/// rewritten, rolled out with the default `RollingUpdate` (the target's strategy is the hold's),
/// running on every node the target runs on.
pub fn canary_daemonset(
    canary: &Canary,
    target: &DaemonSet,
    label: &(String, String),
) -> DaemonSet {
    let spec = target.spec.clone().unwrap_or_default();
    let mut template = canary_template(&spec.template, label);
    if let Some(selector) = template
        .spec
        .as_mut()
        .and_then(|p| p.node_selector.as_mut())
    {
        selector.remove(SCALE_TO_ZERO_NODE_SELECTOR);
    }
    DaemonSet {
        metadata: canary_meta(canary, &target.metadata),
        spec: Some(DaemonSetSpec {
            selector: canary_selector(spec.selector.match_labels.as_ref(), label),
            template,
            update_strategy: None,
            min_ready_seconds: spec.min_ready_seconds,
            revision_history_limit: spec.revision_history_limit,
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ds(v: serde_json::Value) -> DaemonSet {
        serde_json::from_value(v).unwrap()
    }

    fn web(strategy: serde_json::Value, annotations: serde_json::Value) -> DaemonSet {
        ds(json!({
            "metadata": {"name": "web", "namespace": "prod", "generation": 2, "annotations": annotations},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "updateStrategy": strategy,
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": "web:2"}]}}},
            "status": {"observedGeneration": 2, "desiredNumberScheduled": 3, "currentNumberScheduled": 3,
                       "numberMisscheduled": 0, "numberReady": 3, "numberAvailable": 3}
        }))
    }

    #[test]
    fn held_serves_with_stable_pods_released_waits_for_the_rollout() {
        let held = web(
            json!({"type": "OnDelete"}),
            json!({UPDATE_STRATEGY_ANNOTATION: "{\"type\":\"RollingUpdate\"}"}),
        );
        assert_eq!(readiness(&held, 100), Readiness::Ready);
        let rolling = web(json!({"type": "RollingUpdate"}), json!({}));
        assert!(
            matches!(readiness(&rolling, 100), Readiness::NotReady { ref reason } if reason.contains("0 of 3 nodes")),
            "{:?}",
            readiness(&rolling, 100)
        );
        let own = web(json!({"type": "OnDelete"}), json!({}));
        assert!(
            matches!(readiness(&own, 100), Readiness::NotReady { ref reason } if reason.contains("delete the old pods")),
        );
        let mut done = rolling;
        done.status.as_mut().unwrap().updated_number_scheduled = Some(3);
        assert_eq!(readiness(&done, 100), Readiness::Ready);
    }

    #[test]
    fn canary_runs_everywhere_and_scales_by_node_selector() {
        let canary: Canary = serde_json::from_value(json!({
            "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
            "metadata": {"name": "web", "namespace": "prod", "uid": "u1"},
            "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "web"}, "service": {"port": 80}}
        }))
        .unwrap();
        let target = web(json!({"type": "OnDelete"}), json!({}));
        let c = canary_daemonset(&canary, &target, &("app".into(), "web".into()));
        assert_eq!(c.name_any(), "web-canary");
        let spec = c.spec.clone().unwrap();
        assert_eq!(spec.update_strategy, None, "not the target's hold");
        assert_eq!(spec.selector.match_labels.unwrap()["app"], "web-canary");
        assert_eq!(
            spec.template.metadata.unwrap().labels.unwrap()["app"],
            "web-canary"
        );
        assert!(is_scaled_up(&c));
        let mut scaled_down = serde_json::to_value(&c).unwrap();
        json_patch::merge(&mut scaled_down, &scale_to_zero_patch());
        assert!(!is_scaled_up(&ds(scaled_down)));
    }
}
