//! The workload under canary, whatever its kind (Deployment, DaemonSet, StatefulSet): one type
//! for what the reconciler reads of it (selector, template hash, readiness, images), the canary
//! workload of the same kind, and the writes (adoption, hold, canary, scale-down, promotion).
//! Holds and promotions are computed by `serin_api::hold`, the decision the webhook applies, and
//! written as JSON merge patches.

use std::collections::BTreeMap;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serin_analysis::Readiness;
use serin_api::Canary;
use serin_api::hold::{self, Kind, State};
use serin_api::labels::STABLE_HASH_ANNOTATION;

use crate::workload::{self, daemonset, statefulset};

/// A workload of one of the kinds serin holds.
#[derive(Clone, Debug)]
pub enum Workload {
    Deployment(Deployment),
    DaemonSet(DaemonSet),
    StatefulSet(StatefulSet),
}

/// The reflector stores of the three kinds (objects labelled `serin.dev/canary`).
#[derive(Clone)]
pub struct Stores {
    pub deployments: Store<Deployment>,
    pub daemonsets: Store<DaemonSet>,
    pub statefulsets: Store<StatefulSet>,
}

impl Stores {
    /// A workload from the store (no API request).
    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<Workload> {
        match kind {
            Kind::Deployment => self
                .deployments
                .get(&ObjectRef::new(name).within(namespace))
                .map(|d| Workload::Deployment((*d).clone())),
            Kind::DaemonSet => self
                .daemonsets
                .get(&ObjectRef::new(name).within(namespace))
                .map(|d| Workload::DaemonSet((*d).clone())),
            Kind::StatefulSet => self
                .statefulsets
                .get(&ObjectRef::new(name).within(namespace))
                .map(|d| Workload::StatefulSet((*d).clone())),
        }
    }
}

impl Workload {
    pub fn kind(&self) -> Kind {
        match self {
            Workload::Deployment(_) => Kind::Deployment,
            Workload::DaemonSet(_) => Kind::DaemonSet,
            Workload::StatefulSet(_) => Kind::StatefulSet,
        }
    }

    pub fn meta(&self) -> &ObjectMeta {
        match self {
            Workload::Deployment(d) => &d.metadata,
            Workload::DaemonSet(d) => &d.metadata,
            Workload::StatefulSet(s) => &s.metadata,
        }
    }

    pub fn name(&self) -> String {
        self.meta().name.clone().unwrap_or_default()
    }

    /// `kind/name` as kubectl writes it, for messages.
    pub fn who(&self) -> String {
        format!("{} {}", self.kind().lower(), self.name())
    }

    /// `spec.selector.matchLabels`.
    pub fn match_labels(&self) -> BTreeMap<String, String> {
        let labels = match self {
            Workload::Deployment(d) => d.spec.as_ref().map(|s| &s.selector),
            Workload::DaemonSet(d) => d.spec.as_ref().map(|s| &s.selector),
            Workload::StatefulSet(s) => s.spec.as_ref().map(|s| &s.selector),
        };
        labels
            .and_then(|s| s.match_labels.clone())
            .unwrap_or_default()
    }

    pub fn template(&self) -> Option<&PodTemplateSpec> {
        match self {
            Workload::Deployment(d) => d.spec.as_ref().map(|s| &s.template),
            Workload::DaemonSet(d) => d.spec.as_ref().map(|s| &s.template),
            Workload::StatefulSet(s) => s.spec.as_ref().map(|s| &s.template),
        }
    }

    /// Hash of the pod template (the hold model's revision).
    pub fn template_hash(&self) -> String {
        self.template()
            .and_then(|t| serin_api::hash::template_hash_of(t).ok())
            .unwrap_or_default()
    }

