//! A StatefulSet target and its canary StatefulSet.

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
};
use kube::ResourceExt;
use serin_analysis::Readiness;
use serin_api::Canary;
use serin_api::hold::Kind;
use serin_api::labels::{CANARY_SUFFIX, UPDATE_STRATEGY_ANNOTATION};

use super::{canary_meta, canary_selector, canary_template, needed};

/// Whether serin holds the StatefulSet (a partition above every ordinal, the user's saved).
pub fn is_held(s: &StatefulSet) -> bool {
    let strategy = s
        .spec
        .as_ref()
        .and_then(|s| serde_json::to_value(&s.update_strategy).ok());
    s.annotations().contains_key(UPDATE_STRATEGY_ANNOTATION)
        && Kind::StatefulSet.is_hold_strategy(strategy.as_ref())
}

pub fn replicas(s: &StatefulSet) -> i32 {
    s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1).max(0)
}

/// Readiness of a StatefulSet. Held, it serves with the pods of its stable revision: ready when
/// enough of them are. Otherwise the rollout must be complete: generation observed, every pod at
/// or above the user's partition updated (all of them, with the update revision then current,
/// when there is none), `threshold`% of the replicas ready.
pub fn readiness(s: &StatefulSet, threshold_percent: u32) -> Readiness {
    let name = s.name_any();
    let status = s.status.clone().unwrap_or_default();
    let generation = s.metadata.generation.unwrap_or(0);
    let observed = status.observed_generation.unwrap_or(0);
    if observed < generation {
        return Readiness::NotReady {
            reason: format!(
                "statefulset {name}: waiting for the rollout to be observed (generation {generation}, observed {observed})"
            ),
        };
    }
    let replicas = replicas(s);
    let wanted = needed(replicas, threshold_percent);
    let ready = status.ready_replicas.unwrap_or(0);
    if !is_held(s) {
        let strategy = s.spec.as_ref().and_then(|s| s.update_strategy.as_ref());
        let on_delete = strategy.and_then(|s| s.type_.as_deref()) == Some("OnDelete");
        let partition = strategy
            .and_then(|s| s.rolling_update.as_ref())
            .and_then(|r| r.partition)
            .unwrap_or(0)
            .max(0);
        let to_update = (replicas - partition).max(0);
        let updated = status.updated_replicas.unwrap_or(0);
        if updated < to_update {
            let hint = if on_delete {
                " (updateStrategy OnDelete: delete the old pods to roll out)"
            } else {
                ""
            };
            return Readiness::NotReady {
                reason: format!(
                    "statefulset {name}: {updated} of {to_update} replicas updated{hint}"
                ),
            };
        }
        if partition == 0
            && status.update_revision.is_some()
            && status.current_revision != status.update_revision
        {
            return Readiness::NotReady {
                reason: format!(
                    "statefulset {name}: revision {} not yet current",
                    status.update_revision.as_deref().unwrap_or_default()
                ),
            };
        }
    }
    if ready < wanted {
        return Readiness::NotReady {
            reason: format!("statefulset {name}: {ready} of {wanted} replicas ready"),
        };
    }
    Readiness::Ready
}

