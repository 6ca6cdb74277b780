//! Alerts end to end: the controller resolves `analysis.alerts` to AlertProviders (and their
//! Secrets) and delivers to a local chat endpoint; severity admits as documented; a Canary
//! without alerts uses the global notifier.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{OriginalUri, State};
use axum::routing::post;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use serin_api::{AlertProvider, Canary};
use serin_controller::Config;
use support::*;

const NS: &str = "shop";
const WAIT: Duration = Duration::from_secs(60);

type Inbox = Arc<Mutex<Vec<(String, Value)>>>;

/// A chat service: records (path, JSON body); a rollout webhook on `/hook` that always fails.
async fn chat_server() -> (String, Inbox) {
    let inbox: Inbox = Arc::default();
    let app =
        axum::Router::new()
            .route(
                "/hook",
                post(|| async { (axum::http::StatusCode::BAD_GATEWAY, "boom") }),
            )
            .fallback(
                |State(inbox): State<Inbox>,
                 OriginalUri(uri): OriginalUri,
                 Json(body): Json<Value>| async move {
                    inbox.lock().unwrap().push((uri.path().to_string(), body));
                    "ok"
                },
            )
            .with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), inbox)
}

fn received(inbox: &Inbox, path: &str) -> Vec<Value> {
    inbox
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _)| p == path)
        .map(|(_, b)| b.clone())
        .collect()
}

fn canary(base: &str, alerts: Value) -> Canary {
    serde_json::from_value(json!({
        "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "service": {"port": 80, "targetPort": 8080},
            "analysis": {"interval": "1s", "threshold": 1, "maxWeight": 30, "stepWeight": 10,
                         "alerts": alerts,
                         "webhooks": [{"name": "load", "type": "rollout", "url": format!("{base}/hook"), "timeout": "2s"}]}
        }
    }))
    .unwrap()
}

async fn new_revision(deployments: &Api<Deployment>) {
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "web:2", "ports": [{"containerPort": 8080}]}]}}}});
    deployments
        .patch("web", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_providers_filtered_by_severity() {
    let (base, inbox) = chat_server().await;
    let config = Config {
        cluster_name: "prod-eu".into(),
        ..Config::default()
    };
    let (_server, client, _ctl) = start(NS, config).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "chat-url", "namespace": NS},
        "data": {"address": base64(&format!("{base}/oncall"))}
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let providers: Api<AlertProvider> = Api::namespaced(client.clone(), NS);
    for p in [
        json!({"apiVersion": "flagger.app/v1beta1", "kind": "AlertProvider",
               "metadata": {"name": "oncall", "namespace": NS},
               "spec": {"type": "slack", "channel": "oncall", "secretRef": {"name": "chat-url"}}}),
        json!({"apiVersion": "flagger.app/v1beta1", "kind": "AlertProvider",
               "metadata": {"name": "feed", "namespace": NS},
               "spec": {"type": "webhook", "address": format!("{base}/feed")}}),
    ] {
        providers
            .create(&PostParams::default(), &serde_json::from_value(p).unwrap())
            .await
            .unwrap();
    }
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    deployments
        .create(&PostParams::default(), &deployment(NS, "web", "web:1"))
        .await
        .unwrap();
    let canaries: Api<Canary> = Api::namespaced(client.clone(), NS);
    let alerts = json!([
        {"name": "pager", "severity": "error", "providerRef": {"name": "oncall"}},
        // No severity: info and above (Flagger sends nothing here).
        {"name": "everything", "providerRef": {"name": "feed"}},
    ]);
    canaries
        .create(&PostParams::default(), &canary(&base, alerts))
        .await
        .unwrap();
    wait_for(WAIT, "an info alert in the feed", || async {
        (!received(&inbox, "/feed").is_empty()).then_some(())
    })
    .await;
    new_revision(&deployments).await;
    let pages = wait_for(WAIT, "an error alert for on-call", || async {
        let v = received(&inbox, "/oncall");
        (!v.is_empty()).then_some(v)
    })
    .await;
    // Each provider is sent to on its own: the feed's copy may arrive after the page.
    let feed = wait_for(WAIT, "the error alert in the feed too", || async {
        let v = received(&inbox, "/feed");
        v.iter().any(|a| a["severity"] == "error").then_some(v)
    })
    .await;
    for page in &pages {
        assert_eq!(page["attachments"][0]["color"], "danger", "{page}");
        assert_eq!(page["channel"], "oncall");
    }
    let first = &pages[0]["attachments"][0];
    assert_eq!(first["author_name"], "web.shop");
    let fields = first["fields"].to_string();
    assert!(
        fields.contains("prod-eu") && fields.contains("web:2"),
        "{fields}"
    );
    assert!(
        feed.iter().any(|a| a["severity"] == "info"),
        "info alerts reach a provider without severity: {feed:#?}"
    );
    assert!(
        feed.iter().any(|a| a["severity"] == "error"
            && a["images"][0] == "web:2"
            && a["cluster"] == "prod-eu"),
        "error alerts too: {feed:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_without_alerts_uses_the_global_notifier() {
    let (base, inbox) = chat_server().await;
    let config = Config {
        slack_url: Some(format!("{base}/global")),
        ..Config::default()
    };
    let (_server, client, _ctl) = start(NS, config).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    deployments
        .create(&PostParams::default(), &deployment(NS, "web", "web:1"))
        .await
        .unwrap();
    let canaries: Api<Canary> = Api::namespaced(client.clone(), NS);
    canaries
        .create(&PostParams::default(), &canary(&base, json!([])))
        .await
        .unwrap();
    let got = wait_for(WAIT, "an alert on the global notifier", || async {
        let v = received(&inbox, "/global");
        (!v.is_empty()).then_some(v)
    })
    .await;
    assert_eq!(got[0]["attachments"][0]["author_name"], "web.shop");
}

fn base64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}
