//! The target Deployment (stable, `web`) and the canary Deployment (`web-canary`): readiness,
//! the selector label, and building the canary from the held template. DaemonSets and
//! StatefulSets have their own modules; [`crate::target`] puts the three kinds behind one type.

pub mod daemonset;
pub mod statefulset;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};
use serin_analysis::Readiness;
use serin_api::Canary;
use serin_api::labels::{CANARY_LABEL, CANARY_SUFFIX};

/// The label whose value tells stable pods (`web`) from canary pods (`web-canary`): the first of
/// `candidates` in the target's `spec.selector.matchLabels`.
pub fn selector_label(
    match_labels: &BTreeMap<String, String>,
    target_name: &str,
    candidates: &[String],
) -> Result<(String, String), String> {
    candidates
        .iter()
        .find_map(|k| match_labels.get(k).map(|v| (k.clone(), v.clone())))
        .ok_or_else(|| {
            format!(
                "spec.selector.matchLabels has none of the selector labels {candidates:?}: add one (e.g. app: {target_name}) or set --selector-labels"
            )
        })
}

/// The canary's pod template: `template` with the selector label's value `<value>-canary`.
pub fn canary_template(template: &PodTemplateSpec, label: &(String, String)) -> PodTemplateSpec {
    let mut template = template.clone();
    let meta = template.metadata.get_or_insert_with(Default::default);
    meta.labels
        .get_or_insert_with(BTreeMap::new)
        .insert(label.0.clone(), format!("{}{CANARY_SUFFIX}", label.1));
    template
}

/// The canary's selector: the target's match labels with the selector label's value rewritten.
pub fn canary_selector(
    match_labels: Option<&BTreeMap<String, String>>,
    label: &(String, String),
) -> LabelSelector {
    let mut selector = match_labels.cloned().unwrap_or_default();
    selector.insert(label.0.clone(), format!("{}{CANARY_SUFFIX}", label.1));
    LabelSelector {
        match_labels: Some(selector),
        match_expressions: None,
    }
}

/// The canary workload's metadata: `<target>-canary`, labelled with and owned by the Canary.
pub fn canary_meta(canary: &Canary, target: &ObjectMeta) -> ObjectMeta {
    let mut labels = BTreeMap::new();
    labels.insert(CANARY_LABEL.to_string(), canary.name_any());
    ObjectMeta {
        name: Some(format!(
            "{}{CANARY_SUFFIX}",
            target.name.as_deref().unwrap_or_default()
        )),
        namespace: target.namespace.clone(),
        labels: Some(labels),
        owner_references: owner_reference(canary).map(|o| vec![o]),
        ..Default::default()
    }
}

/// Hash of the Deployment's pod template (the hold model's revision).
pub fn template_hash(d: &Deployment) -> String {
    match d.spec.as_ref() {
        Some(spec) => serin_api::hash::template_hash_of(&spec.template).unwrap_or_default(),
        None => String::new(),
    }
}

pub fn is_paused(d: &Deployment) -> bool {
    d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false)
}

/// Readiness of a Deployment, as the engine wants it.
///
/// A paused (held) Deployment keeps serving with the pods of its stable template: it is ready
/// when enough of them are available, whatever its held template says. Otherwise the rollout
/// must be complete: observed generation current, all replicas updated, `threshold`% of them
/// available. A `ProgressDeadlineExceeded` condition is reported as such.
pub fn readiness(d: &Deployment, threshold_percent: u32) -> Readiness {
    let name = d.name_any();
    let spec_replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1).max(0);
    let status = d.status.clone().unwrap_or_default();
    let deadline = status.conditions.iter().flatten().find(|c| {
        c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });
    if let Some(c) = deadline {
        let message = c.message.clone();
        return Readiness::DeadlineExceeded {
            reason: format!(
                "deployment {name}: {}",
                message.unwrap_or_else(|| "progress deadline exceeded".into())
            ),
        };
    }
    let available = status.available_replicas.unwrap_or(0);
    let needed = (spec_replicas.max(0) as u64 * threshold_percent as u64).div_ceil(100) as i32;
    if is_paused(d) {
        return if available >= needed {
            Readiness::Ready
        } else {
            Readiness::NotReady {
                reason: format!("deployment {name}: {available} of {needed} replicas available"),
            }
        };
    }
    let generation = d.metadata.generation.unwrap_or(0);
    let observed = status.observed_generation.unwrap_or(0);
    if observed < generation {
        return Readiness::NotReady {
            reason: format!(
                "deployment {name}: waiting for the rollout to be observed (generation {generation}, observed {observed})"
            ),
        };
    }
    let updated = status.updated_replicas.unwrap_or(0);
    if updated < spec_replicas {
        return Readiness::NotReady {
            reason: format!("deployment {name}: {updated} of {spec_replicas} updated replicas"),
        };
    }
    let total = status.replicas.unwrap_or(0);
    if total > updated {
        return Readiness::NotReady {
            reason: format!(
                "deployment {name}: {} old replicas pending termination",
                total - updated
            ),
        };
    }
    let needed_updated = (updated.max(0) as u64 * threshold_percent as u64).div_ceil(100) as i32;
    if available < needed_updated {
        return Readiness::NotReady {
            reason: format!(
                "deployment {name}: {available} of {needed_updated} updated replicas available"
            ),
        };
    }
    Readiness::Ready
}

