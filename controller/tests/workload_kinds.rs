//! DaemonSet and StatefulSet targets through the whole loop on the in-memory API server, with
//! the real admission webhook (over TLS, called by the API server) holding new revisions:
//! adoption, hold, canary of the same kind, weights, promotion that gives the user's update
//! strategy back once the held workload rolled out; and a rollback that leaves it held.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::post;
use base64::Engine as _;
use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use serin_api::Canary;
use serin_api::hold::HOLD_PARTITION;
use serin_api::labels::{
    CANARY_LABEL, SCALE_TO_ZERO_NODE_SELECTOR, STABLE_HASH_ANNOTATION, UPDATE_STRATEGY_ANNOTATION,
};
use serin_controller::Config;
use serin_testkit::apiserver::ApiServer;
use serin_webhook::selfsigned::{dns_names, generate};
use serin_webhook::{AppState, MemoryCanaryIndex, ReloadingCert};
use support::*;

const NS: &str = "prod";
const WAIT: Duration = Duration::from_secs(60);
const SERVICE: &str = "serin-webhook";
const WEBHOOK_NS: &str = "serin-system";

/// An API server with the CRDs, the mutating webhook configuration of the chart (the three
/// kinds, objects labelled `serin.dev/canary`) pointing at a running `serin webhook`, and a
/// controller.
async fn start_with_webhook() -> (ApiServer, Client) {
    let server = ApiServer::default();
    server
        .seed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}))
        .unwrap();
    let client = server.client();
    install_crds(&client).await;
    let made = generate(dns_names(SERVICE, WEBHOOK_NS)).unwrap();
    server
        .seed(json!({
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": "serin"},
            "webhooks": [{"name": "hold.deployments.serin.dev", "admissionReviewVersions": ["v1"],
                "sideEffects": "None", "failurePolicy": "Fail",
                "clientConfig": {"service": {"name": SERVICE, "namespace": WEBHOOK_NS, "path": "/mutate", "port": 443},
                                 "caBundle": base64::engine::general_purpose::STANDARD.encode(&made.ca_pem)},
                "rules": [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                           "resources": ["deployments", "daemonsets", "statefulsets"], "scope": "Namespaced"}],
                "objectSelector": {"matchExpressions": [{"key": CANARY_LABEL, "operator": "Exists"}]}}]
        }))
        .unwrap();
    let cert = ReloadingCert::from_pem(&made.cert_pem, &made.key_pem).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serin_webhook::serve_tls(
        listener,
        cert.server_config().unwrap(),
        AppState::new(Arc::new(MemoryCanaryIndex::new())),
        std::future::pending(),
    ));
    server.set_service_address(&format!("{SERVICE}.{WEBHOOK_NS}"), addr);
    spawn_controller(
        client.clone(),
        Config {
            mesh_provider: "gatewayapi:v1".into(),
            ..Config::default()
        },
    );
    (server, client)
}

