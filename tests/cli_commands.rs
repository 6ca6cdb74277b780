//! `serin abort|promote|approve` (the real binary) against a real controller on the in-memory API
//! server: the command writes its annotation over HTTP, the controller acts on it.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::post;
use k8s_openapi::api::apps::v1::Deployment;
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use serde_json::{Value, json};
use serin_api::{Canary, CanaryStatus};
use serin_controller::Config;
use serin_controller::telemetry::Telemetry;
use serin_testkit::ApiServer;

const NS: &str = "prod";
const WAIT: Duration = Duration::from_secs(60);

struct Cluster {
    server: ApiServer,
    client: Client,
    kubeconfig: String,
    _dir: tempfile::TempDir,
    _controller: tokio::task::JoinHandle<()>,
}

fn template(image: &str) -> Value {
    json!({"metadata": {"labels": {"app": "web"}},
           "spec": {"containers": [{"name": "web", "image": image, "ports": [{"containerPort": 8080}]}]}})
}

fn deployment(image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "web", "namespace": NS},
           "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                    "template": template(image)}})
}

fn revision(image: &str) -> String {
    serin_api::hash::workload_template_hash(&deployment(image))
}

/// API server (served over HTTP for the CLI), the CRDs, `web:1`, the Canary, and a controller
/// that sends its alerts to `slack`.
async fn cluster(analysis: Value, slack: &str) -> Cluster {
    let server = ApiServer::default();
    for crd in serin_api::crd::crds() {
        server.seed(serde_json::to_value(crd).unwrap()).unwrap();
    }
    server.seed(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "httproutes.gateway.networking.k8s.io"},
        "spec": {"group": "gateway.networking.k8s.io", "scope": "Namespaced",
                 "names": {"kind": "HTTPRoute", "plural": "httproutes", "singular": "httproute", "listKind": "HTTPRouteList"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    })).unwrap();
    server
        .seed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}))
        .unwrap();
    server.seed(deployment("web:1")).unwrap();
    server
        .seed(json!({
            "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
            "metadata": {"name": "web", "namespace": NS},
            "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                     "service": {"port": 80, "targetPort": 8080, "gatewayRefs": [{"name": "gw", "namespace": "infra"}]},
                     "analysis": analysis}
        }))
        .unwrap();
    let (addr, _) = server.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    serin_testkit::apiserver::write_kubeconfig(&path, addr).unwrap();
    let client = server.client();
    let config = Config {
        mesh_provider: "gatewayapi:v1".into(),
        slack_url: Some(slack.to_string()),
        ..Config::default()
    };
    let telemetry = Arc::new(Telemetry::new(&config.mesh_provider));
    let run_client = client.clone();
    let controller = tokio::spawn(async move {
        serin_controller::run(run_client, config, telemetry, std::future::pending())
            .await
            .unwrap()
    });
    Cluster {
        server,
        client,
        kubeconfig: path.to_str().unwrap().to_string(),
        _dir: dir,
        _controller: controller,
    }
}