/// The canary workload: the target's current (held) template, with the selector label's value
/// rewritten to `<value>-canary`, owned by the Canary and labelled with it.
pub fn canary_deployment(
    canary: &Canary,
    target: &Deployment,
    label: &(String, String),
) -> Deployment {
    let spec = target.spec.clone().unwrap_or_default();
    Deployment {
        metadata: canary_meta(canary, &target.metadata),
        spec: Some(DeploymentSpec {
            replicas: Some(spec.replicas.unwrap_or(1).max(1)),
            selector: canary_selector(spec.selector.match_labels.as_ref(), label),
            template: canary_template(&spec.template, label),
            strategy: spec.strategy.clone(),
            min_ready_seconds: spec.min_ready_seconds,
            progress_deadline_seconds: spec.progress_deadline_seconds,
            revision_history_limit: spec.revision_history_limit,
            paused: None,
        }),
        status: None,
    }
}

/// `threshold_percent`% of `total`, rounded up.
pub(crate) fn needed(total: i32, threshold_percent: u32) -> i32 {
    (total.max(0) as u64 * threshold_percent as u64).div_ceil(100) as i32
}

/// An owner reference to the Canary (controller: true), so its children go with it.
pub fn owner_reference(canary: &Canary) -> Option<OwnerReference> {
    let mut o = canary.controller_owner_ref(&())?;
    o.block_owner_deletion = Some(true);
    Some(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deploy(v: serde_json::Value) -> Deployment {
        serde_json::from_value(v).unwrap()
    }

    fn web() -> Deployment {
        deploy(json!({
            "metadata": {"name": "web", "namespace": "prod", "generation": 2},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web", "tier": "fe"}},
                     "template": {"metadata": {"labels": {"app": "web", "tier": "fe"}},
                                  "spec": {"containers": [{"name": "web", "image": "web:2"}]}}},
            "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}
        }))
    }

    #[test]
    fn selector_label_is_first_candidate_present() {
        let c = vec!["name".to_string(), "app".to_string()];
        let labels = web().spec.unwrap().selector.match_labels.unwrap();
        assert_eq!(
            selector_label(&labels, "web", &c).unwrap(),
            ("app".into(), "web".into())
        );
        let err = selector_label(&labels, "web", &["x".to_string()]).unwrap_err();
        assert!(err.contains("--selector-labels"), "{err}");
    }

    #[test]
    fn readiness_follows_rollout() {
        assert_eq!(readiness(&web(), 100), Readiness::Ready);
        let mut d = web();
        d.status.as_mut().unwrap().updated_replicas = Some(1);
        assert!(matches!(readiness(&d, 100), Readiness::NotReady { .. }));
        d.spec.as_mut().unwrap().paused = Some(true);
        assert_eq!(
            readiness(&d, 100),
            Readiness::Ready,
            "a held Deployment serves with its stable pods"
        );
        let mut d = web();
        d.status.as_mut().unwrap().conditions = Some(vec![serde_json::from_value(json!({
            "type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "too slow"
        })).unwrap()]);
        assert!(matches!(
            readiness(&d, 100),
            Readiness::DeadlineExceeded { .. }
        ));
    }

    #[test]
    fn canary_gets_rewritten_selector_and_same_template() {
        let canary: Canary = serde_json::from_value(json!({
            "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
            "metadata": {"name": "web", "namespace": "prod", "uid": "u1"},
            "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "service": {"port": 80}}
        }))
        .unwrap();
        let c = canary_deployment(&canary, &web(), &("app".into(), "web".into()));
        assert_eq!(c.name_any(), "web-canary");
        let spec = c.spec.unwrap();
        assert_eq!(spec.selector.match_labels.unwrap()["app"], "web-canary");
        let labels = spec.template.metadata.unwrap().labels.unwrap();
        assert_eq!(labels["app"], "web-canary");
        assert_eq!(labels["tier"], "fe");
        assert_eq!(
            spec.template.spec.unwrap().containers[0].image.as_deref(),
            Some("web:2")
        );
        assert_eq!(c.metadata.owner_references.unwrap()[0].uid, "u1");
    }
}
