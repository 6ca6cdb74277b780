//! A MetricTemplate of another provider than Prometheus, end to end: the controller reads the
//! template and its Secret, queries a local Datadog-shaped server with the keys, and the
//! values decide the analysis.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use serin_api::{Canary, MetricTemplate};
use serin_controller::Config;
use support::*;

const NS: &str = "prod";
const WAIT: Duration = Duration::from_secs(60);

#[derive(Clone, Default)]
struct Datadog {
    value: Arc<Mutex<f64>>,
    keys: Arc<Mutex<Vec<(String, String)>>>,
}

async fn query(State(dd): State<Datadog>, headers: HeaderMap) -> String {
    let h = |k: &str| {
        headers
            .get(k)
            .map(|v| v.to_str().unwrap_or("").to_string())
            .unwrap_or_default()
    };
    dd.keys
        .lock()
        .unwrap()
        .push((h("dd-api-key"), h("dd-application-key")));
    let v = *dd.value.lock().unwrap();
    json!({"status": "ok", "series": [{"pointlist": [[1_700_000_000_000u64, v]]}]}).to_string()
}

async fn datadog(dd: Datadog) -> String {
    let app = axum::Router::new()
        .route("/api/v1/query", get(query))
        .with_state(dd);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datadog_template_drives_promotion_and_rollback() {
    let dd = Datadog::default();
    *dd.value.lock().unwrap() = 0.2;
    let address = datadog(dd.clone()).await;
    let config = Config {
        mesh_provider: "gatewayapi:v1".into(),
        ..Config::default()
    };
    let (_server, client, _ctl) = start(NS, config).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "dd", "namespace": NS},
        "data": {"datadog_api_key": b64("api-1"), "datadog_application_key": b64("app-1")}
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let templates: Api<MetricTemplate> = Api::namespaced(client.clone(), NS);
    let template: MetricTemplate = serde_json::from_value(json!({
        "apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
        "metadata": {"name": "errors", "namespace": NS},
        "spec": {"provider": {"type": "datadog", "address": address, "secretRef": {"name": "dd"}},
                 "query": "avg:errors{service:{{ target }}}"}
    }))
    .unwrap();
    templates
        .create(&PostParams::default(), &template)
        .await
        .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    deployments
        .create(&PostParams::default(), &deployment(NS, "web", "web:1"))
        .await
        .unwrap();
    let canaries: Api<Canary> = Api::namespaced(client.clone(), NS);
    let canary: Canary = serde_json::from_value(json!({
        "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "service": {"port": 80, "targetPort": 8080, "gatewayRefs": [{"name": "gw", "namespace": "infra"}]},
            "analysis": {"interval": "1s", "threshold": 1, "maxWeight": 20, "stepWeight": 10,
                         "metrics": [{"name": "errors", "templateRef": {"name": "errors"},
                                      "thresholdRange": {"max": 1}}]}
        }
    }))
    .unwrap();
    canaries
        .create(&PostParams::default(), &canary)
        .await
        .unwrap();
    wait_for(WAIT, "Initialized", || async {
        (canary_phase(&canaries, "web").await.as_deref() == Some("Initialized")).then_some(())
    })
    .await;

    let set_image = |image: &'static str| {
        let deployments = deployments.clone();
        async move {
            let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": image, "ports": [{"containerPort": 8080}]}]}}}});
            deployments
                .patch("web", &PatchParams::default(), &Patch::Merge(patch))
                .await
                .unwrap();
        }
    };
    set_image("web:2").await;
    wait_for(WAIT, "Succeeded with datadog at 0.2", || async {
        (canary_phase(&canaries, "web").await.as_deref() == Some("Succeeded")).then_some(())
    })
    .await;
    let status = canaries.get("web").await.unwrap().status.unwrap();
    let m = status.metrics.iter().find(|m| m.name == "errors").unwrap();
    assert_eq!(m.value, Some(0.2));
    assert!(
        dd.keys
            .lock()
            .unwrap()
            .iter()
            .all(|k| k == &("api-1".to_string(), "app-1".to_string())),
        "every query carries the Secret's keys"
    );

    *dd.value.lock().unwrap() = 5.0;
    set_image("web:3").await;
    wait_for(WAIT, "Failed with datadog at 5", || async {
        (canary_phase(&canaries, "web").await.as_deref() == Some("Failed")).then_some(())
    })
    .await;
    let status = canaries.get("web").await.unwrap().status.unwrap();
    let m = status.metrics.iter().find(|m| m.name == "errors").unwrap();
    assert_eq!(m.value, Some(5.0));
}
