//! The loadtester pattern end to end, as a user sets it up: a `rollout` webhook starts hey
//! against the canary in the real `serin loadtester`, and the Canary's only metric is the
//! loadtester's error rate over the metric's interval, read while the load keeps running. With
//! two real `serin demo-app` processes as primary and canary, a healthy release is promoted and
//! one failing 20% of requests is rolled back with the measured rate in the reason; once under
//! the real `serin controller` (in-memory API server, `serin webhook` holding revisions), once
//! through `serin run`.

mod local_support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use serin_api::Canary;
mod cluster_support;

use cluster_support::{demo_app, serin, serve, wait_until, webhook, webhook_configurations};
use serin_testkit::ApiServer;
use serin_testkit::support::{Proc, free_port, httproute_crd};

const NS: &str = "prod";

async fn serving(port: u16) {
    wait_until(
        &format!("127.0.0.1:{port} to accept"),
        Duration::from_secs(30),
        || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        },
    )
    .await;
}

/// `serin loadtester` with the chart's default flags (no shell).
async fn loadtester() -> (Proc, String) {
    let port = free_port();
    let p = serin(&[
        "loadtester",
        "--address",
        "127.0.0.1",
        "--port",
        &port.to_string(),
    ]);
    serving(port).await;
    (p, format!("http://127.0.0.1:{port}"))
}

/// The MetricTemplate as the README writes it.
fn template(loadtester: &str, key: &str) -> Value {
    json!({"apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
           "metadata": {"name": "load-error-rate", "namespace": NS},
           "spec": {"provider": {"type": "loadtester", "address": loadtester},
                    "query": format!("{{{{ namespace }}}}/{{{{ {key} }}}} error_rate")}})
}

/// The analysis: a rollout hook starting hey against the canary, the loadtester's error rate as
/// the only metric. No data (the first window of a fresh run) holds instead of failing.
fn analysis(loadtester: &str, canary_port: u16) -> Value {
    json!({"interval": "2s", "threshold": 2, "maxWeight": 50, "stepWeight": 25,
           "noDataPolicy": {"action": "halt", "limit": 10},
           "webhooks": [{"name": "load", "type": "rollout", "url": format!("{loadtester}/"),
                         "metadata": {"type": "cmd", "cmd": format!("hey -z 10m -q 25 -c 2 http://127.0.0.1:{canary_port}/")}}],
           "metrics": [{"name": "load-error-rate", "interval": "2s", "thresholdRange": {"max": 0.01},
                        "templateRef": {"name": "load-error-rate"}}]})
}

/// The error rate in a reason like `load-error-rate 0.2 > max 0.01`.
fn measured_rate(reason: &str) -> f64 {
    let at = reason
        .find("load-error-rate ")
        .unwrap_or_else(|| panic!("no metric in {reason:?}"));
    reason[at + "load-error-rate ".len()..]
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no value in {reason:?}"))
}

