//! The controller's whole loop on the in-memory API server: adoption, hold, canary,
//! weights, promotion; and a rollback driven by a failing rollout webhook.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::post;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::ApiResource;
use serde_json::json;
use serin_api::Canary;
use serin_api::labels::{CANARY_LABEL, STABLE_HASH_ANNOTATION};
use serin_controller::Config;
use support::*;

const NS: &str = "prod";
const WAIT: Duration = Duration::from_secs(60);

fn config() -> Config {
    Config {
        mesh_provider: "gatewayapi:v1".into(),
        ..Config::default()
    }
}

fn canary(hook_url: &str) -> Canary {
    serde_json::from_value(json!({
        "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "service": {"port": 80, "targetPort": 8080, "gatewayRefs": [{"name": "gw", "namespace": "infra"}]},
            "analysis": {"interval": "1s", "threshold": 2, "maxWeight": 30, "stepWeight": 10,
                         "webhooks": [{"name": "load", "type": "rollout", "url": hook_url, "timeout": "2s"}]}
        }
    }))
    .unwrap()
}

fn route_weights(route: &DynamicObject) -> (u64, u64) {
    let refs = &route.data["spec"]["rules"][0]["backendRefs"];
    (
        refs[0]["weight"].as_u64().unwrap_or(0),
        refs[1]["weight"].as_u64().unwrap_or(0),
    )
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

async fn set_image(api: &Api<Deployment>, image: &str) {
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": image, "ports": [{"containerPort": 8080}]}]}}}});
    api.patch("web", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
}

fn image(d: &Deployment) -> String {
    d.spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .image
        .clone()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopts_holds_advances_and_promotes() {
    let ok = Arc::new(AtomicBool::new(true));
    let calls = Arc::new(AtomicUsize::new(0));
    let url = hook_server(ok, calls.clone()).await;
    let (server, client, _ctl) = start(NS, config()).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let canaries: Api<Canary> = Api::namespaced(client.clone(), NS);
    let routes: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        NS,
        &ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute"),
            "httproutes",
        ),
    );
    deployments
        .create(&PostParams::default(), &deployment(NS, "web", "web:1"))
        .await
        .unwrap();
    canaries
        .create(&PostParams::default(), &canary(&url))
        .await
        .unwrap();

    // Adoption: label, stable hash, Services, route at 100/0.
    wait_for(WAIT, "Initialized", || async {
        (canary_phase(&canaries, "web").await.as_deref() == Some("Initialized")).then_some(())
    })
    .await;
    let web = deployments.get("web").await.unwrap();
    assert_eq!(web.metadata.labels.as_ref().unwrap()[CANARY_LABEL], "web");
    let stable = web.metadata.annotations.as_ref().unwrap()[STABLE_HASH_ANNOTATION].clone();
    let services: Api<Service> = Api::namespaced(client.clone(), NS);
    for s in ["web", "web-primary", "web-canary"] {
        assert!(services.get_opt(s).await.unwrap().is_some(), "service {s}");
    }
    let canary_svc = services.get("web-canary").await.unwrap();
    assert_eq!(
        canary_svc.spec.unwrap().selector.unwrap()["app"],
        "web-canary"
    );
    assert_eq!(route_weights(&routes.get("web").await.unwrap()), (100, 0));

    // A new image is held (no webhook here: the controller pauses it) and analysed.
    set_image(&deployments, "web:2").await;
    let canary_d = wait_for(WAIT, "canary deployment", || async {
        deployments.get_opt("web-canary").await.ok().flatten()
    })
    .await;
    assert_eq!(image(&canary_d), "web:2");
    let web = deployments.get("web").await.unwrap();
    assert_eq!(web.spec.as_ref().unwrap().paused, Some(true), "held");
    assert_eq!(
        web.metadata.annotations.as_ref().unwrap()[STABLE_HASH_ANNOTATION],
        stable,
        "stable hash unchanged while held"
    );

    // Weights advance 10, 20, 30 and the release is promoted.
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while canary_phase(&canaries, "web").await.as_deref() != Some("Succeeded") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for Succeeded; weights {seen:?}"
        );
        if let Ok(r) = routes.get("web").await {
            let w = route_weights(&r).1;
            if seen.last() != Some(&w) {
                seen.push(w);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for w in [10, 20, 30] {
        assert!(seen.contains(&w), "weight {w} seen in {seen:?}");
    }
    let web = deployments.get("web").await.unwrap();
    assert_eq!(image(&web), "web:2");
    assert_ne!(
        web.spec.as_ref().unwrap().paused,
        Some(true),
        "promoted: unpaused"
    );
    assert_ne!(
        web.metadata.annotations.as_ref().unwrap()[STABLE_HASH_ANNOTATION],
        stable,
        "stable hash moved"
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
    assert_eq!(route_weights(&routes.get("web").await.unwrap()), (100, 0));
    assert!(
        calls.load(Ordering::SeqCst) >= 3,
        "rollout webhook called each analysis tick"
    );
    // Every step keeps its own explanation (not folded into a series showing the first one).
    let notes: Vec<String> = server
        .objects("events.k8s.io/v1", "Event")
        .iter()
        .filter_map(|e| e["note"].as_str().map(String::from))
        .collect();
    for w in [10, 20, 30] {
        let text = format!("canary weight {w}");
        assert!(
            notes.iter().any(|n| n.ends_with(&text)),
            "event for weight {w} in {notes:#?}"
        );
    }
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_checks_roll_back_and_keep_the_stable_version() {
    let ok = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let url = hook_server(ok, calls).await;
    let (server, client, _ctl) = start(NS, config()).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let canaries: Api<Canary> = Api::namespaced(client.clone(), NS);
    deployments
        .create(&PostParams::default(), &deployment(NS, "web", "web:1"))
        .await
        .unwrap();
    canaries
        .create(&PostParams::default(), &canary(&url))
        .await
        .unwrap();
    wait_for(WAIT, "Initialized", || async {
        (canary_phase(&canaries, "web").await.as_deref() == Some("Initialized")).then_some(())
    })
    .await;

    set_image(&deployments, "web:bad").await;
    wait_for(WAIT, "Failed", || async {
        (canary_phase(&canaries, "web").await.as_deref() == Some("Failed")).then_some(())
    })
    .await;
    let web = deployments.get("web").await.unwrap();
    assert_eq!(
        web.spec.as_ref().unwrap().paused,
        Some(true),
        "stays held on the failed template"
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
    assert_eq!(status.canary_weight, 0);
    // The reason is recorded as an event on the Canary.
    let events = server.objects("events.k8s.io/v1", "Event");
    let notes: Vec<String> = events
        .iter()
        .filter_map(|e| e["note"].as_str().map(String::from))
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("error rate too high") || n.contains("load")),
        "rollback reason in events: {notes:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_controller_resumes_at_the_same_weight_and_failed_checks() {
    let ok = Arc::new(AtomicBool::new(true));
    let calls = Arc::new(AtomicUsize::new(0));
    let url = hook_server(ok.clone(), calls).await;
    let (_server, client, controller) = start(NS, config()).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let canaries: Api<Canary> = Api::namespaced(client.clone(), NS);
    let mut c = canary(&url);
    let analysis = c.spec.analysis.as_mut().unwrap();
    analysis.interval = Some("2s".into());
    analysis.threshold = Some(5);
    analysis.max_weight = Some(50);
    canaries.create(&PostParams::default(), &c).await.unwrap();
    deployments
        .create(&PostParams::default(), &deployment(NS, "web", "web:1"))
        .await
        .unwrap();
    wait_for(WAIT, "Initialized", || async {
        (canary_phase(&canaries, "web").await.as_deref() == Some("Initialized")).then_some(())
    })
    .await;
    set_image(&deployments, "web:2").await;

    // One failed check at weight 20, then the controller dies.
    wait_for(WAIT, "weight 20", || async {
        canaries
            .get("web")
            .await
            .ok()?
            .status
            .filter(|s| s.canary_weight == 20)
            .map(|_| ())
    })
    .await;
    ok.store(false, Ordering::SeqCst);
    let before = wait_for(WAIT, "a failed check", || async {
        canaries
            .get("web")
            .await
            .ok()?
            .status
            .filter(|s| s.failed_checks == 1)
    })
    .await;
    controller.abort();
    let _ = controller.await;
    ok.store(true, Ordering::SeqCst);
    assert_eq!(before.canary_weight, 20);

    // A new controller picks up from the status and the route: same weight, same count.
    let _again = spawn_controller(client.clone(), config());
    let after = wait_for(WAIT, "the next step", || async {
        canaries
            .get("web")
            .await
            .ok()?
            .status
            .filter(|s| s.canary_weight != 20)
    })
    .await;
    assert_eq!(
        after.canary_weight, 30,
        "resumed from 20, not from the start"
    );
    assert_eq!(
        after.failed_checks, 1,
        "failed checks kept across the restart"
    );
    wait_for(WAIT, "Succeeded", || async {
        (canary_phase(&canaries, "web").await.as_deref() == Some("Succeeded")).then_some(())
    })
    .await;
}
