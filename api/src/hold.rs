//! The hold invariant of DESIGN.md ("hold, don't clone") for each workload kind. Pure, so the
//! webhook (which answers with a JSON Patch) and the controller's fallback hold (which writes
//! the same change itself when no webhook is installed) cannot disagree.
//!
//! A workload labelled `serin.dev/canary` is *held* exactly when it carries
//! `serin.dev/stable-hash` and its pod template hashes to something else. How it is held
//! depends on the kind:
//! - Deployment: `spec.paused: true` (no new ReplicaSet).
//! - DaemonSet: `spec.updateStrategy: {type: OnDelete}` (the DaemonSet controller replaces no pod).
//! - StatefulSet: `spec.updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 2147483647}}`.
//!   Only pods with an ordinal at or above the partition get the new revision, and pods created
//!   later (a scale-up through `/scale`, which the webhook does not see) too: a partition of
//!   `replicas` would let every pod above the old count start on the held revision. No ordinal
//!   reaches the int32 maximum, so nothing does.
//!
//! For DaemonSets and StatefulSets the user's own `updateStrategy` is saved verbatim (JSON) in
//! `serin.dev/update-strategy` when the hold goes on and written back (annotation removed) when
//! the workload is no longer held: the promotion moved the stable hash, or the user reverted to
//! the stable template.

use serde_json::{Value, json};

use crate::hash::workload_template_hash;
use crate::labels::{CANARY_LABEL, STABLE_HASH_ANNOTATION, UPDATE_STRATEGY_ANNOTATION};

/// The StatefulSet partition of a hold: the int32 maximum, above every ordinal.
pub const HOLD_PARTITION: i64 = i32::MAX as i64;
/// JSON Pointer (RFC 6901, `/` escaped as `~1`) of [`UPDATE_STRATEGY_ANNOTATION`].
pub const UPDATE_STRATEGY_PATH: &str = "/metadata/annotations/serin.dev~1update-strategy";
const PAUSED_PATH: &str = "/spec/paused";
const STRATEGY_PATH: &str = "/spec/updateStrategy";

/// The `apps/v1` workload kinds serin holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Deployment,
    DaemonSet,
    StatefulSet,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Deployment, Kind::DaemonSet, Kind::StatefulSet];

    /// The kind named `kind` (`"DaemonSet"`), if it is one serin holds.
    pub fn from_name(kind: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Deployment => "Deployment",
            Kind::DaemonSet => "DaemonSet",
            Kind::StatefulSet => "StatefulSet",
        }
    }

    /// The lower-case name kubectl uses (`daemonset/web`).
    pub fn lower(self) -> &'static str {
        match self {
            Kind::Deployment => "deployment",
            Kind::DaemonSet => "daemonset",
            Kind::StatefulSet => "statefulset",
        }
    }

    /// The `spec.updateStrategy` that holds a new revision (`None` for Deployments, which pause).
    pub fn hold_strategy(self) -> Option<Value> {
        match self {
            Kind::Deployment => None,
            Kind::DaemonSet => Some(json!({"type": "OnDelete"})),
            Kind::StatefulSet => Some(
                json!({"type": "RollingUpdate", "rollingUpdate": {"partition": HOLD_PARTITION}}),
            ),
        }
    }

    /// Whether `strategy` (a `spec.updateStrategy`) holds new revisions. Other fields the API
    /// server may default next to ours (e.g. a StatefulSet's `maxUnavailable`) do not matter.
    pub fn is_hold_strategy(self, strategy: Option<&Value>) -> bool {
        let type_ = strategy.and_then(|s| s.get("type")).and_then(Value::as_str);
        match self {
            Kind::Deployment => false,
            Kind::DaemonSet => type_ == Some("OnDelete"),
            Kind::StatefulSet => {
                type_ == Some("RollingUpdate")
                    && strategy
                        .and_then(|s| s.pointer("/rollingUpdate/partition"))
                        .and_then(Value::as_i64)
                        == Some(HOLD_PARTITION)
            }
        }
    }
}

/// Where a workload stands with respect to the hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Not labelled, or not adopted yet (no stable hash): a workload serin does not hold.
    Unmanaged,
    /// Adopted and running its stable template; no hold to put on or take off.
    Running,
    /// A new revision: the hold is (or, after `ops`, will be) on.
    Held,
    /// The stable template again (promotion or revert) with the hold still on: `ops` take it off.
    Released,
}

/// One JSON Patch operation (RFC 6902): `add` (which also replaces) or `remove` (whose `value`
/// is `null` and ignored, RFC 6902 §4.2).
#[derive(Clone, Debug, PartialEq)]
pub struct HoldOp {
    pub op: &'static str,
    pub path: &'static str,
    pub value: Value,
}

impl HoldOp {
    fn add(path: &'static str, value: Value) -> HoldOp {
        HoldOp {
            op: "add",
            path,
            value,
        }
    }

