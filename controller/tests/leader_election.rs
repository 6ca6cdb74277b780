//! Two controllers with leader election on one in-memory API server: only the Lease holder acts;
//! when it dies the other takes the Lease and carries on.

mod support;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use serin_api::Canary;
use serin_controller::lease::{LeaseConfig, run_while_leading};
use serin_controller::{Config, telemetry::Telemetry};
use serin_testkit::apiserver::ApiServer;
use support::*;

const NS: &str = "prod";
const WAIT: Duration = Duration::from_secs(60);

fn replica(client: Client, identity: &str) -> tokio::task::JoinHandle<()> {
    let config = Config {
        instance: identity.into(),
        mesh_provider: "kubernetes".into(),
        ..Config::default()
    };
    let lease = LeaseConfig {
        duration: Duration::from_secs(2),
        renew_every: Duration::from_millis(300),
        ..LeaseConfig::new("default", "serin-leader-election", identity)
    };
    let telemetry = Arc::new(Telemetry::new("kubernetes"));
    tokio::spawn(async move {
        let controller =
            serin_controller::run(client.clone(), config, telemetry, std::future::pending());
        run_while_leading(client, lease, async {
            let _ = controller.await;
        })
        .await;
    })
}

/// Which controller instances recorded events.
fn reporters(api: &ApiServer) -> Vec<String> {
    let mut r: Vec<String> = api
        .objects("events.k8s.io/v1", "Event")
        .iter()
        .filter_map(|e| e["reportingInstance"].as_str().map(String::from))
        .collect();
    r.sort();
    r.dedup();
    r
}

async fn holder(client: &Client) -> Option<String> {
    Api::<Lease>::namespaced(client.clone(), "default")
        .get_opt("serin-leader-election")
        .await
        .ok()
        .flatten()?
        .spec?
        .holder_identity
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_acts_and_the_follower_takes_over() {
    let api = ApiServer::default();
    api.seed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}))
        .unwrap();
    let client = api.client();
    install_crds(&client).await;
    let a = replica(client.clone(), "replica-a");
    let leader = wait_for(WAIT, "a leader", || async { holder(&client).await }).await;
    assert_eq!(leader, "replica-a");
    let b = replica(client.clone(), "replica-b");

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let canaries: Api<Canary> = Api::namespaced(client.clone(), NS);
    deployments
        .create(&PostParams::default(), &deployment(NS, "web", "web:1"))
        .await
        .unwrap();
    let canary: Canary = serde_json::from_value(json!({
        "apiVersion": "flagger.app/v1beta1", "kind": "Canary", "metadata": {"name": "web", "namespace": NS},
        "spec": {"provider": "kubernetes", "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "service": {"port": 80}, "analysis": {"interval": "1s", "threshold": 2, "iterations": 3}}
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
    // Give the follower time in which it would have acted if it could.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        reporters(&api),
        ["replica-a"],
        "only the leader records events"
    );
    assert_eq!(holder(&client).await.as_deref(), Some("replica-a"));

    // The leader dies without releasing the Lease; the follower takes it once it expires.
    a.abort();
    let _ = a.await;
    wait_for(WAIT, "replica-b to lead", || async {
        (holder(&client).await.as_deref() == Some("replica-b")).then_some(())
    })
    .await;
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "web:2"}]}}}});
    deployments
        .patch("web", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
    wait_for(WAIT, "Succeeded under the new leader", || async {
        (canary_phase(&canaries, "web").await.as_deref() == Some("Succeeded")).then_some(())
    })
    .await;
    assert_eq!(reporters(&api), ["replica-a", "replica-b"]);
    b.abort();
}
