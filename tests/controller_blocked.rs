//! Never an unanalysed rollout: a Canary that `serin controller` cannot drive still holds its
//! target. Runs the real `serin webhook` (TLS, `failurePolicy: Fail`) and `serin controller`
//! against the in-memory API server:
//!
//! - Canary `web` uses `gatewayapi:v1`, but the cluster has no HTTPRoute CRD: the router's object
//!   cannot be written.
//! - Canary `api` uses `gloo`, which serin refuses; it was stored before the validating webhook
//!   existed (seeded), as on a cluster moving from Flagger.
//!
//! For both, `kubectl set image` leaves the Deployment paused on its stable pods, a Warning event
//! names the cause and the fix, and the Canary's `Accepted` condition is `False`.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use serin_api::Canary;
use serin_api::labels::{CANARY_LABEL, STABLE_HASH_ANNOTATION};
mod cluster_support;

use cluster_support::{SERVICE, serin, serve, webhook};
use serin_testkit::ApiServer;
use serin_testkit::support::{Proc, free_port, wait_for};

const NS: &str = "prod";

fn mutating_configuration() -> Value {
    let (name, namespace) = SERVICE.split_once('.').unwrap();
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
           "metadata": {"name": "serin"},
           "webhooks": [{"name": "hold.deployments.serin.dev", "admissionReviewVersions": ["v1"],
               "sideEffects": "None", "failurePolicy": "Fail", "timeoutSeconds": 5,
               "objectSelector": {"matchExpressions": [{"key": CANARY_LABEL, "operator": "Exists"}]},
               "clientConfig": {"service": {"name": name, "namespace": namespace, "path": "/mutate", "port": 443}},
               "rules": [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["deployments"]}]}]})
}

fn deployment(name: &str, image: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": NS},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": name, "image": image}]}}}
    }))
    .unwrap()
}

fn canary(name: &str, provider: &str) -> Value {
    json!({
        "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "provider": provider,
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "service": {"port": 80, "gatewayRefs": [{"name": "public", "namespace": "infra"}]},
            "analysis": {"interval": "2s", "threshold": 2, "stepWeight": 25,
                         "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}}]}
        }
    })
}

fn warning_notes(api: &ApiServer, reason: &str) -> Vec<String> {
    api.objects("events.k8s.io/v1", "Event")
        .iter()
        .filter(|e| e["reason"] == reason && e["type"] == "Warning")
        .filter_map(|e| e["note"].as_str().map(String::from))
        .collect()
}

/// Serves the API server; starts `serin webhook` and `serin controller` on it.
async fn cluster(api: &ApiServer, dir: &std::path::Path) -> Vec<Proc> {
    let kubeconfig = serve(api, dir).await;
    let webhook = webhook(api, &kubeconfig).await;
    let controller = serin(&[
        "controller",
        "--kubeconfig",
        &kubeconfig,
        "--listen",
        &format!("127.0.0.1:{}", free_port()),
    ]);
    vec![webhook, controller]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_the_controller_cannot_drive_keeps_its_target_held() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let api = ApiServer::default();
    for crd in serin_api::crd::crds() {
        api.seed(serde_json::to_value(crd).unwrap()).unwrap();
    }
    api.seed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}))
        .unwrap();
    api.seed(mutating_configuration()).unwrap();
    // Stored before any validating webhook: serin refuses gloo, but the object exists.
    api.seed(canary("api", "gloo")).unwrap();
    let client = api.client();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    for name in ["web", "api"] {
        deployments
            .create(&PostParams::default(), &deployment(name, "example/app:1"))
            .await
            .unwrap();
    }
    let _serin = cluster(&api, dir.path()).await;
    let canaries: Api<Canary> = Api::namespaced(client.clone(), NS);
    let web: Canary = serde_json::from_value(canary("web", "gatewayapi:v1")).unwrap();
    canaries.create(&PostParams::default(), &web).await.unwrap();

    for (name, reason, cause) in [
        (
            "web",
            "RouterUnavailable",
            "httproutes.gateway.networking.k8s.io/v1",
        ),
        ("api", "UnsupportedProvider", "gatewayapi"),
    ] {
        wait_for(Duration::from_secs(60), &format!("{name} adopted"), || {
            let deployments = deployments.clone();
            async move {
                let d = deployments.get(name).await.ok()?;
                d.metadata
                    .annotations?
                    .get(STABLE_HASH_ANNOTATION)
                    .map(drop)
            }
        })
        .await;
        wait_for(Duration::from_secs(30), &format!("{reason} event"), || {
            let notes = warning_notes(&api, reason);
            async move { (!notes.is_empty()).then_some(()) }
        })
        .await;
        let note = &warning_notes(&api, reason)[0];
        assert!(
            note.contains(cause) && note.contains(&format!("deployment {NS}/{name} is held")),
            "the event names the cause, the fix and the hold: {note}"
        );

        // kubectl set image: held in the same request, and it stays held.
        let update = json!({"spec": {"template": {"spec": {"containers": [{"name": name, "image": "example/app:2"}]}}}});
        let held = deployments
            .patch(name, &PatchParams::default(), &Patch::Strategic(&update))
            .await
            .unwrap();
        assert_eq!(
            held.spec.unwrap().paused,
            Some(true),
            "{name}: a new revision of a Canary's target never rolls out unanalysed"
        );
        let condition = canaries
            .get(name)
            .await
            .unwrap()
            .status
            .and_then(|s| s.conditions)
            .and_then(|c| c.into_iter().find(|c| c.type_ == "Accepted"));
        let condition = condition.expect("an Accepted condition");
        assert_eq!(condition.status, "False");
        assert_eq!(condition.reason.as_deref(), Some(reason));
    }
    // Nothing was created for the canary while nothing can be analysed.
    assert!(deployments.get_opt("web-canary").await.unwrap().is_none());
    assert!(deployments.get_opt("api-canary").await.unwrap().is_none());
}
