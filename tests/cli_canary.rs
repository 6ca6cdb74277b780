//! `serin status`, `serin wait` and the annotation commands, run as the real binary against the
//! in-memory API server served over HTTP.

use std::process::Stdio;
use std::time::Duration;

use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use serin_api::Canary;
use serin_testkit::ApiServer;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

const NS: &str = "shop";

struct Cluster {
    api: ApiServer,
    kubeconfig: String,
    _dir: tempfile::TempDir,
}

fn deployment(image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "web", "namespace": NS},
           "spec": {"selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"containers": [{"name": "web", "image": image}]}}}})
}

fn revision(image: &str) -> String {
    serin_api::hash::workload_template_hash(&deployment(image))
}

async fn cluster() -> Cluster {
    let api = ApiServer::default();
    for crd in serin_api::crd::crds() {
        api.seed(serde_json::to_value(crd).unwrap()).unwrap();
    }
    api.seed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}))
        .unwrap();
    api.seed(deployment("web:2")).unwrap();
    api.seed(json!({
        "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "service": {"port": 80},
                 "analysis": {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10,
                              "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}},
                                          {"name": "latency", "thresholdRange": {"max": 500}}]}},
        "status": {"phase": "Succeeded", "canaryWeight": 0, "failedChecks": 0,
                   "lastAppliedSpec": revision("web:1"), "lastPromotedSpec": revision("web:1")}
    }))
    .unwrap();
    let (addr, _) = api.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    serin_testkit::apiserver::write_kubeconfig(&path, addr).unwrap();
    Cluster {
        api,
        kubeconfig: path.to_str().unwrap().to_string(),
        _dir: dir,
    }
}

