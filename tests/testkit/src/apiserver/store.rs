//! The object store: one global resourceVersion counter, a bounded event history for watches, and the few
//! side effects kube-apiserver and its controllers have on a write (CRD registration, garbage collection,
//! the Deployment controller imitation).

use super::registry::{Registry, ResourceType};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::broadcast;

/// (group, plural, namespace, name); the namespace is empty for cluster-scoped objects.
pub type ObjKey = (String, String, String, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change, kept in the history so a watch can resume from any resourceVersion still in it.
#[derive(Debug)]
pub struct Change {
    pub rv: u64,
    pub group: String,
    pub plural: String,
    pub namespace: String,
    pub type_: EventType,
    pub object: Arc<Value>,
    /// The object before the change, so a selector-filtered watch can turn "stopped matching" into DELETED.
    pub old: Option<Arc<Value>>,
}

pub struct Store {
    pub rv: u64,
    /// Shared with the history, so a stored version costs memory once.
    pub objects: BTreeMap<ObjKey, Arc<Value>>,
    pub history: VecDeque<Arc<Change>>,
    pub history_limit: usize,
    /// Every change with rv <= compacted has left the history: watching from there is 410 Expired.
    pub compacted: u64,
    pub registry: Registry,
    pub deployment_controller: bool,
    /// The pod template each Deployment last rolled out (what its "old ReplicaSet" runs).
    pub(super) rolled_out: HashMap<ObjKey, Value>,
    uid_counter: u64,
    tx: broadcast::Sender<Arc<Change>>,
}

pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

pub fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

pub fn meta_mut(obj: &mut Value) -> &mut serde_json::Map<String, Value> {
    if !obj.is_object() {
        *obj = json!({});
    }
    let o = obj.as_object_mut().expect("object");
    let m = o.entry("metadata").or_insert_with(|| json!({}));
    if !m.is_object() {
        *m = json!({});
    }
    m.as_object_mut().expect("object")
}

pub fn key_of(rt: &ResourceType, ns: &str, name: &str) -> ObjKey {
    let ns = if rt.namespaced { ns } else { "" };
    (
        rt.group.clone(),
        rt.plural.clone(),
        ns.to_string(),
        name.to_string(),
    )
}

impl Store {
    pub fn new(
        history_limit: usize,
        deployment_controller: bool,
        tx: broadcast::Sender<Arc<Change>>,
    ) -> Self {
        Store {
            rv: 1,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted: 1,
            registry: Registry::with_builtins(),
            deployment_controller,
            rolled_out: HashMap::new(),
            uid_counter: 0,
            tx,
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.tx.subscribe()
    }

    pub fn new_uid(&mut self) -> String {
        self.uid_counter += 1;
        let t = jiff::Timestamp::now().as_nanosecond() as u128;
        let x = t ^ ((self.uid_counter as u128) << 64) ^ 0x5e71_0000_0000_0000_0000_0000_0000_0000;
        let h = format!("{x:032x}");
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    /// A `generateName` suffix: 5 characters from the kube alphabet, unique in this store.
    pub fn name_suffix(&mut self) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        self.uid_counter += 1;
        let mut n = (jiff::Timestamp::now().as_nanosecond() as u64)
            .wrapping_mul(6364136223846793005)
            ^ self.uid_counter;
        (0..5)
            .map(|_| {
                let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
                n /= ALPHABET.len() as u64;
                c
            })
            .collect()
    }

    /// Drops the whole history, so any watch resuming from an older resourceVersion gets 410 Expired.
    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted = self.rv;
    }

    fn emit(
        &mut self,
        key: &ObjKey,
        type_: EventType,
        object: Arc<Value>,
        old: Option<Arc<Value>>,
    ) {
        let change = Arc::new(Change {
            rv: self.rv,
            group: key.0.clone(),
            plural: key.1.clone(),
            namespace: key.2.clone(),
            type_,
            object,
            old,
        });
        self.history.push_back(change.clone());
        while self.history.len() > self.history_limit {
            if let Some(gone) = self.history.pop_front() {
                self.compacted = gone.rv;
            }
        }
        let _ = self.tx.send(change);
    }

    pub fn get(&self, key: &ObjKey) -> Option<&Value> {
        self.objects.get(key).map(|o| o.as_ref())
    }

    pub fn list(&self, group: &str, plural: &str, ns: Option<&str>) -> Vec<&Value> {
        self.objects
            .iter()
            .filter(|((g, p, n, _), _)| g == group && p == plural && ns.is_none_or(|ns| ns == n))
            .map(|(_, v)| v.as_ref())
            .collect()
    }

    /// Stores an object under a new resourceVersion and tells watchers. Returns the stored object.
    pub fn put(&mut self, key: ObjKey, mut obj: Value) -> Value {
        self.rv += 1;
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(self.rv.to_string()));
        let shared = Arc::new(obj);
        let old = self.objects.insert(key.clone(), shared.clone());
        let type_ = if old.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.emit(&key, type_, shared.clone(), old);
        if key.0 == "apiextensions.k8s.io" && key.1 == "customresourcedefinitions" {
            self.crd_written(&key);
        }
        Arc::unwrap_or_clone(shared)
    }

    /// Removes an object for good (its finalizers are gone), then collects what it owned.
    pub fn remove(&mut self, key: &ObjKey) -> Option<Value> {
        let mut obj = Arc::unwrap_or_clone(self.objects.remove(key)?);
        self.rv += 1;
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(self.rv.to_string()));
        self.emit(key, EventType::Deleted, Arc::new(obj.clone()), None);
        self.rolled_out.remove(key);
        if key.0 == "apiextensions.k8s.io" && key.1 == "customresourcedefinitions" {
            self.crd_deleted(&obj);
        }
        let uid = meta_str(&obj, "uid").to_string();
        if !uid.is_empty() {
            self.collect_dependents(&uid);
        }
        if key.0.is_empty() && key.1 == "namespaces" {
            // The namespace controller's job, done at once: everything in the namespace goes too.
            let inside: Vec<ObjKey> = self
                .objects
                .keys()
                .filter(|k| k.2 == key.3)
                .cloned()
                .collect();
            for k in inside {
                self.delete(&k);
            }
        }
        Some(obj)
    }

    /// Deletes an object the way DELETE does: with finalizers it only gets a deletionTimestamp.
    pub fn delete(&mut self, key: &ObjKey) -> Option<Value> {
        let obj = self.get(key)?.clone();
        let has_finalizers = obj
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if has_finalizers {
            if obj.pointer("/metadata/deletionTimestamp").is_some() {
                return Some(obj);
            }
            let mut marked = obj;
            let m = meta_mut(&mut marked);
            m.insert("deletionTimestamp".into(), json!(now_rfc3339()));
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
            Some(self.put(key.clone(), marked))
        } else {
            self.remove(key)
        }
    }

    /// Background garbage collection: dependents whose owner is gone are deleted.
    fn collect_dependents(&mut self, owner_uid: &str) {
        let dependents: Vec<ObjKey> = self
            .objects
            .iter()
            .filter(|(_, o)| {
                o.pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|refs| {
                        refs.iter()
                            .any(|r| r.get("uid").and_then(Value::as_str) == Some(owner_uid))
                    })
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in dependents {
            self.delete(&k);
        }
    }

    fn crd_written(&mut self, key: &ObjKey) {
        let Some(crd) = self.get(key).cloned() else {
            return;
        };
        if self.registry.register_crd(&crd).is_err() {
            return;
        }
        // Like kube-apiserver's CRD controllers: names accepted and established at once.
        let want = json!({
            "acceptedNames": crd.pointer("/spec/names").cloned().unwrap_or(json!({})),
            "storedVersions": crd.pointer("/spec/versions").and_then(Value::as_array).map(|vs| {
                vs.iter().filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                    .filter_map(|v| v.get("name").cloned()).collect::<Vec<_>>()
            }).unwrap_or_default(),
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now_rfc3339()},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now_rfc3339()},
            ],
        });
        let same = crd
            .get("status")
            .map(|s| {
                s.get("acceptedNames") == want.get("acceptedNames") && s.get("conditions").is_some()
            })
            .unwrap_or(false);
        if !same {
            let mut updated = crd;
            updated["status"] = want;
            self.put(key.clone(), updated);
        }
    }

    fn crd_deleted(&mut self, crd: &Value) {
        let name = meta_str(crd, "name").to_string();
        self.registry.unregister_crd(&name);
        let group = crd
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let plural = crd
            .pointer("/spec/names/plural")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let keys: Vec<ObjKey> = self
            .objects
            .keys()
            .filter(|k| k.0 == group && k.1 == plural)
            .cloned()
            .collect();
        for k in keys {
            self.remove(&k);
        }
    }

    /// The workload controller imitations (when on): Deployments here, DaemonSets and StatefulSets in
    /// `workloads.rs`. Called after every write outside `/status`.
    pub fn sync_workload(&mut self, key: &ObjKey) {
        if !self.deployment_controller || key.0 != "apps" {
            return;
        }
        match key.1.as_str() {
            "deployments" => self.sync_deployment(key),
            "daemonsets" => self.sync_daemonset(key),
            "statefulsets" => self.sync_statefulset(key),
            _ => {}
        }
    }

    /// The Deployment controller imitation. Not paused: the status says the spec is fully rolled out.
    /// Paused: no new ReplicaSet, so pods keep the last rolled-out template: `updatedReplicas` is 0 when the
    /// template differs from it; observedGeneration still follows.
    fn sync_deployment(&mut self, key: &ObjKey) {
        let Some(d) = self.get(key).cloned() else {
            return;
        };
        if d.pointer("/metadata/deletionTimestamp").is_some() {
            return;
        }
        let replicas = d
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let paused = d
            .pointer("/spec/paused")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let template = d.pointer("/spec/template").cloned().unwrap_or(Value::Null);
        if !paused {
            self.rolled_out.insert(key.clone(), template.clone());
        }
        let rolled = self.rolled_out.get(key);
        let running = if rolled.is_some() { replicas } else { 0 };
        let updated = if rolled == Some(&template) {
            replicas
        } else {
            0
        };
        let generation = d
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let old_status = d.get("status").cloned().unwrap_or(json!({}));
        let cond_time = |t: &str| {
            old_status
                .get("conditions")
                .and_then(Value::as_array)
                .and_then(|cs| {
                    cs.iter()
                        .find(|c| c.get("type").and_then(Value::as_str) == Some(t))
                })
                .and_then(|c| c.get("lastTransitionTime").cloned())
                .unwrap_or_else(|| json!(now_rfc3339()))
        };
        let progressing = if paused {
            json!({"type":"Progressing","status":"Unknown","reason":"DeploymentPaused","message":"Deployment is paused"})
        } else {
            json!({"type":"Progressing","status":"True","reason":"NewReplicaSetAvailable","message":"ReplicaSet has successfully progressed."})
        };
        let mut progressing = progressing;
        progressing["lastTransitionTime"] = cond_time("Progressing");
        let mut status = serde_json::Map::new();
        status.insert("observedGeneration".into(), json!(generation));
        // Kubernetes omits zero counts.
        for (field, n) in [
            ("replicas", running),
            ("updatedReplicas", updated),
            ("readyReplicas", running),
            ("availableReplicas", running),
        ] {
            if n != 0 {
                status.insert(field.into(), json!(n));
            }
        }
        status.insert(
            "conditions".into(),
            json!([
                {"type":"Available","status":"True","reason":"MinimumReplicasAvailable","message":"Deployment has minimum availability.","lastTransitionTime": cond_time("Available")},
                progressing,
            ]),
        );
        let status = Value::Object(status);
        if d.get("status") != Some(&status) {
            let mut updated = d;
            updated["status"] = status;
            self.put(key.clone(), updated);
        }
    }
}
