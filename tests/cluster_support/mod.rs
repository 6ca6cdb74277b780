//! What the end-to-end tests of `serin controller` share: the real `serin` binary as a child
//! process, the in-memory API server served over HTTP with a kubeconfig, and `serin webhook`
//! holding revisions over real TLS once it has written its CA into the webhook configurations.

// Each test binary uses a different part of the helper.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use kube::api::Api;
use serde_json::{Value, json};
use serin_testkit::ApiServer;
use serin_testkit::support::{Proc, free_port, wait_for};

/// The webhook's Service, as the webhook configurations name it.
pub const SERVICE: &str = "serin-webhook.serin-system";

/// `serin ARGS…`, killed when dropped.
pub fn serin(args: &[&str]) -> Proc {
    Proc(
        Command::new(env!("CARGO_BIN_EXE_serin"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start serin"),
    )
}

/// `serin demo-app` on `port`, failing `error_rate` of its requests.
pub fn demo_app(port: u16, version: &str, error_rate: f64) -> Proc {
    serin(&[
        "demo-app",
        "--port",
        &port.to_string(),
        "--version",
        version,
        "--error-rate",
        &error_rate.to_string(),
    ])
}

/// Waits until `probe` is true (the testkit's `wait_for` with a boolean probe).
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    wait_for(timeout, what, || {
        let done = probe();
        async move { done.await.then_some(()) }
    })
    .await
}

/// Serves `api` over HTTP until the test ends; the path of a kubeconfig for it in `dir`.
pub async fn serve(api: &ApiServer, dir: &Path) -> String {
    let (addr, served) = api.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    // Served for the rest of the test process: the task ends with its runtime.
    drop(served);
    let kubeconfig = dir.join("kubeconfig");
    serin_testkit::apiserver::write_kubeconfig(&kubeconfig, addr).unwrap();
    kubeconfig.to_str().unwrap().to_string()
}

/// `serin webhook --self-signed` for the API server at `kubeconfig`, answering once its CA is in
/// the configurations and it accepts connections.
pub async fn webhook(api: &ApiServer, kubeconfig: &str) -> Proc {
    let port = free_port();
    let proc = serin(&[
        "webhook",
        "--self-signed",
        "--service",
        SERVICE,
        "--kubeconfig",
        kubeconfig,
        "--address",
        "127.0.0.1",
        "--port",
        &port.to_string(),
    ]);
    api.set_service_address(SERVICE, SocketAddr::from(([127, 0, 0, 1], port)));
    let configs: Api<MutatingWebhookConfiguration> = Api::all(api.client());
    wait_until(
        "the webhook's caBundle",
        Duration::from_secs(30),
        || async {
            configs
                .get("serin")
                .await
                .ok()
                .and_then(|c| c.webhooks?.first()?.client_config.ca_bundle.clone())
                .is_some()
        },
    )
    .await;
    wait_until("the webhook to serve", Duration::from_secs(30), || async {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
    .await;
    proc
}

/// The mutating (hold of labelled Deployments) and validating (Canary, MetricTemplate,
/// AlertProvider) configurations, as the chart installs them, with `failurePolicy: Fail`.
pub fn webhook_configurations() -> (Value, Value) {
    let (name, namespace) = SERVICE.split_once('.').unwrap();
    let hook = |hook: &str, path: &str, rules: Value, selector: Value| {
        json!({"name": hook, "admissionReviewVersions": ["v1"], "sideEffects": "None", "failurePolicy": "Fail",
               "timeoutSeconds": 5, "objectSelector": selector,
               "clientConfig": {"service": {"name": name, "namespace": namespace, "path": path, "port": 443}},
               "rules": rules})
    };
    (
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
               "metadata": {"name": "serin"},
               "webhooks": [hook("hold.deployments.serin.dev", "/mutate",
                   json!([{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["deployments"]}]),
                   json!({"matchExpressions": [{"key": "serin.dev/canary", "operator": "Exists"}]}))]}),
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
               "metadata": {"name": "serin"},
               "webhooks": [hook("validate.flagger.app.serin.dev", "/validate",
                   json!([{"apiGroups": ["flagger.app"], "apiVersions": ["v1beta1"], "operations": ["CREATE", "UPDATE"],
                           "resources": ["canaries", "metrictemplates", "alertproviders"]}]),
                   json!({}))]}),
    )
}
