//! Small pieces every integration test needs: child processes that die with the test, free
//! ports, polling for a condition, the real CRDs of the routers' projects (tests/fixtures/crds).

use std::future::Future;
use std::net::TcpListener;
use std::process::Child;
use std::time::Duration;

use serde_json::{Value, json};

/// A child process killed (and reaped) when the test ends, however it ends.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port free on 127.0.0.1 right now (the usual race with other binders is accepted in tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0")
}

/// Polls `probe` every 50 ms until it returns `Some`; panics naming `what` after `timeout`.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The Gateway API HTTPRoute CRD (v1.6.1, standard channel: v1 and v1beta1 served) that the Gateway
/// API router writes to, with its real schema so the API server prunes and validates as a cluster would.
pub fn httproute_crd() -> Value {
    crd_fixture("gateway-api-v1.6.1-httproutes.yaml")
}

/// A CRD kept under tests/fixtures/crds (README.md there says where each comes from), as a JSON value.
/// An `apiextensions.k8s.io/v1beta1` CRD is converted to v1 as kube-apiserver does (its single
/// `validation` schema goes to every version); a schema without a root `type` gets `type: object`, so
/// it is structural and pruned like a v1 CRD's, the stricter check.
pub fn crd_fixture(file: &str) -> Value {
    let path = format!("{}/../fixtures/crds/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let crd: Value =
        serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("parsing {path}: {e}"));
    if crd["apiVersion"] == "apiextensions.k8s.io/v1beta1" {
        v1beta1_as_v1(crd)
    } else {
        crd
    }
}

fn v1beta1_as_v1(mut crd: Value) -> Value {
    crd["apiVersion"] = json!("apiextensions.k8s.io/v1");
    let spec = crd["spec"].as_object_mut().expect("a CRD has a spec");
    let mut schema = spec
        .remove("validation")
        .and_then(|v| v.get("openAPIV3Schema").cloned())
        .unwrap_or_else(|| json!({"x-kubernetes-preserve-unknown-fields": true}));
    if schema.is_object() && schema.get("type").is_none() {
        schema["type"] = json!("object");
    }
    let columns: Vec<Value> = spec
        .remove("additionalPrinterColumns")
        .and_then(|c| c.as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .map(|mut c| {
            if let Some(p) = c.as_object_mut().and_then(|m| m.remove("JSONPath")) {
                c["jsonPath"] = p;
            }
            c
        })
        .collect();
    spec.remove("version");
    for v in spec
        .get_mut("versions")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        v["schema"] = json!({ "openAPIV3Schema": schema });
        v["additionalPrinterColumns"] = json!(columns);
    }
    crd
}

/// Pids of the live children of `parent` whose command line contains `needle` (from /proc), e.g.
/// the `loadtest-worker` a `serin` process started.
pub fn children_of(parent: u32, needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|&pid| parent_of(pid) == Some(parent) && command_line(pid).contains(needle))
        .collect()
}

/// Whether `pid` is still running (a zombie waiting to be reaped counts as gone).
pub fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| Some(stat.rsplit_once(')')?.1.split_whitespace().next()? != "Z"))
        .unwrap_or(false)
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid …`; comm may hold spaces, so split after its closing parenthesis.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn command_line(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .unwrap_or_default()
}