impl Cluster {
    async fn serin(&self, args: &[&str]) -> String {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_serin"))
            .args(args)
            .args(["-n", NS, "--kubeconfig", &self.kubeconfig])
            .env_remove("KUBECONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(
            out.status.code(),
            Some(0),
            "serin {args:?}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    fn canaries(&self) -> Api<Canary> {
        Api::namespaced(self.client.clone(), NS)
    }

    async fn status(&self) -> CanaryStatus {
        self.canaries()
            .get("web")
            .await
            .unwrap()
            .status
            .unwrap_or_default()
    }

    /// Polls the status until `done` holds.
    async fn wait(&self, what: &str, done: impl Fn(&CanaryStatus) -> bool) -> CanaryStatus {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let st = self.status().await;
            if done(&st) {
                return st;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; status {st:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn release(&self, image: &str) {
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), NS);
        let patch = json!({"spec": {"template": template(image)}});
        deployments
            .patch("web", &PatchParams::default(), &Patch::Merge(patch))
            .await
            .unwrap();
    }

    /// Notes of the events recorded on the Canary.
    fn events(&self) -> Vec<String> {
        self.server
            .objects("events.k8s.io/v1", "Event")
            .iter()
            .filter_map(|e| e["note"].as_str().map(String::from))
            .collect()
    }

    async fn route(&self) -> (u64, u64) {
        let routes: Api<DynamicObject> = Api::namespaced_with(
            self.client.clone(),
            NS,
            &ApiResource::from_gvk_with_plural(
                &kube::api::GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute"),
                "httproutes",
            ),
        );
        let r = routes.get("web").await.unwrap();
        let refs = &r.data["spec"]["rules"][0]["backendRefs"];
        (
            refs[0]["weight"].as_u64().unwrap_or(0),
            refs[1]["weight"].as_u64().unwrap_or(0),
        )
    }
}

/// A webhook endpoint that records the JSON bodies it gets and answers `status`.
async fn endpoint(status: StatusCode) -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let bodies = seen.clone();
    let app = axum::Router::new().route(
        "/",
        post(move |axum::Json(body): axum::Json<Value>| {
            let bodies = bodies.clone();
            async move {
                bodies.lock().unwrap().push(body);
                (status, "")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/"), seen)
}

/// The annotation value the CLI printed: `… (serin.dev/abort=VALUE)`.
fn written(stdout: &str, key: &str) -> String {
    let start = stdout.find(&format!("{key}=")).expect(stdout) + key.len() + 1;
    stdout[start..].trim_end().trim_end_matches(')').to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_rolls_back_the_running_analysis_and_a_late_promote_is_explained() {
    let (slack, alerts) = endpoint(StatusCode::OK).await;
    let c = cluster(
        json!({"interval": "1s", "threshold": 2, "maxWeight": 50, "stepWeight": 5}),
        &slack,
    )
    .await;
    c.wait("Initialized", |s| {
        s.phase.map(|p| p.as_str()) == Some("Initialized")
    })
    .await;
    c.release("web:2").await;
    c.wait("weight 5", |s| s.canary_weight >= 5).await;

    let out = c.serin(&["abort", "web"]).await;
    assert!(out.contains("abort requested"), "{out}");
    let value = written(&out, "serin.dev/abort");
    assert!(
        value.ends_with(&format!("@{}", revision("web:2"))),
        "{value}"
    );
    let st = c
        .wait("Failed", |s| s.phase.map(|p| p.as_str()) == Some("Failed"))
        .await;
    let reason = format!("Rolling back prod/web: aborted by serin.dev/abort={value}");
    assert_eq!(st.message.as_deref(), Some(reason.as_str()));
    assert_eq!(st.last_abort.as_deref(), Some(value.as_str()));
    assert_eq!(st.canary_weight, 0);
    assert!(
        st.canary_weight == 0 && st.last_applied_spec == Some(revision("web:2")),
        "{st:#?}"
    );
    assert_eq!(c.route().await, (100, 0));
    let canary: Api<Deployment> = Api::namespaced(c.client.clone(), NS);
    assert_eq!(
        canary
            .get("web-canary")
            .await
            .unwrap()
            .spec
            .unwrap()
            .replicas,
        Some(0)
    );
    assert!(c.events().contains(&reason), "{:#?}", c.events());
    let sent = alerts.lock().unwrap().clone();
    assert!(
        sent.iter().any(|a| a.to_string().contains(&reason)),
        "the error alert carries the reason: {sent:#?}"
    );

    // Nothing runs any more: a promote is used up with an explanation, nothing else happens.
    let out = c.serin(&["promote", "web"]).await;
    let value = written(&out, "serin.dev/promote");
    let st = c
        .wait("promote used", |s| {
            s.last_promote.as_deref() == Some(value.as_str())
        })
        .await;
    assert_eq!(st.phase.map(|p| p.as_str()), Some("Failed"));
    assert_eq!(
        st.message.as_deref(),
        Some(reason.as_str()),
        "status still explains the failure"
    );
    let ignored = format!(
        "Ignored serin.dev/promote={value} for prod/web: no analysis is running, the analysis of revision {} failed (serin retry starts a new one)",
        &revision("web:2")[..10]
    );
    assert!(c.events().contains(&ignored), "{:#?}", c.events());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_skips_the_remaining_steps() {
    let (slack, _) = endpoint(StatusCode::OK).await;
    let c = cluster(
        json!({"interval": "1s", "threshold": 2, "maxWeight": 50, "stepWeight": 5}),
        &slack,
    )
    .await;
    c.wait("Initialized", |s| {
        s.phase.map(|p| p.as_str()) == Some("Initialized")
    })
    .await;
    c.release("web:2").await;
    c.wait("weight 5", |s| s.canary_weight >= 5).await;
    let out = c.serin(&["promote", "web"]).await;
    let value = written(&out, "serin.dev/promote");
    let st = c
        .wait("Succeeded", |s| {
            s.phase.map(|p| p.as_str()) == Some("Succeeded")
        })
        .await;
    assert_eq!(st.last_promote.as_deref(), Some(value.as_str()));
    assert_eq!(st.last_promoted_spec, Some(revision("web:2")));
    let events = c.events();
    assert!(
        events
            .iter()
            .any(|e| e.contains(&format!("promoted by serin.dev/promote={value}"))),
        "{events:#?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| e == "Advance prod/web canary weight 50"),
        "promoted before the last step: {events:#?}"
    );
    assert_eq!(c.route().await, (100, 0));
}

/// How many times the controller recorded the event with this note (kube's event series).
fn times(server: &ApiServer, note: &str) -> u64 {
    server
        .objects("events.k8s.io/v1", "Event")
        .iter()
        .filter(|e| e["note"].as_str() == Some(note))
        .map(|e| {
            e.pointer("/series/count")
                .and_then(Value::as_u64)
                .unwrap_or(1)
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halt_holds_the_weight_until_approved() {
    let (slack, _) = endpoint(StatusCode::OK).await;
    let c = cluster(
        json!({"interval": "1s", "threshold": 2, "maxWeight": 50, "stepWeight": 10}),
        &slack,
    )
    .await;
    c.wait("Initialized", |s| {
        s.phase.map(|p| p.as_str()) == Some("Initialized")
    })
    .await;
    c.release("web:2").await;
    c.wait("weight 10", |s| s.canary_weight >= 10).await;
    let out = c.serin(&["halt", "web"]).await;
    assert!(out.contains("serin.dev/gate=halted"), "{out}");
    // The first halted tick tells the weight it holds; three ticks later it still holds it.
    let (weight, note) = wait_note(&c, "Halt prod/web advancement: serin.dev/gate=halted").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while times(&c.server, &note) < 3 {
        assert!(tokio::time::Instant::now() < deadline, "three halted ticks");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let st = c.status().await;
    assert_eq!(
        (st.canary_weight, st.phase.map(|p| p.as_str())),
        (weight, Some("Progressing"))
    );
    assert_eq!(c.route().await, (100 - weight as u64, weight as u64));
    c.serin(&["approve", "web"]).await;
    c.wait("Succeeded", |s| {
        s.phase.map(|p| p.as_str()) == Some("Succeeded")
    })
    .await;
}

/// Waits for an event starting with `prefix`; the weight it names and its full note.
async fn wait_note(c: &Cluster, prefix: &str) -> (i32, String) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(note) = c.events().into_iter().find(|n| n.starts_with(prefix)) {
            let weight = note
                .split("at canary weight ")
                .nth(1)
                .and_then(|r| r.split(' ').next())
                .and_then(|w| w.parse().ok())
                .expect("the halt event names the weight");
            return (weight, note);
        }
        assert!(tokio::time::Instant::now() < deadline, "no event {prefix}…");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_opens_the_confirm_promotion_gate_of_the_current_revision() {
    let (slack, _) = endpoint(StatusCode::OK).await;
    let (gate, asked) = endpoint(StatusCode::FORBIDDEN).await;
    let c = cluster(
        json!({"interval": "1s", "threshold": 2, "maxWeight": 10, "stepWeight": 10,
               "webhooks": [{"name": "ship", "type": "confirm-promotion", "url": gate}]}),
        &slack,
    )
    .await;
    c.wait("Initialized", |s| {
        s.phase.map(|p| p.as_str()) == Some("Initialized")
    })
    .await;
    c.release("web:2").await;
    c.wait("WaitingPromotion", |s| {
        s.phase.map(|p| p.as_str()) == Some("WaitingPromotion")
    })
    .await;
    assert!(!asked.lock().unwrap().is_empty());
    let out = c.serin(&["approve", "web"]).await;
    assert!(
        out.contains(&format!("serin.dev/gate=approved@{}", revision("web:2"))),
        "{out}"
    );
    let st = c
        .wait("Succeeded", |s| {
            s.phase.map(|p| p.as_str()) == Some("Succeeded")
        })
        .await;
    assert_eq!(st.approved_revision, Some(revision("web:2")));

    // The next release waits at the gate again: the approval was for web:2.
    c.release("web:3").await;
    c.wait("WaitingPromotion of web:3", |s| {
        s.phase.map(|p| p.as_str()) == Some("WaitingPromotion")
            && s.last_applied_spec == Some(revision("web:3"))
    })
    .await;
}