impl Cluster {
    fn serin(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_serin"));
        c.args(args)
            .args(["-n", NS, "--kubeconfig", &self.kubeconfig])
            .env_remove("KUBECONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        c
    }

    async fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.serin(args).output().await.unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    async fn set_status(&self, status: Value) {
        let canaries: Api<Canary> = Api::namespaced(self.api.client(), NS);
        canaries
            .patch_status(
                "web",
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": status })),
            )
            .await
            .unwrap();
    }

    fn annotations(&self) -> Value {
        self.api
            .objects("flagger.app/v1beta1", "Canary")
            .into_iter()
            .next()
            .unwrap()["metadata"]["annotations"]
            .clone()
    }
}

#[tokio::test]
async fn status_prints_phase_weight_checks_and_metrics() {
    let c = cluster().await;
    c.set_status(json!({"phase": "Progressing", "canaryWeight": 30, "failedChecks": 2,
        "metrics": [{"name": "request-success-rate", "outcome": "Pass", "value": 99.87, "message": ""}]}))
        .await;
    let (code, out, err) = c.run(&["status"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Progressing"), "{out}");
    assert!(out.contains("[###-------]  30%"), "{out}");
    assert!(out.contains("2/5"), "{out}");
    assert!(
        out.contains("99.87") && out.contains("range [99, ·]"),
        "{out}"
    );

    let (code, out, _) = c.run(&["status", "-A"]).await;
    assert_eq!(code, 0);
    assert!(
        out.starts_with("NAMESPACE") && out.contains("shop"),
        "{out}"
    );

    let (code, _, err) = c.run(&["status", "nope"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("Canary shop/nope not found"), "{err}");
}

#[tokio::test]
async fn status_watch_redraws_on_changes() {
    let c = cluster().await;
    let mut child = c.serin(&["status", "web", "-w"]).spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    let read_until = |needle: &'static str| {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        (needle, deadline)
    };
    let (needle, deadline) = read_until("Succeeded");
    while !seen.contains(needle) {
        let n = tokio::time::timeout_at(deadline, stdout.read(&mut buf))
            .await
            .expect("first table")
            .unwrap();
        assert!(n > 0, "status -w exited: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    c.set_status(json!({"phase": "Progressing", "canaryWeight": 20}))
        .await;
    let (needle, deadline) = read_until("[##--------]  20%");
    while !seen.contains(needle) {
        let n = tokio::time::timeout_at(deadline, stdout.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("redraw after the change: {seen}"))
            .unwrap();
        assert!(n > 0, "status -w exited: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.contains("Progressing"));
    child.kill().await.unwrap();
}

#[tokio::test]
async fn wait_ignores_the_previous_rollout_and_exits_0_on_promotion() {
    let c = cluster().await;
    // The previous rollout (web:1) failed; the Deployment already runs web:2: that failure is
    // not the answer, the waiter keeps waiting.
    c.set_status(json!({"phase": "Failed", "lastAppliedSpec": revision("web:1")}))
        .await;
    let waiter = c
        .serin(&["wait", "web", "--for", "promoted", "--timeout", "60s"])
        .spawn()
        .unwrap();
    c.set_status(
        json!({"phase": "Progressing", "canaryWeight": 10, "lastAppliedSpec": revision("web:2")}),
    )
    .await;
    c.set_status(
        json!({"phase": "Succeeded", "canaryWeight": 0, "lastPromotedSpec": revision("web:2")}),
    )
    .await;
    let out = waiter.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("canary shop/web promoted"), "{stdout}");
}

#[tokio::test]
async fn wait_exits_1_on_the_other_outcome_and_on_timeout() {
    let c = cluster().await;
    c.set_status(
        json!({"phase": "Failed", "lastAppliedSpec": revision("web:2"),
                        "message": "request-success-rate 91 < min 99"}),
    )
    .await;
    let (code, _, err) = c
        .run(&["wait", "web", "--for", "promoted", "--timeout", "30s"])
        .await;
    assert_eq!(code, 1);
    assert!(
        err.contains("failed: request-success-rate 91 < min 99"),
        "{err}"
    );
    let (code, out, _) = c
        .run(&["wait", "web", "--for", "failed", "--timeout", "30s"])
        .await;
    assert_eq!(code, 0);
    assert!(out.contains("failed"), "{out}");

    c.set_status(json!({"phase": "Progressing", "message": ""}))
        .await;
    let (code, _, err) = c
        .run(&["wait", "web", "--for", "promoted", "--timeout", "1s"])
        .await;
    assert_eq!(code, 1);
    assert!(err.contains("not promoted after 1s"), "{err}");

    let (code, _, err) = c
        .run(&["wait", "ghost", "--for", "promoted", "--timeout", "1s"])
        .await;
    assert_eq!(code, 1);
    assert!(
        err.contains("canary shop/ghost not found after 1s"),
        "{err}"
    );

    let (code, _, err) = c
        .run(&["wait", "web", "--for", "promoted", "--timeout", "soon"])
        .await;
    assert_eq!(code, 2, "clap rejects the flag");
    assert!(err.contains("--timeout"), "{err}");
}

#[tokio::test]
async fn operations_write_annotations() {
    let c = cluster().await;
    let (code, out, err) = c.run(&["retry", "web"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("retry requested"), "{out}");
    let first = c.annotations()["serin.dev/retry"]
        .as_str()
        .unwrap()
        .to_string();
    c.run(&["retry", "web"]).await;
    assert_ne!(
        c.annotations()["serin.dev/retry"].as_str().unwrap(),
        first,
        "each retry is a new value"
    );
    // Approve, promote and abort are bound to the target's current revision (web:2).
    let bound = format!("@{}", revision("web:2"));
    c.run(&["approve", "web"]).await;
    assert_eq!(
        c.annotations()["serin.dev/gate"],
        format!("approved{bound}")
    );
    c.run(&["halt", "web"]).await;
    assert_eq!(c.annotations()["serin.dev/gate"], "halted");
    c.run(&["promote", "web"]).await;
    let promote = c.annotations()["serin.dev/promote"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(promote.ends_with(&bound), "{promote}");
    c.run(&["abort", "web"]).await;
    let abort = c.annotations()["serin.dev/abort"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(abort.ends_with(&bound) && abort != promote, "{abort}");
    let (code, _, err) = c.run(&["abort", "ghost"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("not found"), "{err}");
}

#[tokio::test]
async fn kubectl_plugin_name_runs_the_same_commands() {
    let c = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("kubectl-serin");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_serin"), &plugin).unwrap();
    let out = Command::new(&plugin)
        .args(["status", "-n", NS, "--kubeconfig", &c.kubeconfig])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Succeeded"));
    let help = Command::new(&plugin).arg("--help").output().await.unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("kubectl serin"));
}