/// A rollout webhook that passes or fails on demand and counts its calls.
async fn hook_server(ok: Arc<AtomicBool>, calls: Arc<AtomicUsize>) -> String {
    let app = axum::Router::new().route(
        "/",
        post(move || {
            let ok = ok.clone();
            let calls = calls.clone();
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                if ok.load(Ordering::SeqCst) {
                    (StatusCode::OK, "ok")
                } else {
                    (StatusCode::INTERNAL_SERVER_ERROR, "error rate too high")
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/")
}

fn canary(kind: &str, hook_url: &str) -> Canary {
    serde_json::from_value(json!({
        "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": kind, "name": "web"},
            "service": {"port": 80, "targetPort": 8080, "gatewayRefs": [{"name": "gw", "namespace": "infra"}]},
            "analysis": {"interval": "1s", "threshold": 2, "maxWeight": 30, "stepWeight": 10,
                         "webhooks": [{"name": "load", "type": "rollout", "url": hook_url, "timeout": "2s"}]}
        }
    }))
    .unwrap()
}

fn template(image: &str) -> Value {
    json!({"metadata": {"labels": {"app": "web"}},
           "spec": {"containers": [{"name": "web", "image": image, "ports": [{"containerPort": 8080}]}]}})
}

fn image_patch(image: &str) -> Patch<Value> {
    Patch::Merge(json!({"spec": {"template": template(image)}}))
}

fn image_of(template: &k8s_openapi::api::core::v1::PodTemplateSpec) -> String {
    template.spec.as_ref().unwrap().containers[0]
        .image
        .clone()
        .unwrap()
}

fn annotation(meta: &impl ResourceExt, key: &str) -> Option<String> {
    meta.annotations().get(key).cloned()
}

async fn wait_phase(canaries: &Api<Canary>, phase: &str) {
    wait_for(WAIT, phase, || async {
        (canary_phase(canaries, "web").await.as_deref() == Some(phase)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_is_held_with_on_delete_analysed_and_promoted() {
    let url = hook_server(
        Arc::new(AtomicBool::new(true)),
        Arc::new(AtomicUsize::new(0)),
    )
    .await;
    let (_server, client) = start_with_webhook().await;
    let daemonsets: Api<DaemonSet> = Api::namespaced(client.clone(), NS);
    let canaries: Api<Canary> = Api::namespaced(client.clone(), NS);
    let user_strategy = json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}});
    let ds: DaemonSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template("web:1"),
                 "updateStrategy": user_strategy}
    }))
    .unwrap();
    daemonsets
        .create(&PostParams::default(), &ds)
        .await
        .unwrap();
    canaries
        .create(&PostParams::default(), &canary("DaemonSet", &url))
        .await
        .unwrap();

    // Adoption: label, stable hash, Services from the DaemonSet's selector.
    wait_phase(&canaries, "Initialized").await;
    let web = daemonsets.get("web").await.unwrap();
    assert_eq!(web.labels()[CANARY_LABEL], "web");
    let stable = annotation(&web, STABLE_HASH_ANNOTATION).expect("stable hash");
    let services: Api<Service> = Api::namespaced(client.clone(), NS);
    let canary_svc = services.get("web-canary").await.unwrap();
    assert_eq!(
        canary_svc.spec.unwrap().selector.unwrap()["app"],
        "web-canary"
    );

    // A new image is held by the webhook in the same write: OnDelete, the user's strategy saved.
    let held = daemonsets
        .patch("web", &PatchParams::default(), &image_patch("web:2"))
        .await
        .unwrap();
    let spec = held.spec.clone().unwrap();
    assert_eq!(
        serde_json::to_value(&spec.update_strategy).unwrap(),
        json!({"type": "OnDelete"})
    );
    let saved: Value =
        serde_json::from_str(&annotation(&held, UPDATE_STRATEGY_ANNOTATION).unwrap()).unwrap();
    assert_eq!(saved, user_strategy);
    let status = daemonsets.get("web").await.unwrap().status.unwrap();
    assert_eq!(
        (status.number_ready, status.updated_number_scheduled),
        (3, None),
        "the stable pods keep running, none replaced"
    );

    // The canary DaemonSet runs the new template under the canary label.
    let canary_ds = wait_for(WAIT, "canary daemonset", || async {
        daemonsets.get_opt("web-canary").await.ok().flatten()
    })
    .await;
    let cspec = canary_ds.spec.unwrap();
    assert_eq!(image_of(&cspec.template), "web:2");
    assert_eq!(cspec.selector.match_labels.unwrap()["app"], "web-canary");

    // Promotion: the user's strategy back, the new revision rolled out on every node, the
    // canary scaled to zero by its node selector.
    wait_phase(&canaries, "Succeeded").await;
    let web = daemonsets.get("web").await.unwrap();
    assert_ne!(annotation(&web, STABLE_HASH_ANNOTATION).unwrap(), stable);
    assert_eq!(annotation(&web, UPDATE_STRATEGY_ANNOTATION), None);
    let spec = web.spec.clone().unwrap();
    assert_eq!(
        serde_json::to_value(&spec.update_strategy).unwrap(),
        user_strategy
    );
    assert_eq!(image_of(&spec.template), "web:2");
    assert_eq!(web.status.unwrap().updated_number_scheduled, Some(3));
    let canary_ds = daemonsets.get("web-canary").await.unwrap();
    let node_selector = canary_ds.spec.unwrap().template.spec.unwrap().node_selector;
    assert_eq!(
        node_selector.unwrap()[SCALE_TO_ZERO_NODE_SELECTOR],
        "true",
        "canary scaled to zero"
    );
    assert_eq!(canary_ds.status.unwrap().desired_number_scheduled, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_is_held_by_partition_promoted_then_rolled_back() {
    let ok = Arc::new(AtomicBool::new(true));
    let url = hook_server(ok.clone(), Arc::new(AtomicUsize::new(0))).await;
    let (_server, client) = start_with_webhook().await;
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), NS);
    let canaries: Api<Canary> = Api::namespaced(client.clone(), NS);
    let user_strategy = json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}});
    let sts: StatefulSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"replicas": 3, "serviceName": "web-headless",
                 "selector": {"matchLabels": {"app": "web"}}, "template": template("web:1"),
                 "updateStrategy": user_strategy,
                 "volumeClaimTemplates": [{"metadata": {"name": "data"},
                     "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}
    }))
    .unwrap();
    sets.create(&PostParams::default(), &sts).await.unwrap();
    canaries
        .create(&PostParams::default(), &canary("StatefulSet", &url))
        .await
        .unwrap();
    wait_phase(&canaries, "Initialized").await;
    let stable_revision = sets
        .get("web")
        .await
        .unwrap()
        .status
        .unwrap()
        .current_revision;

    // Held by the webhook: a partition above every ordinal, even after a scale-up through /scale.
    let held = sets
        .patch("web", &PatchParams::default(), &image_patch("web:2"))
        .await
        .unwrap();
    let strategy = serde_json::to_value(&held.spec.as_ref().unwrap().update_strategy).unwrap();
    assert_eq!(strategy["rollingUpdate"]["partition"], HOLD_PARTITION);
    sets.patch_scale(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 4}})),
    )
    .await
    .unwrap();
    let status = sets.get("web").await.unwrap().status.unwrap();
    assert_eq!(
        (status.replicas, status.updated_replicas),
        (4, None),
        "the new pod starts on the stable revision"
    );
    assert_eq!(status.current_revision, stable_revision);

    // The canary StatefulSet: new template, its own governing Service and volumes.
    let canary_sts = wait_for(WAIT, "canary statefulset", || async {
        sets.get_opt("web-canary").await.ok().flatten()
    })
    .await;
    let cspec = canary_sts.spec.unwrap();
    assert_eq!(image_of(&cspec.template), "web:2");
    assert_eq!(cspec.service_name.as_deref(), Some("web-canary"));
    assert_eq!(
        cspec.volume_claim_templates.unwrap()[0]
            .metadata
            .name
            .as_deref(),
        Some("data")
    );

    wait_phase(&canaries, "Succeeded").await;
    let web = sets.get("web").await.unwrap();
    assert_eq!(annotation(&web, UPDATE_STRATEGY_ANNOTATION), None);
    assert_eq!(
        serde_json::to_value(&web.spec.as_ref().unwrap().update_strategy).unwrap(),
        user_strategy,
        "the user's strategy is back"
    );
    let status = web.status.unwrap();
    assert_eq!(status.updated_replicas, Some(4), "rolled out on every pod");
    assert_eq!(status.current_revision, status.update_revision);
    assert_eq!(
        sets.get("web-canary").await.unwrap().spec.unwrap().replicas,
        Some(0)
    );

    // A failing release: rolled back, the StatefulSet stays held on the failed template while
    // its pods keep the promoted revision.
    let promoted_revision = status.current_revision;
    ok.store(false, Ordering::SeqCst);
    sets.patch("web", &PatchParams::default(), &image_patch("web:3"))
        .await
        .unwrap();
    wait_phase(&canaries, "Failed").await;
    let web = sets.get("web").await.unwrap();
    let strategy = serde_json::to_value(&web.spec.as_ref().unwrap().update_strategy).unwrap();
    assert_eq!(strategy["rollingUpdate"]["partition"], HOLD_PARTITION);
    assert!(annotation(&web, UPDATE_STRATEGY_ANNOTATION).is_some());
    assert_eq!(image_of(&web.spec.as_ref().unwrap().template), "web:3");
    let status = web.status.unwrap();
    assert_eq!(status.updated_replicas, None);
    assert_eq!(status.current_revision, promoted_revision);
    assert_eq!(
        sets.get("web-canary").await.unwrap().spec.unwrap().replicas,
        Some(0)
    );
}
