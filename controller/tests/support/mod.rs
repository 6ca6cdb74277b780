//! Shared set-up for the controller's tests on the in-memory API server.

#![allow(dead_code)]

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, PostParams};
use serde_json::json;
use serin_api::Canary;
use serin_controller::{Config, telemetry::Telemetry};
use serin_testkit::apiserver::ApiServer;
// Not every test file uses all of them.
#[allow(unused_imports)]
pub use serin_testkit::support::{free_port, httproute_crd, wait_for};

pub async fn install_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in serin_api::crd::crds() {
        api.create(&PostParams::default(), &crd)
            .await
            .expect("create CRD");
    }
    let route: CustomResourceDefinition = serde_json::from_value(httproute_crd()).unwrap();
    api.create(&PostParams::default(), &route)
        .await
        .expect("create HTTPRoute CRD");
}

pub fn deployment(ns: &str, name: &str, image: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": name, "image": image, "ports": [{"containerPort": 8080}]}]}}}
    }))
    .unwrap()
}

/// Starts an API server with the CRDs, namespace `ns`, and a controller on it.
pub async fn start(ns: &str, config: Config) -> (ApiServer, Client, tokio::task::JoinHandle<()>) {
    let server = ApiServer::default();
    server
        .seed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
        .unwrap();
    let client = server.client();
    install_crds(&client).await;
    let handle = spawn_controller(client.clone(), config);
    (server, client, handle)
}

pub fn spawn_controller(client: Client, config: Config) -> tokio::task::JoinHandle<()> {
    let telemetry = Arc::new(Telemetry::new(&config.mesh_provider));
    tokio::spawn(async move {
        serin_controller::run(client, config, telemetry, std::future::pending())
            .await
            .unwrap()
    })
}

pub async fn canary_phase(api: &Api<Canary>, name: &str) -> Option<String> {
    api.get(name)
        .await
        .ok()
        .and_then(|c| c.status)
        .and_then(|s| s.phase)
        .map(|p| p.as_str().to_string())
}
