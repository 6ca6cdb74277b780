//! The hold of DaemonSets (`updateStrategy: OnDelete`) and StatefulSets (a partition above every
//! ordinal): the writes such a workload sees, each answered by [`hold`] (through `hold_value`) and applied the way the
//! API server applies a JSON Patch.

use serde_json::{Value, json};
use serin_api::hash::template_hash;
use serin_api::hold::HOLD_PARTITION;
use serin_api::labels::{CANARY_LABEL, STABLE_HASH_ANNOTATION, UPDATE_STRATEGY_ANNOTATION};

use super::*;

fn template(image: &str) -> Value {
    json!({"metadata": {"labels": {"app": "web"}},
           "spec": {"containers": [{"name": "web", "image": image}]}})
}

/// The user's own strategy of each kind, as the API server defaults it.
fn user_strategy(kind: &str) -> Value {
    match kind {
        "DaemonSet" => {
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        }
        _ => json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
    }
}

fn hold_strategy(kind: &str) -> Value {
    match kind {
        "DaemonSet" => json!({"type": "OnDelete"}),
        _ => json!({"type": "RollingUpdate", "rollingUpdate": {"partition": HOLD_PARTITION}}),
    }
}

fn workload(kind: &str, image: &str, stable_image: &str) -> Value {
    let mut w = json!({
        "apiVersion": "apps/v1", "kind": kind,
        "metadata": {"name": "web", "namespace": "prod",
                     "labels": {CANARY_LABEL: "web"},
                     "annotations": {STABLE_HASH_ANNOTATION: template_hash(&template(stable_image))}},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template(image),
                 "updateStrategy": user_strategy(kind)}
    });
    if kind == "StatefulSet" {
        w["spec"]["replicas"] = json!(3);
        w["spec"]["serviceName"] = json!("web-headless");
    }
    w
}

/// What the API server stores after the webhook's answer.
fn apply(object: &Value, verdict: &Verdict) -> Value {
    let patch: json_patch::Patch =
        serde_json::from_value(serde_json::to_value(&verdict.patch).unwrap()).unwrap();
    let mut out = object.clone();
    json_patch::patch(&mut out, &patch).unwrap();
    out
}

fn saved(object: &Value) -> Option<Value> {
    object["metadata"]["annotations"]
        .get(UPDATE_STRATEGY_ANNOTATION)
        .map(|s| serde_json::from_str(s.as_str().unwrap()).unwrap())
}

