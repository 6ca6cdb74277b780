//! `serin controller` end to end, as a cluster would run it: the in-memory API server (served
//! over HTTP), `serin webhook` holding new revisions over real TLS, a real Prometheus scraping two
//! `serin demo-app` instances labelled as the stable and the canary pods, and generated traffic.
//! A healthy release is promoted; a release failing 20% of requests is rolled back with the
//! reason in the Canary's events.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use serin_api::Canary;
use serin_api::labels::STABLE_HASH_ANNOTATION;
mod cluster_support;

use cluster_support::{demo_app, serin, serve, wait_until, webhook, webhook_configurations};
use serin_testkit::ApiServer;
use serin_testkit::prometheus::{Prometheus, Target};
use serin_testkit::support::{free_port, httproute_crd};

const NS: &str = "prod";

/// Prometheus scraping the stable and canary apps every second, with the labels the builtin
/// `kubernetes`/`gatewayapi` queries select on (pod names of `web` and `web-canary`).
/// Prometheus scraping the two demo apps, labelled as the pods of `web` and `web-canary`.
async fn prometheus(dir: &Path, stable: u16, canary: u16) -> Prometheus {
    let stable = Target {
        address: format!("127.0.0.1:{stable}"),
        labels: &[
            ("kubernetes_namespace", NS),
            ("kubernetes_pod_name", "web-6d8f7c9b5-a1b2c"),
        ],
    };
    let canary = Target {
        address: format!("127.0.0.1:{canary}"),
        labels: &[
            ("kubernetes_namespace", NS),
            ("kubernetes_pod_name", "web-canary-7f9c8d6b4-z9y8x"),
        ],
    };
    Prometheus::start(dir, "1s", &[stable, canary]).await
}

fn template(image: &str) -> Value {
    json!({"metadata": {"labels": {"app": "web"}},
           "spec": {"containers": [{"name": "web", "image": image, "ports": [{"containerPort": 9898}]}]}})
}

/// Like the seed `podinfo` Canary, with short intervals.
fn canary() -> Value {
    json!({
        "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {
            "provider": "gatewayapi:v1",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "service": {"port": 80, "targetPort": 9898, "gatewayRefs": [{"name": "public", "namespace": "infra"}]},
            "analysis": {"interval": "3s", "threshold": 2, "maxWeight": 50, "stepWeight": 25,
                "metrics": [
                    {"name": "request-success-rate", "interval": "15s", "thresholdRange": {"min": 99}},
                    {"name": "request-duration", "interval": "15s", "thresholdRange": {"max": 500}}
                ]}
        }
    })
}

async fn phase(canaries: &Api<Canary>) -> Option<String> {
    canaries
        .get("web")
        .await
        .ok()?
        .status?
        .phase
        .map(|p| p.as_str().to_string())
}