    fn remove(path: &'static str) -> HoldOp {
        HoldOp {
            op: "remove",
            path,
            value: Value::Null,
        }
    }

    /// Applies the operation to `object` (for the controller, which writes the result itself).
    /// The parents of the paths serin writes exist on any object the decision produced it for.
    pub fn apply(&self, object: &mut Value) {
        let (parent, leaf) = self.path.rsplit_once('/').unwrap_or(("", self.path));
        let leaf = leaf.replace("~1", "/").replace("~0", "~");
        let Some(map) = object.pointer_mut(parent).and_then(Value::as_object_mut) else {
            return;
        };
        match self.op {
            "remove" => {
                map.remove(&leaf);
            }
            _ => {
                map.insert(leaf, self.value.clone());
            }
        }
    }
}

/// What the invariant asks of one workload: its state, the patch that establishes it (empty
/// when it holds already) and the warning kubectl prints.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub state: State,
    pub ops: Vec<HoldOp>,
    pub warning: Option<String>,
}

impl Decision {
    fn untouched(state: State) -> Decision {
        Decision {
            state,
            ops: Vec::new(),
            warning: None,
        }
    }

    /// `object` with the patch applied.
    pub fn applied(&self, object: &Value) -> Value {
        let mut out = object.clone();
        for op in &self.ops {
            op.apply(&mut out);
        }
        out
    }
}

/// What the decision reads of a workload ([`Facts::of`] a `Value`): the webhook and the
/// controller's fallback hold read the same facts the same way.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Facts<'a> {
    /// `metadata.labels["serin.dev/canary"]`, when it is a string.
    pub canary: Option<&'a str>,
    /// `metadata.annotations["serin.dev/stable-hash"]`, when it is a string.
    pub stable_hash: Option<&'a str>,
    /// `metadata.annotations["serin.dev/update-strategy"]`, when it is a string.
    pub saved_strategy: Option<&'a str>,
    /// `spec.paused` is `true`.
    pub paused: bool,
    /// `spec.updateStrategy`, when the member is there (`null` included).
    pub strategy: Option<&'a Value>,
}