fn a_release_is_held_until_promotion(kind: &str) {
    let lower = kind.to_lowercase();
    // The adopted stable workload re-applied as is: runs, nothing to patch, no warning.
    let v1 = workload(kind, "web:1", "web:1");
    assert_eq!(hold_value(&v1, "prod", "web"), Verdict::allow());

    // An image update: held in the same request, the user's strategy saved, a warning.
    let v2 = workload(kind, "web:2", "web:1");
    let verdict = hold_value(&v2, "prod", "web");
    assert!(verdict.allowed);
    let held = apply(&v2, &verdict);
    assert_eq!(held["spec"]["updateStrategy"], hold_strategy(kind));
    assert_eq!(saved(&held), Some(user_strategy(kind)));
    let revision = template_hash(&template("web:2"));
    assert_eq!(verdict.warnings.len(), 1);
    assert!(
        verdict.warnings[0].starts_with(&format!(
            "serin: {lower}/web revision {revision} held for canary analysis (canary prod/web)"
        )),
        "{:?}",
        verdict.warnings
    );

    // Held already (the same object again, or a scale-only write): nothing to patch, warned.
    let mut scaled = held.clone();
    if kind == "StatefulSet" {
        scaled["spec"]["replicas"] = json!(7);
    }
    let verdict = hold_value(&scaled, "prod", "web");
    assert!(verdict.patch.is_empty(), "{:?}", verdict.patch);
    assert_eq!(verdict.warnings.len(), 1);

    // A GitOps re-apply writes a strategy of the user's back (here a changed one): held again,
    // and the annotation records what was applied.
    let mut reapplied = held.clone();
    let applied = match kind {
        "DaemonSet" => json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}}),
        _ => json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}),
    };
    reapplied["spec"]["updateStrategy"] = applied.clone();
    let rehold = apply(&reapplied, &hold_value(&reapplied, "prod", "web"));
    assert_eq!(rehold["spec"]["updateStrategy"], hold_strategy(kind));
    assert_eq!(saved(&rehold), Some(applied.clone()));

    // A revert to the stable template: the saved strategy is written back, annotation gone.
    let mut reverted = rehold.clone();
    reverted["spec"]["template"] = template("web:1");
    let verdict = hold_value(&reverted, "prod", "web");
    let released = apply(&reverted, &verdict);
    assert_eq!(released["spec"]["updateStrategy"], applied);
    assert_eq!(saved(&released), None);
    assert!(
        verdict.warnings[0].contains("rolling out"),
        "{:?}",
        verdict.warnings
    );
    // ... and applying that result again changes nothing.
    assert_eq!(hold_value(&released, "prod", "web"), Verdict::allow());

    // The promotion write (stable-hash := the new revision) releases the held workload with
    // the user's strategy.
    let mut promoted = held.clone();
    promoted["metadata"]["annotations"][STABLE_HASH_ANNOTATION] = json!(revision);
    let released = apply(&promoted, &hold_value(&promoted, "prod", "web"));
    assert_eq!(released["spec"]["updateStrategy"], user_strategy(kind));
    assert_eq!(saved(&released), None);
    assert_eq!(hold_value(&released, "prod", "web"), Verdict::allow());
}

#[test]
fn daemonset_release_is_held_until_promotion() {
    a_release_is_held_until_promotion("DaemonSet");
}

#[test]
fn statefulset_release_is_held_until_promotion() {
    a_release_is_held_until_promotion("StatefulSet");
}

#[test]
fn unlabelled_and_unadopted_workloads_are_untouched() {
    for kind in ["DaemonSet", "StatefulSet"] {
        let mut unlabelled = workload(kind, "web:2", "web:1");
        unlabelled["metadata"]["labels"] = json!({"app": "web"});
        assert_eq!(
            hold_value(&unlabelled, "prod", "web"),
            Verdict::allow(),
            "{kind}"
        );
        let mut unadopted = workload(kind, "web:2", "web:1");
        unadopted["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("annotations");
        assert_eq!(
            hold_value(&unadopted, "prod", "web"),
            Verdict::allow(),
            "{kind}"
        );
    }
}

#[test]
fn a_users_own_ondelete_is_recorded_and_given_back() {
    let mut ds = workload("DaemonSet", "web:2", "web:1");
    ds["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
    let verdict = hold_value(&ds, "prod", "web");
    let held = apply(&ds, &verdict);
    assert_eq!(held["spec"]["updateStrategy"], json!({"type": "OnDelete"}));
    assert_eq!(saved(&held), Some(json!({"type": "OnDelete"})));
    let mut reverted = held;
    reverted["spec"]["template"] = template("web:1");
    let released = apply(&reverted, &hold_value(&reverted, "prod", "web"));
    assert_eq!(
        released["spec"]["updateStrategy"],
        json!({"type": "OnDelete"})
    );
    assert_eq!(saved(&released), None);
}

#[test]
fn a_strategy_written_with_the_revert_is_kept() {
    let held = apply(
        &workload("StatefulSet", "web:2", "web:1"),
        &hold_value(&workload("StatefulSet", "web:2", "web:1"), "prod", "web"),
    );
    let mut reverted = held;
    reverted["spec"]["template"] = template("web:1");
    let own = json!({"type": "OnDelete"});
    reverted["spec"]["updateStrategy"] = own.clone();
    let released = apply(&reverted, &hold_value(&reverted, "prod", "web"));
    assert_eq!(released["spec"]["updateStrategy"], own);
    assert_eq!(saved(&released), None);
}
