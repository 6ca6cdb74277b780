//! How much the controller asks of the API server, and how much memory it holds, with many
//! Canaries: `serin controller` (the real binary) against the in-memory API server over HTTP.
//!
//! Usage: scale [CANARIES] (default 1000); the binary is $SERIN_BIN or target/release/serin.
//! Run through bench/controller.sh.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use serin_testkit::ApiServer;
use serin_testkit::support::{Proc, httproute_crd};

const NS: &str = "bench";
const INTERVAL_S: u64 = 5;

fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn count_phase(api: &ApiServer, phase: &str) -> usize {
    api.objects("flagger.app/v1beta1", "Canary")
        .iter()
        .filter(|c| c["status"]["phase"] == phase)
        .count()
}

async fn wait_phase(api: &ApiServer, phase: &str, n: usize, timeout: Duration) -> Duration {
    let start = Instant::now();
    while count_phase(api, phase) < n {
        if start.elapsed() > timeout {
            panic!(
                "only {} of {n} canaries reached {phase} in {timeout:?}",
                count_phase(api, phase)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    start.elapsed()
}

/// Requests by method and kind of path during `window`, per canary per tick.
async fn measure(api: &ApiServer, n: usize, window: Duration) -> (f64, f64, BTreeMap<String, u64>) {
    api.clear_requests();
    tokio::time::sleep(window).await;
    let mut by: BTreeMap<String, u64> = BTreeMap::new();
    for r in api.requests() {
        let kind = r.path.split('/').filter(|s| !s.is_empty()).rev().find(|s| {
            [
                "canaries",
                "deployments",
                "httproutes",
                "events",
                "services",
                "status",
            ]
            .contains(s)
        });
        let watch = if r.query.contains("watch=") {
            " (watch)"
        } else {
            ""
        };
        *by.entry(format!("{} {}{watch}", r.method, kind.unwrap_or("other")))
            .or_default() += 1;
    }
    let total = api.request_count() as f64;
    let events: u64 = by
        .iter()
        .filter(|(k, _)| k.contains("events"))
        .map(|(_, v)| v)
        .sum();
    let ticks = n as f64 * window.as_secs_f64() / INTERVAL_S as f64;
    (total / ticks, (total - events as f64) / ticks, by)
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let bin = std::env::var("SERIN_BIN").unwrap_or_else(|_| "target/release/serin".into());
    let api = ApiServer::default();
    for crd in serin_api::crd::crds() {
        api.seed(serde_json::to_value(crd).unwrap()).unwrap();
    }
    api.seed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}))
        .unwrap();
    api.seed(httproute_crd()).unwrap();
    let template = |image: &str, app: &str| json!({"metadata": {"labels": {"app": app}}, "spec": {"containers": [{"name": "app", "image": image}]}});
    for i in 0..n {
        let app = format!("app-{i}");
        api.seed(json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": app, "namespace": NS},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": app}}, "template": template("app:1", &app)}
        }))
        .unwrap();
        api.seed(json!({
            "apiVersion": "flagger.app/v1beta1", "kind": "Canary", "metadata": {"name": app, "namespace": NS},
            "spec": {"provider": "gatewayapi:v1", "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": app},
                     "service": {"port": 80, "gatewayRefs": [{"name": "gw"}]},
                     "analysis": {"interval": format!("{INTERVAL_S}s"), "threshold": 5, "stepWeight": 5, "maxWeight": 50}}
        }))
        .unwrap();
    }
    let (addr, _served) = api.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    serin_testkit::apiserver::write_kubeconfig(&kubeconfig, addr).unwrap();
    let controller = Command::new(&bin)
        .args(["controller", "--kubeconfig"])
        .arg(&kubeconfig)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--concurrency",
            "16",
            "--log-level",
            "error",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{bin}: {e} (build it: cargo build --release -p serin)"));
    let pid = controller.id();
    // Killed however this ends (a panic included): a leaked controller would load the machine.
    let controller = Proc(controller);

    let init = wait_phase(&api, "Initialized", n, Duration::from_secs(600)).await;
    let (idle, _, _) = measure(&api, n, Duration::from_secs(3 * INTERVAL_S)).await;
    let idle_rss = rss_kib(pid);

    // A new revision for every target: all canaries analyse at once.
    let client = api.client();
    let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(client, NS);
    for i in 0..n {
        let app = format!("app-{i}");
        let patch = json!({"spec": {"template": template("app:2", &app)}});
        deployments
            .patch(
                &app,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&patch),
            )
            .await
            .unwrap();
    }
    wait_phase(&api, "Progressing", n, Duration::from_secs(300)).await;
    let (busy, busy_no_events, by) = measure(&api, n, Duration::from_secs(3 * INTERVAL_S)).await;
    let busy_rss = rss_kib(pid);
    drop(controller);

    println!(
        "serin controller with {n} Canaries (interval {INTERVAL_S}s, gatewayapi router), in-memory API server over HTTP"
    );
    println!(
        "{:<44} {:>12}",
        "all Canaries Initialized after",
        format!("{:.1} s", init.as_secs_f64())
    );
    println!(
        "{:<44} {:>12.2}   (goal <= 2)",
        "API requests per canary per tick, idle", idle
    );
    println!(
        "{:<44} {:>12.2}   (goal <= 2)",
        "API requests per canary per tick, analysing", busy
    );
    println!(
        "{:<44} {:>12.2}",
        "  of which not Kubernetes events", busy_no_events
    );
    println!(
        "{:<44} {:>12}   (goal <= 200 MiB)",
        "controller RSS idle",
        format!("{:.1} MiB", idle_rss.0 as f64 / 1024.0)
    );
    println!(
        "{:<44} {:>12}   (goal <= 200 MiB)",
        "controller RSS analysing (peak)",
        format!("{:.1} MiB", busy_rss.1 as f64 / 1024.0)
    );
    println!("requests while analysing, by kind:");
    for (k, v) in by {
        println!("  {k:<40} {v:>8}");
    }
}
