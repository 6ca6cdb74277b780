//! The hold of a DaemonSet and a StatefulSet over real TLS: an image update is held with the
//! kind's update strategy (the user's saved in an annotation), and the promotion write gives the
//! user's strategy back.

mod common;

use std::sync::Arc;

use common::{apply, patch_of, review, warnings};
use serde_json::{Value, json};
use serin_api::hash::template_hash;
use serin_api::labels::{CANARY_LABEL, STABLE_HASH_ANNOTATION, UPDATE_STRATEGY_ANNOTATION};
use serin_webhook::MemoryCanaryIndex;

fn template(image: &str) -> Value {
    json!({"metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
           "spec": {"containers": [{"name": "web", "image": image, "resources": {}}]}})
}

fn workload(kind: &str, image: &str, strategy: Value) -> Value {
    let mut w = json!({
        "apiVersion": "apps/v1", "kind": kind,
        "metadata": {"name": "web", "namespace": "prod",
                     "labels": {"app": "web", CANARY_LABEL: "web"},
                     "annotations": {STABLE_HASH_ANNOTATION: template_hash(&template("web:1"))}},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template(image),
                 "updateStrategy": strategy}
    });
    if kind == "StatefulSet" {
        w["spec"]["replicas"] = json!(3);
        w["spec"]["serviceName"] = json!("web-headless");
    }
    w
}

async fn held_then_promoted(kind: &str, user: Value, held_strategy: Value) {
    let server = common::start(Arc::new(MemoryCanaryIndex::new())).await;
    let v1 = workload(kind, "web:1", user.clone());
    let v2 = workload(kind, "web:2", user.clone());
    let response = server
        .review(
            "/mutate",
            &review("apps", kind, "UPDATE", Some(v2.clone()), Some(v1)),
        )
        .await;
    assert_eq!(response["allowed"], true);
    assert_eq!(
        patch_of(&response),
        Some(json!([
            {"op": "add", "path": "/metadata/annotations/serin.dev~1update-strategy", "value": user.to_string()},
            {"op": "add", "path": "/spec/updateStrategy", "value": held_strategy},
        ]))
    );
    let revision = template_hash(&template("web:2"));
    let w = warnings(&response);
    assert!(
        w.len() == 1
            && w[0].starts_with(&format!(
                "serin: {}/web revision {revision} held for canary analysis (canary prod/web)",
                kind.to_lowercase()
            )),
        "{w:?}"
    );
    let held = apply(&v2, &response);

    let mut promoted = held.clone();
    promoted["metadata"]["annotations"][STABLE_HASH_ANNOTATION] = json!(revision);
    let response = server
        .review(
            "/mutate",
            &review("apps", kind, "UPDATE", Some(promoted.clone()), Some(held)),
        )
        .await;
    let released = apply(&promoted, &response);
    assert_eq!(released["spec"]["updateStrategy"], user);
    assert!(
        released["metadata"]["annotations"]
            .get(UPDATE_STRATEGY_ANNOTATION)
            .is_none()
    );
}

#[tokio::test]
async fn daemonset_is_held_with_ondelete() {
    held_then_promoted(
        "DaemonSet",
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
        json!({"type": "OnDelete"}),
    )
    .await;
}

#[tokio::test]
async fn statefulset_is_held_with_a_partition_above_every_ordinal() {
    held_then_promoted(
        "StatefulSet",
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 2147483647}}),
    )
    .await;
}