impl<'a> Facts<'a> {
    /// The facts of a workload given as JSON.
    pub fn of(workload: &'a Value) -> Facts<'a> {
        let metadata = |member: &str, key: &str| {
            workload
                .get("metadata")
                .and_then(|m| m.get(member))
                .and_then(|map| map.get(key))
                .and_then(Value::as_str)
        };
        let spec = |member: &str| workload.get("spec").and_then(|spec| spec.get(member));
        Facts {
            canary: metadata("labels", CANARY_LABEL),
            stable_hash: metadata("annotations", STABLE_HASH_ANNOTATION),
            saved_strategy: metadata("annotations", UPDATE_STRATEGY_ANNOTATION),
            paused: spec("paused").and_then(Value::as_bool).unwrap_or(false),
            strategy: spec("updateStrategy"),
        }
    }
}

/// Decides the hold for a workload of `kind` given as JSON. `namespace` and `name` name it in
/// the warning (the request's, when the object lacks them, e.g. `generateName` on CREATE).
pub fn decide(kind: Kind, workload: &Value, namespace: &str, name: &str) -> Decision {
    decide_facts(
        kind,
        &Facts::of(workload),
        || workload_template_hash(workload),
        namespace,
        name,
    )
}

/// [`decide`] from the facts of a workload; `revision` gives the hash of its pod template and
/// is called only for a labelled workload.
pub fn decide_facts(
    kind: Kind,
    facts: &Facts,
    revision: impl FnOnce() -> String,
    namespace: &str,
    name: &str,
) -> Decision {
    let Some(canary) = facts.canary else {
        return Decision::untouched(State::Unmanaged);
    };
    let stable = facts.stable_hash;
    let revision = revision();
    let held = stable.is_some_and(|stable| stable != revision);
    // Built only when there is something to say: most reviews of a held kind need no warning.
    let who = kind.lower();
    let held_warning = || {
        format!(
            "serin: {who}/{name} revision {revision} held for canary analysis (canary {namespace}/{canary}); the stable revision {} keeps serving",
            stable.unwrap_or_default()
        )
    };
    let released_warning = || {
        format!(
            "serin: {who}/{name} revision {revision} is the stable revision of canary {namespace}/{canary}; rolling out"
        )
    };

    if kind == Kind::Deployment {
        let paused = facts.paused;
        let mut ops = Vec::new();
        if paused != held {
            // `add` replaces an existing member too (RFC 6902 §4.1), so one op covers both cases.
            ops.push(HoldOp::add(PAUSED_PATH, Value::Bool(held)));
        }
        let (state, warning) = if held {
            (State::Held, Some(held_warning()))
        } else if paused && stable.is_some() {
            (State::Released, Some(released_warning()))
        } else if stable.is_some() {
            (State::Running, None)
        } else {
            (State::Unmanaged, None)
        };
        return Decision {
            state,
            ops,
            warning,
        };
    }

    let strategy = facts.strategy;
    let holding = kind.is_hold_strategy(strategy);
    let saved = facts.saved_strategy;
    let user_strategy = || Value::String(strategy.unwrap_or(&Value::Null).to_string());
    if held {
        let mut ops = Vec::new();
        if !holding {
            // A first hold, or a re-apply that wrote the user's strategy back: save what was
            // written and hold again.
            ops.push(HoldOp::add(UPDATE_STRATEGY_PATH, user_strategy()));
            ops.push(HoldOp::add(
                STRATEGY_PATH,
                kind.hold_strategy().unwrap_or_default(),
            ));
        } else if saved.is_none() {
            // The user's own strategy is the hold's (a DaemonSet with OnDelete): record it, so
            // the annotation is there exactly while serin holds.
            ops.push(HoldOp::add(UPDATE_STRATEGY_PATH, user_strategy()));
        }
        return Decision {
            state: State::Held,
            ops,
            warning: Some(held_warning()),
        };
    }
    let Some(saved) = saved else {
        let state = if stable.is_some() {
            State::Running
        } else {
            State::Unmanaged
        };
        return Decision::untouched(state);
    };
    let mut ops = Vec::new();
    if holding {
        // Our hold is still on: write back what the user had. A strategy the user wrote in the
        // same request as the revert is theirs and stays. An annotation that is not JSON (edited
        // by hand) restores the API server's default.
        match serde_json::from_str::<Value>(saved) {
            Ok(Value::Null) | Err(_) => {
                if strategy.is_some() {
                    ops.push(HoldOp::remove(STRATEGY_PATH));
                }
            }
            Ok(user) => ops.push(HoldOp::add(STRATEGY_PATH, user)),
        }
    }
    ops.push(HoldOp::remove(UPDATE_STRATEGY_PATH));
    Decision {
        state: State::Released,
        ops,
        warning: Some(released_warning()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::template_hash;

    #[test]
    fn annotation_path_is_the_escaped_constant() {
        assert_eq!(
            UPDATE_STRATEGY_PATH,
            format!(
                "/metadata/annotations/{}",
                UPDATE_STRATEGY_ANNOTATION.replace('/', "~1")
            )
        );
    }

    #[test]
    fn kinds_round_trip_by_name() {
        for k in Kind::ALL {
            assert_eq!(Kind::from_name(k.as_str()), Some(k));
        }
        assert_eq!(Kind::from_name("ReplicaSet"), None);
    }

    #[test]
    fn hold_strategies_are_recognised_whatever_else_is_defaulted() {
        assert!(Kind::DaemonSet.is_hold_strategy(Kind::DaemonSet.hold_strategy().as_ref()));
        assert!(Kind::StatefulSet.is_hold_strategy(Some(&json!(
            {"type": "RollingUpdate", "rollingUpdate": {"partition": HOLD_PARTITION, "maxUnavailable": 1}}
        ))));
        assert!(!Kind::StatefulSet.is_hold_strategy(Some(&json!(
            {"type": "RollingUpdate", "rollingUpdate": {"partition": 3}}
        ))));
        assert!(!Kind::DaemonSet.is_hold_strategy(None));
    }

    #[test]
    fn apply_adds_replaces_and_removes() {
        let template = json!({"spec": {"containers": [{"name": "a", "image": "a:2"}]}});
        let stable =
            template_hash(&json!({"spec": {"containers": [{"name": "a", "image": "a:1"}]}}));
        let ds = json!({"kind": "DaemonSet",
            "metadata": {"labels": {CANARY_LABEL: "a"}, "annotations": {STABLE_HASH_ANNOTATION: stable}},
            "spec": {"template": template, "updateStrategy": {"type": "RollingUpdate"}}});
        let d = decide(Kind::DaemonSet, &ds, "ns", "a");
        let held = d.applied(&ds);
        assert_eq!(held["spec"]["updateStrategy"], json!({"type": "OnDelete"}));
        assert_eq!(
            held["metadata"]["annotations"][UPDATE_STRATEGY_ANNOTATION],
            r#"{"type":"RollingUpdate"}"#
        );
        let mut reverted = held.clone();
        reverted["metadata"]["annotations"][STABLE_HASH_ANNOTATION] =
            json!(workload_template_hash(&held));
        let d = decide(Kind::DaemonSet, &reverted, "ns", "a");
        let released = d.applied(&reverted);
        assert_eq!(
            released["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate"})
        );
        assert!(
            released["metadata"]["annotations"]
                .get(UPDATE_STRATEGY_ANNOTATION)
                .is_none()
        );
    }
}
