//! The DaemonSet and StatefulSet controller imitations: after a write, the status says what the real
//! controllers would report once the pods settled, following each kind's `updateStrategy`. No pods
//! exist; every pod that would run is counted ready at once.

use serde_json::{Value, json};
use std::hash::{DefaultHasher, Hash, Hasher};

use super::store::{ObjKey, Store};

/// The nodes a DaemonSet runs on. They carry no labels, so a pod template with any `nodeSelector`
/// fits none of them (how a canary DaemonSet is scaled to zero).
pub const NODES: i64 = 3;

fn int(v: &Value, pointer: &str) -> Option<i64> {
    v.pointer(pointer).and_then(Value::as_i64)
}

/// A ControllerRevision-style name for a template: `<name>-<hash>`.
fn revision_name(name: &str, template: &Value) -> String {
    let mut h = DefaultHasher::new();
    template.to_string().hash(&mut h);
    format!("{name}-{:010x}", h.finish() & 0xff_ffff_ffff)
}

impl Store {
    /// The DaemonSet controller: `RollingUpdate` (the default) replaces every pod with the current
    /// template; `OnDelete` replaces none, so the pods keep the template they last rolled out (a new
    /// DaemonSet starts with its template). One pod per node unless the template has a nodeSelector.
    pub(super) fn sync_daemonset(&mut self, key: &ObjKey) {
        let Some(ds) = self.get(key).cloned() else {
            return;
        };
        if ds.pointer("/metadata/deletionTimestamp").is_some() {
            return;
        }
        let template = ds.pointer("/spec/template").cloned().unwrap_or(Value::Null);
        let on_delete = ds
            .pointer("/spec/updateStrategy/type")
            .and_then(Value::as_str)
            == Some("OnDelete");
        if !on_delete || !self.rolled_out.contains_key(key) {
            self.rolled_out.insert(key.clone(), template.clone());
        }
        let selects_no_node = template
            .pointer("/spec/nodeSelector")
            .and_then(Value::as_object)
            .is_some_and(|s| !s.is_empty());
        let desired = if selects_no_node { 0 } else { NODES };
        let updated = if self.rolled_out.get(key) == Some(&template) {
            desired
        } else {
            0
        };
        let mut status = serde_json::Map::new();
        status.insert(
            "observedGeneration".into(),
            json!(int(&ds, "/metadata/generation").unwrap_or(1)),
        );
        // The first four are required fields of DaemonSetStatus; the others are omitted at zero.
        for (field, n) in [
            ("currentNumberScheduled", desired),
            ("desiredNumberScheduled", desired),
            ("numberMisscheduled", 0),
            ("numberReady", desired),
        ] {
            status.insert(field.into(), json!(n));
        }
        for (field, n) in [
            ("updatedNumberScheduled", updated),
            ("numberAvailable", desired),
        ] {
            if n != 0 {
                status.insert(field.into(), json!(n));
            }
        }
        self.set_status(key, ds, Value::Object(status));
    }

    /// The StatefulSet controller: with `RollingUpdate` the pods with an ordinal at or above
    /// `partition` (default 0) run the current template, the others the one last rolled out; with
    /// `OnDelete` no pod is replaced. Once every pod is updated, the update revision becomes the
    /// current one. A new StatefulSet starts with its template.
    pub(super) fn sync_statefulset(&mut self, key: &ObjKey) {
        let Some(sts) = self.get(key).cloned() else {
            return;
        };
        if sts.pointer("/metadata/deletionTimestamp").is_some() {
            return;
        }
        let name = key.3.clone();
        let replicas = int(&sts, "/spec/replicas").unwrap_or(1).max(0);
        let template = sts
            .pointer("/spec/template")
            .cloned()
            .unwrap_or(Value::Null);
        let rolled = self
            .rolled_out
            .entry(key.clone())
            .or_insert_with(|| template.clone())
            .clone();
        let updated = if rolled == template {
            replicas
        } else if sts
            .pointer("/spec/updateStrategy/type")
            .and_then(Value::as_str)
            == Some("OnDelete")
        {
            0
        } else {
            let partition = int(&sts, "/spec/updateStrategy/rollingUpdate/partition").unwrap_or(0);
            (replicas - partition.max(0)).max(0)
        };
        if updated == replicas {
            self.rolled_out.insert(key.clone(), template.clone());
        }
        let current_template = self.rolled_out.get(key).cloned().unwrap_or(Value::Null);
        let mut status = serde_json::Map::new();
        status.insert(
            "observedGeneration".into(),
            json!(int(&sts, "/metadata/generation").unwrap_or(1)),
        );
        status.insert("replicas".into(), json!(replicas));
        for (field, n) in [
            ("readyReplicas", replicas),
            ("availableReplicas", replicas),
            (
                "currentReplicas",
                if updated == replicas {
                    replicas
                } else {
                    replicas - updated
                },
            ),
            ("updatedReplicas", updated),
        ] {
            if n != 0 {
                status.insert(field.into(), json!(n));
            }
        }
        status.insert(
            "currentRevision".into(),
            json!(revision_name(&name, &current_template)),
        );
        status.insert(
            "updateRevision".into(),
            json!(revision_name(&name, &template)),
        );
        self.set_status(key, sts, Value::Object(status));
    }

    /// Writes `status` as its own change, unless it is what the object has.
    fn set_status(&mut self, key: &ObjKey, object: Value, status: Value) {
        if object.get("status") != Some(&status) {
            let mut updated = object;
            updated["status"] = status;
            self.put(key.clone(), updated);
        }
    }
}