fn pod_template(image: &str) -> Value {
    json!({"metadata": {"labels": {"app": "web"}},
           "spec": {"containers": [{"name": "web", "image": image, "ports": [{"containerPort": 9898}]}]}})
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_promotes_on_scored_load_and_rolls_back_a_failing_canary() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let (stable_port, canary_port) = (free_port(), free_port());
    let _stable = demo_app(stable_port, "v1", 0.0);
    let mut canary_app = demo_app(canary_port, "v2", 0.0);
    serving(canary_port).await;
    let (_lt, lt_url) = loadtester().await;

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
    // `{{ target }}` as the README's first version wrote it: it reads the same runs.
    api.seed(template(&lt_url, "target")).unwrap();
    let kubeconfig = serve(&api, dir.path()).await;
    let client = api.client();

    let _webhook = webhook(&api, &kubeconfig).await;
    // No Prometheus: the loadtester is the only source of metrics.
    let _controller = serin(&[
        "controller",
        "--kubeconfig",
        &kubeconfig,
        "--metrics-server",
        "http://127.0.0.1:1",
        "--listen",
        &format!("127.0.0.1:{}", free_port()),
    ]);

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let canaries: Api<Canary> = Api::namespaced(client.clone(), NS);
    let web: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": NS},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": pod_template("ghcr.io/example/web:1")}
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &web)
        .await
        .unwrap();
    let canary: Canary = serde_json::from_value(json!({
        "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {
            "provider": "gatewayapi:v1",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "service": {"port": 80, "targetPort": 9898, "gatewayRefs": [{"name": "public", "namespace": "infra"}]},
            "analysis": analysis(&lt_url, canary_port)
        }
    }))
    .unwrap();
    canaries
        .create(&PostParams::default(), &canary)
        .await
        .unwrap();
    wait_until("Initialized", Duration::from_secs(60), || async {
        phase(&canaries).await.as_deref() == Some("Initialized")
    })
    .await;

    // Release 2, healthy: promoted on the load the rollout hook generates.
    let update = json!({"spec": {"template": pod_template("ghcr.io/example/web:2")}});
    deployments
        .patch("web", &PatchParams::default(), &Patch::Merge(&update))
        .await
        .unwrap();
    wait_until("Succeeded", Duration::from_secs(120), || async {
        phase(&canaries).await.as_deref() == Some("Succeeded")
    })
    .await;
    let status = canaries.get("web").await.unwrap().status.unwrap();
    let scored = status
        .metrics
        .iter()
        .find(|m| m.name == "load-error-rate")
        .expect("metric status");
    assert_eq!(
        scored.value,
        Some(0.0),
        "scored from the loadtester: {scored:?}"
    );

    // Release 3: the canary fails 20% of requests; the hook's run (still going) measures it.
    drop(std::mem::replace(
        &mut canary_app,
        demo_app(canary_port, "v3", 0.2),
    ));
    let update = json!({"spec": {"template": pod_template("ghcr.io/example/web:3")}});
    deployments
        .patch("web", &PatchParams::default(), &Patch::Merge(&update))
        .await
        .unwrap();
    wait_until("Failed", Duration::from_secs(120), || async {
        phase(&canaries).await.as_deref() == Some("Failed")
    })
    .await;
    let notes: Vec<String> = api
        .objects("events.k8s.io/v1", "Event")
        .iter()
        .filter_map(|e| e["note"].as_str().map(String::from))
        .collect();
    let rollback = notes
        .iter()
        .find(|n| n.starts_with("Rolling back"))
        .unwrap_or_else(|| panic!("no rollback event in {notes:#?}"));
    let rate = measured_rate(rollback);
    assert!(
        (0.1..=0.3).contains(&rate) && rollback.contains("> max 0.01"),
        "the reason carries the measured error rate: {rollback}"
    );
}

/// `serin run` with the canary's manifests, the same hook and template, and two demo apps.
fn serin_run(
    dir: &std::path::Path,
    lt_url: &str,
    canary_error_rate: f64,
) -> local_support::Outcome {
    let (stable_port, canary_port) = (free_port(), free_port());
    let _stable = demo_app(stable_port, "v1", 0.0);
    let _canary = demo_app(canary_port, "v2", canary_error_rate);
    let canary = json!({
        "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "service": {"port": 80},
                 "analysis": analysis(lt_url, canary_port)}
    });
    let files = dir.join("canary.json");
    std::fs::write(
        &files,
        format!("{canary}\n---\n{}\n", template(lt_url, "name")),
    )
    .unwrap();
    let args: Vec<String> = [
        "run",
        "-f",
        files.to_str().unwrap(),
        "--primary",
        &format!("http://127.0.0.1:{stable_port}"),
        "--canary",
        &format!("http://127.0.0.1:{canary_port}"),
        "--listen",
        &format!("127.0.0.1:{}", free_port()),
        "--ready-path",
        "/readyz",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    local_support::run(&args, Duration::from_secs(120))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serin_run_scores_the_loadtesters_load() {
    let dir = tempfile::tempdir().unwrap();
    let (_lt, lt_url) = loadtester().await;

    let healthy = serin_run(dir.path(), &lt_url, 0.0);
    assert_eq!(healthy.code, 0, "promoted:\n{}", healthy.stdout);
    let scored: Vec<f64> = healthy
        .of("tick")
        .iter()
        .filter_map(|t| t["metrics"][0]["value"].as_f64())
        .collect();
    assert!(
        !scored.is_empty() && scored.iter().all(|v| *v == 0.0),
        "every scored tick read the load: {scored:?}\n{}",
        healthy.stdout
    );

    // A new loadtester: the healthy run's hey (still going, 10m) would answer for this canary.
    let (_lt2, lt_url) = loadtester().await;
    let failing = serin_run(dir.path(), &lt_url, 0.2);
    assert_eq!(failing.code, 1, "rolled back:\n{}", failing.stdout);
    let message = failing.done()["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let rate = measured_rate(&message);
    assert!(
        (0.1..=0.3).contains(&rate),
        "the reason carries the measured error rate: {message}"
    );
}
