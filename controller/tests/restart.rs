//! The interval survives restarts: a controller restarted mid-analysis waits out the rest of the
//! interval from the status's `lastTickTime` instead of ticking at once (which let six restarts
//! turn a 60 s analysis into 12 s).

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::post;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use serin_api::Canary;
use serin_controller::Config;
use support::*;

const NS: &str = "prod";
const WAIT: Duration = Duration::from_secs(60);
const INTERVAL: Duration = Duration::from_secs(4);

/// A rollout webhook that records when it was called.
async fn hook_server(calls: Arc<Mutex<Vec<Instant>>>) -> String {
    let app = axum::Router::new().route(
        "/",
        post(move || {
            let calls = calls.clone();
            async move {
                calls.lock().unwrap().push(Instant::now());
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_controller_waits_out_the_interval() {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let url = hook_server(calls.clone()).await;
    let config = Config {
        mesh_provider: "gatewayapi:v1".into(),
        ..Config::default()
    };
    let (_server, client, controller) = start(NS, config.clone()).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let canaries: Api<Canary> = Api::namespaced(client.clone(), NS);
    deployments
        .create(&PostParams::default(), &deployment(NS, "web", "web:1"))
        .await
        .unwrap();
    let canary: Canary = serde_json::from_value(json!({
        "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "service": {"port": 80, "gatewayRefs": [{"name": "gw", "namespace": "infra"}]},
            "analysis": {"interval": format!("{}s", INTERVAL.as_secs()), "threshold": 2, "maxWeight": 50, "stepWeight": 10,
                         "webhooks": [{"name": "load", "type": "rollout", "url": url, "timeout": "2s"}]}
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
    let update = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "web:2", "ports": [{"containerPort": 8080}]}]}}}});
    deployments
        .patch("web", &PatchParams::default(), &Patch::Merge(update))
        .await
        .unwrap();

    // The first step (weight 10) needs no analysis; the next tick calls the hook, advances to
    // weight 20 and writes that status with its tick time.
    wait_for(WAIT, "weight 20 recorded with its tick time", || async {
        let status = canaries.get("web").await.ok()?.status?;
        (status.canary_weight == 20 && status.last_tick_time.is_some()).then_some(())
    })
    .await;
    let first = calls
        .lock()
        .unwrap()
        .first()
        .copied()
        .expect("the hook ran");

    // Restart: a new controller, with none of the old one's memory.
    controller.abort();
    let _ = controller.await;
    let _restarted = spawn_controller(client.clone(), config);
    let second = wait_for(WAIT, "the next analysing tick", || {
        let calls = calls.clone();
        async move { calls.lock().unwrap().get(1).copied() }
    })
    .await;
    let gap = second - first;
    assert!(
        gap + Duration::from_millis(500) >= INTERVAL,
        "the restarted controller ticked {gap:?} after the last tick; the interval is {INTERVAL:?}"
    );
}