/// The canary StatefulSet: the target's current (held) template with the selector label's value
/// rewritten, as many replicas, rolled out with the default `RollingUpdate`. Its pods are named
/// `<target>-canary-N` and so get their own volumes from the same `volumeClaimTemplates`
/// (`<claim>-<target>-canary-N`), never the stable pods'; those volumes are deleted when the canary
/// scales down, so a next analysis starts from empty volumes, not a former canary's data. The
/// governing Service is `<service>-canary`, the Service that selects exactly the canary's pods
/// (headless when `service.headless` is set, which gives each pod its DNS name).
pub fn canary_statefulset(
    canary: &Canary,
    target: &StatefulSet,
    label: &(String, String),
) -> StatefulSet {
    let spec = target.spec.clone().unwrap_or_default();
    StatefulSet {
        metadata: canary_meta(canary, &target.metadata),
        spec: Some(StatefulSetSpec {
            replicas: Some(spec.replicas.unwrap_or(1).max(1)),
            selector: canary_selector(spec.selector.match_labels.as_ref(), label),
            template: canary_template(&spec.template, label),
            service_name: Some(format!("{}{CANARY_SUFFIX}", canary.spec.service_name())),
            volume_claim_templates: spec.volume_claim_templates.clone(),
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some("Delete".into()),
                    when_scaled: Some("Delete".into()),
                },
            ),
            pod_management_policy: spec.pod_management_policy.clone(),
            min_ready_seconds: spec.min_ready_seconds,
            revision_history_limit: spec.revision_history_limit,
            ordinals: spec.ordinals.clone(),
            update_strategy: None,
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sts(
        strategy: serde_json::Value,
        annotations: serde_json::Value,
        status: serde_json::Value,
    ) -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "db", "namespace": "prod", "generation": 2, "annotations": annotations},
            "spec": {"replicas": 3, "serviceName": "db-headless", "selector": {"matchLabels": {"app": "db"}},
                     "updateStrategy": strategy,
                     "template": {"metadata": {"labels": {"app": "db"}},
                                  "spec": {"containers": [{"name": "db", "image": "db:2"}]}},
                     "volumeClaimTemplates": [{"metadata": {"name": "data"},
                         "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]},
            "status": status
        }))
        .unwrap()
    }

    #[test]
    fn readiness_follows_hold_partition_and_revisions() {
        let rolling = json!({"observedGeneration": 2, "replicas": 3, "readyReplicas": 3,
                             "currentRevision": "db-1", "updateRevision": "db-2"});
        let held = sts(
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 2147483647}}),
            json!({UPDATE_STRATEGY_ANNOTATION: "null"}),
            rolling.clone(),
        );
        assert_eq!(readiness(&held, 100), Readiness::Ready);
        let released = sts(json!({"type": "RollingUpdate"}), json!({}), rolling.clone());
        assert!(
            matches!(readiness(&released, 100), Readiness::NotReady { ref reason } if reason.contains("0 of 3 replicas updated"))
        );
        let mut updated = rolling.clone();
        updated["updatedReplicas"] = json!(3);
        let not_current = sts(json!({"type": "RollingUpdate"}), json!({}), updated.clone());
        assert!(
            matches!(readiness(&not_current, 100), Readiness::NotReady { ref reason } if reason.contains("not yet current"))
        );
        updated["currentRevision"] = json!("db-2");
        assert_eq!(
            readiness(
                &sts(json!({"type": "RollingUpdate"}), json!({}), updated),
                100
            ),
            Readiness::Ready
        );
        let mut partial = rolling;
        partial["updatedReplicas"] = json!(1);
        let own_partition = sts(
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}),
            json!({}),
            partial,
        );
        assert_eq!(
            readiness(&own_partition, 100),
            Readiness::Ready,
            "the user's partition is honoured"
        );
    }

    #[test]
    fn canary_has_own_volumes_and_governing_service() {
        let canary: Canary = serde_json::from_value(json!({
            "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
            "metadata": {"name": "db", "namespace": "prod", "uid": "u1"},
            "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db"}, "service": {"port": 80}}
        }))
        .unwrap();
        let target = sts(json!({"type": "OnDelete"}), json!({}), json!({}));
        let c = canary_statefulset(&canary, &target, &("app".into(), "db".into()));
        assert_eq!(c.name_any(), "db-canary");
        let spec = c.spec.unwrap();
        assert_eq!(spec.replicas, Some(3));
        assert_eq!(spec.service_name.as_deref(), Some("db-canary"));
        assert_eq!(spec.update_strategy, None);
        assert_eq!(
            spec.volume_claim_templates.unwrap()[0]
                .metadata
                .name
                .as_deref(),
            Some("data")
        );
        assert_eq!(
            spec.persistent_volume_claim_retention_policy
                .unwrap()
                .when_scaled
                .as_deref(),
            Some("Delete")
        );
        assert_eq!(spec.selector.match_labels.unwrap()["app"], "db-canary");
    }
}