    /// The images of the pod template's containers, for alerts.
    pub fn images(&self) -> Vec<String> {
        self.template()
            .and_then(|t| t.spec.as_ref())
            .map(|p| {
                p.containers
                    .iter()
                    .filter_map(|c| c.image.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn to_json(&self) -> Value {
        match self {
            Workload::Deployment(d) => serde_json::to_value(d),
            Workload::DaemonSet(d) => serde_json::to_value(d),
            Workload::StatefulSet(s) => serde_json::to_value(s),
        }
        .unwrap_or_default()
    }

    /// Readiness as the engine wants it (see each kind's `readiness`).
    pub fn readiness(&self, threshold_percent: u32) -> Readiness {
        match self {
            Workload::Deployment(d) => workload::readiness(d, threshold_percent),
            Workload::DaemonSet(d) => daemonset::readiness(d, threshold_percent),
            Workload::StatefulSet(s) => statefulset::readiness(s, threshold_percent),
        }
    }

    /// Whether a canary workload runs pods: replicas above zero, or for a DaemonSet no
    /// scale-to-zero node selector.
    pub fn is_scaled_up(&self) -> bool {
        match self {
            Workload::Deployment(d) => d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0) > 0,
            Workload::DaemonSet(d) => daemonset::is_scaled_up(d),
            Workload::StatefulSet(s) => s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0) > 0,
        }
    }

    /// The canary workload (`<name>-canary`, same kind) built from this one's current template.
    pub fn canary(&self, canary: &Canary, label: &(String, String)) -> Workload {
        match self {
            Workload::Deployment(d) => {
                Workload::Deployment(workload::canary_deployment(canary, d, label))
            }
            Workload::DaemonSet(d) => {
                Workload::DaemonSet(daemonset::canary_daemonset(canary, d, label))
            }
            Workload::StatefulSet(s) => {
                Workload::StatefulSet(statefulset::canary_statefulset(canary, s, label))
            }
        }
    }

    /// The hold the controller puts on itself when no webhook did (`None`: nothing to write).
    /// A held new revision gets its hold; a DaemonSet or StatefulSet back on its stable
    /// template gets the user's strategy back. A Deployment is only ever paused here: unpausing
    /// is the promotion's, so a user's own pause of a stable Deployment is left alone.
    pub fn fallback_hold(&self) -> Option<Value> {
        let current = self.to_json();
        let ns = self.meta().namespace.clone().unwrap_or_default();
        let decision = hold::decide(self.kind(), &current, &ns, &self.name());
        let acts = match decision.state {
            State::Held => true,
            State::Released => self.kind() != Kind::Deployment,
            State::Running | State::Unmanaged => false,
        };
        if !acts || decision.ops.is_empty() {
            return None;
        }
        merge_diff(&current, &decision.applied(&current))
    }

    /// The promotion write: `serin.dev/stable-hash` := `revision` and, in the same patch, the
    /// hold taken off as the webhook would (unpaused, the user's strategy back). A template that
    /// changed again since the engine decided stays held.
    pub fn promotion_patch(&self, revision: &str) -> Value {
        let current = self.to_json();
        let mut promoted = current.clone();
        if !promoted["metadata"]["annotations"].is_object() {
            promoted["metadata"]["annotations"] = Value::Object(Default::default());
        }
        promoted["metadata"]["annotations"][STABLE_HASH_ANNOTATION] =
            Value::String(revision.into());
        let ns = self.meta().namespace.clone().unwrap_or_default();
        let decision = hold::decide(self.kind(), &promoted, &ns, &self.name());
        merge_diff(&current, &decision.applied(&promoted)).unwrap_or(Value::Null)
    }
}

/// The JSON merge patch (RFC 7386) that turns `old` into `new`: changed members, `null` for
/// removed ones, nested objects diffed member by member; `None` when they are equal.
pub fn merge_diff(old: &Value, new: &Value) -> Option<Value> {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut patch = serde_json::Map::new();
            for (k, v) in n {
                match o.get(k) {
                    Some(ov) => {
                        if let Some(d) = merge_diff(ov, v) {
                            patch.insert(k.clone(), d);
                        }
                    }
                    None => {
                        patch.insert(k.clone(), v.clone());
                    }
                }
            }
            for k in o.keys() {
                if !n.contains_key(k) {
                    patch.insert(k.clone(), Value::Null);
                }
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        _ if old == new => None,
        _ => Some(new.clone()),
    }
}

/// Reads a workload (one GET; before adoption it is not in the store).
pub async fn get(
    client: &Client,
    kind: Kind,
    ns: &str,
    name: &str,
) -> Result<Option<Workload>, kube::Error> {
    Ok(match kind {
        Kind::Deployment => api::<Deployment>(client, ns)
            .get_opt(name)
            .await?
            .map(Workload::Deployment),
        Kind::DaemonSet => api::<DaemonSet>(client, ns)
            .get_opt(name)
            .await?
            .map(Workload::DaemonSet),
        Kind::StatefulSet => api::<StatefulSet>(client, ns)
            .get_opt(name)
            .await?
            .map(Workload::StatefulSet),
    })
}

/// A JSON merge patch of the workload `kind/name`.
pub async fn patch(
    client: &Client,
    kind: Kind,
    ns: &str,
    name: &str,
    patch: &Value,
) -> Result<(), kube::Error> {
    let p = Patch::Merge(patch);
    let pp = PatchParams::default();
    match kind {
        Kind::Deployment => api::<Deployment>(client, ns)
            .patch(name, &pp, &p)
            .await
            .map(drop),
        Kind::DaemonSet => api::<DaemonSet>(client, ns)
            .patch(name, &pp, &p)
            .await
            .map(drop),
        Kind::StatefulSet => api::<StatefulSet>(client, ns)
            .patch(name, &pp, &p)
            .await
            .map(drop),
    }
}

/// Creates the canary workload, or replaces the spec, labels and owner of the existing one.
pub async fn upsert(client: &Client, ns: &str, desired: &Workload) -> Result<(), kube::Error> {
    match desired {
        Workload::Deployment(d) => upsert_typed(&api(client, ns), d).await,
        Workload::DaemonSet(d) => upsert_typed(&api(client, ns), d).await,
        Workload::StatefulSet(s) => upsert_typed(&api(client, ns), s).await,
    }
}

/// Scales the canary workload `kind/name` to zero, if it exists.
pub async fn scale_down(
    client: &Client,
    kind: Kind,
    ns: &str,
    name: &str,
) -> Result<(), kube::Error> {
    let Some(existing) = get(client, kind, ns, name).await? else {
        return Ok(());
    };
    let zero = match kind {
        Kind::DaemonSet => daemonset::scale_to_zero_patch(),
        Kind::Deployment | Kind::StatefulSet => serde_json::json!({"spec": {"replicas": 0}}),
    };
    let mut scaled = existing.to_json();
    json_patch::merge(&mut scaled, &zero);
    if scaled == existing.to_json() {
        return Ok(());
    }
    patch(client, kind, ns, name, &zero).await
}

fn api<K>(client: &Client, ns: &str) -> Api<K>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
{
    Api::namespaced(client.clone(), ns)
}

async fn upsert_typed<K>(api: &Api<K>, desired: &K) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
{
    let name = desired.name_any();
    match api.get_opt(&name).await? {
        None => {
            api.create(&PostParams::default(), desired).await?;
        }
        Some(existing) => {
            let mut next = serde_json::to_value(&existing).map_err(kube::Error::SerdeError)?;
            let wanted = serde_json::to_value(desired).map_err(kube::Error::SerdeError)?;
            next["spec"] = wanted["spec"].clone();
            next["metadata"]["labels"] = wanted["metadata"]["labels"].clone();
            next["metadata"]["ownerReferences"] = wanted["metadata"]["ownerReferences"].clone();
            let next: K = serde_json::from_value(next).map_err(kube::Error::SerdeError)?;
            api.replace(&name, &PostParams::default(), &next).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use serin_api::hold::HOLD_PARTITION;
    use serin_api::labels::{CANARY_LABEL, UPDATE_STRATEGY_ANNOTATION};

    #[test]
    fn merge_diff_sets_changes_and_nulls_removals() {
        let old = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1]});
        let new = json!({"a": 1, "b": {"c": 5}, "e": [1, 2], "f": true});
        assert_eq!(
            merge_diff(&old, &new),
            Some(json!({"b": {"c": 5, "d": null}, "e": [1, 2], "f": true}))
        );
        assert_eq!(merge_diff(&old, &old), None);
        let mut patched = old.clone();
        json_patch::merge(&mut patched, &merge_diff(&old, &new).unwrap());
        assert_eq!(patched, new);
    }

    fn statefulset(image: &str, stable_image: &str, strategy: Value) -> Workload {
        let template = |image: &str| {
            json!({"metadata": {"labels": {"app": "db"}},
                   "spec": {"containers": [{"name": "db", "image": image}]}})
        };
        let stable = serin_api::hash::template_hash(&template(stable_image));
        Workload::StatefulSet(
            serde_json::from_value(json!({
                "metadata": {"name": "db", "namespace": "prod", "labels": {CANARY_LABEL: "db"},
                             "annotations": {STABLE_HASH_ANNOTATION: stable}},
                "spec": {"replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                         "template": template(image), "updateStrategy": strategy}
            }))
            .unwrap(),
        )
    }

    #[test]
    fn fallback_holds_and_promotion_releases() {
        let user = json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}});
        let w = statefulset("db:2", "db:1", user.clone());
        let patch = w.fallback_hold().expect("a new revision is held");
        assert_eq!(
            patch["spec"]["updateStrategy"]["rollingUpdate"]["partition"],
            HOLD_PARTITION
        );
        let mut held = w.to_json();
        json_patch::merge(&mut held, &patch);
        let held = Workload::StatefulSet(serde_json::from_value(held).unwrap());
        assert_eq!(held.fallback_hold(), None, "held already");
        assert!(
            statefulset("db:1", "db:1", user.clone())
                .fallback_hold()
                .is_none()
        );

        let revision = held.template_hash();
        let promotion = held.promotion_patch(&revision);
        let mut promoted = held.to_json();
        json_patch::merge(&mut promoted, &promotion);
        assert_eq!(promoted["spec"]["updateStrategy"], user);
        assert_eq!(
            promoted["metadata"]["annotations"][STABLE_HASH_ANNOTATION],
            revision
        );
        assert!(
            promoted["metadata"]["annotations"]
                .get(UPDATE_STRATEGY_ANNOTATION)
                .is_none()
        );
    }
}