/// Sends ~40 requests/s to each app until dropped.
fn load(stable: u16, canary: u16) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        loop {
            for port in [stable, canary] {
                let _ = client.get(format!("http://127.0.0.1:{port}/")).send().await;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_release_is_promoted_and_failing_release_rolled_back() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let (stable_port, canary_port) = (free_port(), free_port());
    let _stable = demo_app(stable_port, "v1", 0.0);
    let mut canary_app = demo_app(canary_port, "v2", 0.0);
    let prom = prometheus(dir.path(), stable_port, canary_port).await;
    let load = load(stable_port, canary_port);

    // The API server, with the CRDs, webhook configurations and the app's Deployment.
    let api = ApiServer::default();
    for crd in serin_api::crd::crds() {
        api.seed(serde_json::to_value(crd).unwrap()).unwrap();
    }
    api.seed(httproute_crd()).unwrap();
    api.seed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}))
        .unwrap();
    let (mutating, validating) = webhook_configurations();
    api.seed(mutating).unwrap();
    api.seed(validating).unwrap();
    let kubeconfig = serve(&api, dir.path()).await;
    let client = api.client();

    // serin webhook: self-signed, writes its CA into the configurations.
    let _webhook = webhook(&api, &kubeconfig).await;

    // serin controller.
    let controller_port = free_port();
    let _controller = serin(&[
        "controller",
        "--kubeconfig",
        &kubeconfig,
        "--metrics-server",
        &prom.url,
        "--listen",
        &format!("127.0.0.1:{controller_port}"),
    ]);

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let canaries: Api<Canary> = Api::namespaced(client.clone(), NS);
    let web: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": NS},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": template("ghcr.io/example/web:1")}
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &web)
        .await
        .unwrap();
    let canary_obj: Canary = serde_json::from_value(canary()).unwrap();
    canaries
        .create(&PostParams::default(), &canary_obj)
        .await
        .unwrap();
    wait_until("Initialized", Duration::from_secs(60), || async {
        phase(&canaries).await.as_deref() == Some("Initialized")
    })
    .await;
    let stable_hash = deployments
        .get("web")
        .await
        .unwrap()
        .metadata
        .annotations
        .unwrap()[STABLE_HASH_ANNOTATION]
        .clone();

    // Release 2: held by the webhook in the same request, analysed, promoted.
    let update = json!({"spec": {"template": template("ghcr.io/example/web:2")}});
    let held = deployments
        .patch("web", &PatchParams::default(), &Patch::Merge(&update))
        .await
        .unwrap();
    assert_eq!(
        held.spec.as_ref().unwrap().paused,
        Some(true),
        "the webhook holds the new revision at admission"
    );
    assert_eq!(
        held.metadata.annotations.as_ref().unwrap()[STABLE_HASH_ANNOTATION],
        stable_hash
    );
    wait_until("Succeeded", Duration::from_secs(120), || async {
        phase(&canaries).await.as_deref() == Some("Succeeded")
    })
    .await;
    let web = deployments.get("web").await.unwrap();
    let spec = web.spec.as_ref().unwrap();
    assert_ne!(
        spec.paused,
        Some(true),
        "promoted: the stable Deployment rolls out"
    );
    assert_eq!(
        spec.template.spec.as_ref().unwrap().containers[0]
            .image
            .as_deref(),
        Some("ghcr.io/example/web:2")
    );
    assert_ne!(
        web.metadata.annotations.as_ref().unwrap()[STABLE_HASH_ANNOTATION],
        stable_hash
    );
    assert_eq!(
        deployments
            .get("web-canary")
            .await
            .unwrap()
            .spec
            .unwrap()
            .replicas,
        Some(0)
    );
    let status = canaries.get("web").await.unwrap().status.unwrap();
    let rate = status
        .metrics
        .iter()
        .find(|m| m.name == "request-success-rate")
        .expect("metric status");
    assert!(
        rate.value.is_some_and(|v| v >= 99.0),
        "success rate measured from Prometheus: {rate:?}"
    );

    // Release 3: the canary pods fail 20% of requests; rolled back after `threshold` failed checks.
    drop(std::mem::replace(
        &mut canary_app,
        demo_app(canary_port, "v3", 0.2),
    ));
    let update = json!({"spec": {"template": template("ghcr.io/example/web:3")}});
    deployments
        .patch("web", &PatchParams::default(), &Patch::Merge(&update))
        .await
        .unwrap();
    wait_until("Failed", Duration::from_secs(120), || async {
        phase(&canaries).await.as_deref() == Some("Failed")
    })
    .await;
    let web = deployments.get("web").await.unwrap();
    assert_eq!(
        web.spec.as_ref().unwrap().paused,
        Some(true),
        "the failed revision stays held; stable pods keep serving"
    );
    assert_eq!(
        deployments
            .get("web-canary")
            .await
            .unwrap()
            .spec
            .unwrap()
            .replicas,
        Some(0)
    );
    let notes: Vec<String> = api
        .objects("events.k8s.io/v1", "Event")
        .iter()
        .filter_map(|e| e["note"].as_str().map(String::from))
        .collect();
    let rollback = notes
        .iter()
        .find(|n| n.starts_with("Rolling back"))
        .unwrap_or_else(|| panic!("no rollback event in {notes:#?}"));
    assert!(
        rollback.contains("request-success-rate") && rollback.contains("< min 99"),
        "reason names the metric and its range: {rollback}"
    );

    // The controller's own telemetry keeps Flagger's series.
    let metrics = reqwest::get(format!("http://127.0.0.1:{controller_port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"flagger_canary_status{name="web",namespace="prod"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("flagger_canary_successes_total"),
        "{metrics}"
    );
    load.abort();
}
