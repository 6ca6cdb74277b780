//! The hold invariant over real TLS: the sequence of writes a canary-managed Deployment sees
//! (image update, scale while held, GitOps re-apply, revert, promotion), each answered by the
//! webhook and applied the way the API server applies a JSON Patch.

mod common;

use std::sync::Arc;

use common::{apply, patch_of, review, warnings};
use serde_json::{Value, json};
use serin_api::hash::{template_hash, template_hash_of};
use serin_api::labels::{CANARY_LABEL, STABLE_HASH_ANNOTATION};
use serin_webhook::MemoryCanaryIndex;

fn template(image: &str) -> Value {
    // What kubectl sends: nulls and empty objects that a typed client would omit.
    json!({"metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
           "spec": {"containers": [{"name": "web", "image": image, "resources": {}}]}})
}

fn deployment(image: &str, stable: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "prod",
                     "labels": {"app": "web", CANARY_LABEL: "web"},
                     "annotations": {STABLE_HASH_ANNOTATION: stable}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": template(image)}
    })
}

fn update(object: &Value, old: &Value) -> Value {
    review(
        "apps",
        "Deployment",
        "UPDATE",
        Some(object.clone()),
        Some(old.clone()),
    )
}

#[tokio::test]
async fn a_release_is_held_until_promotion() {
    let server = common::start(Arc::new(MemoryCanaryIndex::new())).await;
    // The controller records the stable hash from the typed object it reads.
    let typed: k8s_openapi::api::core::v1::PodTemplateSpec =
        serde_json::from_value(template("web:1")).unwrap();
    let stable = template_hash_of(&typed).unwrap();
    let v1 = deployment("web:1", &stable);

    // The adopted stable Deployment re-applied as is: runs, no patch, no warning.
    let response = server.review("/mutate", &update(&v1, &v1)).await;
    assert_eq!(response["allowed"], true);
    assert_eq!(patch_of(&response), None);
    assert!(warnings(&response).is_empty());

    // An image update: paused in the same request, with a warning kubectl prints.
    let v2 = deployment("web:2", &stable);
    let response = server.review("/mutate", &update(&v2, &v1)).await;
    assert_eq!(response["allowed"], true);
    assert_eq!(
        patch_of(&response),
        Some(json!([{"op": "add", "path": "/spec/paused", "value": true}]))
    );
    let revision = template_hash(&template("web:2"));
    let w = warnings(&response);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with(&format!(
            "serin: deployment/web revision {revision} held for canary analysis (canary prod/web)"
        )),
        "{w:?}"
    );
    let held = apply(&v2, &response);
    assert_eq!(held["spec"]["paused"], true);

    // A scale-only update while held: stays paused, nothing to patch.
    let mut scaled = held.clone();
    scaled["spec"]["replicas"] = json!(5);
    let response = server.review("/mutate", &update(&scaled, &held)).await;
    assert_eq!(patch_of(&response), None);
    assert_eq!(apply(&scaled, &response)["spec"]["paused"], true);
    assert_eq!(warnings(&response).len(), 1);

    // A GitOps re-apply of the manifest, which has no `paused`: paused again.
    let mut reapplied = v2.clone();
    reapplied["spec"].as_object_mut().unwrap().remove("paused");
    let response = server.review("/mutate", &update(&reapplied, &held)).await;
    assert_eq!(apply(&reapplied, &response)["spec"]["paused"], true);
    // ... and one that writes `paused: false` explicitly.
    let mut unpausing = held.clone();
    unpausing["spec"]["paused"] = json!(false);
    let response = server.review("/mutate", &update(&unpausing, &held)).await;
    assert_eq!(apply(&unpausing, &response)["spec"]["paused"], true);

    // A revert to the stable template: let through unpaused.
    let mut reverted = deployment("web:1", &stable);
    reverted["spec"]["paused"] = json!(true);
    let response = server.review("/mutate", &update(&reverted, &held)).await;
    assert_eq!(
        patch_of(&response),
        Some(json!([{"op": "add", "path": "/spec/paused", "value": false}]))
    );
    assert_eq!(apply(&reverted, &response)["spec"]["paused"], false);

    // The promotion write: stable-hash := the new revision and paused: false. Template and
    // stable hash agree, so it is let through as written.
    let mut promoted = deployment("web:2", &revision);
    promoted["spec"]["paused"] = json!(false);
    let response = server.review("/mutate", &update(&promoted, &held)).await;
    assert_eq!(patch_of(&response), None);
    assert!(warnings(&response).is_empty());
    // A promotion that only moves the annotation is unpaused by the webhook.
    let mut annotation_only = held.clone();
    annotation_only["metadata"]["annotations"][STABLE_HASH_ANNOTATION] = json!(revision);
    let response = server
        .review("/mutate", &update(&annotation_only, &held))
        .await;
    assert_eq!(apply(&annotation_only, &response)["spec"]["paused"], false);
}

#[tokio::test]
async fn unlabelled_unadopted_and_other_requests_pass_untouched() {
    let server = common::start(Arc::new(MemoryCanaryIndex::new())).await;
    let stable = template_hash(&template("web:1"));

    let mut unlabelled = deployment("web:2", &stable);
    unlabelled["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove(CANARY_LABEL);
    let response = server
        .review("/mutate", &update(&unlabelled, &unlabelled))
        .await;
    assert_eq!(response["allowed"], true);
    assert!(response.get("patch").is_none() && response.get("warnings").is_none());

    // Labelled but not adopted yet (no stable hash): no hold.
    let mut unadopted = deployment("web:2", &stable);
    unadopted["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("annotations");
    let create = review("apps", "Deployment", "CREATE", Some(unadopted), None);
    let response = server.review("/mutate", &create).await;
    assert_eq!(patch_of(&response), None);

    // DELETE, a subresource, another kind: allowed untouched.
    let labelled = deployment("web:2", &stable);
    let delete = review("apps", "Deployment", "DELETE", None, Some(labelled.clone()));
    let response = server.review("/mutate", &delete).await;
    assert_eq!(response["allowed"], true);
    assert_eq!(patch_of(&response), None);
    let mut scale = update(&labelled, &labelled);
    scale["request"]["subResource"] = json!("scale");
    assert_eq!(patch_of(&server.review("/mutate", &scale).await), None);
    let pod = review(
        "",
        "Pod",
        "CREATE",
        Some(json!({"metadata": {"name": "p"}})),
        None,
    );
    assert_eq!(server.review("/mutate", &pod).await["allowed"], true);
}
