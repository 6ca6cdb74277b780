//! An in-memory stand-in for kube-apiserver, for tests: usable in-process as a `kube::Client` transport
//! (`ApiServer::client`) or served over HTTP on loopback for kubectl and the `serin` binary. Its limits are in
//! docs/testkit-apiserver.md.

mod admission;
mod discovery;
pub mod error;
mod events;
mod http;
mod openapi;
pub mod patch;
pub mod registry;
pub mod schema;
pub mod selector;
pub mod store;
mod table;
mod workloads;
mod write;

use axum::Router;
use axum::http::Method;
use error::ApiError;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::{Store, key_of, meta_mut, now_rfc3339};

#[derive(Debug, Clone)]
pub struct Options {
    /// Changes kept for watches to resume from; older resourceVersions get 410 Expired.
    pub history_limit: usize,
    /// How often a watch that allows bookmarks gets one.
    pub bookmark_interval: Duration,
    /// Whether the Deployment controller imitation sets Deployment status.
    pub deployment_controller: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            history_limit: 10_000,
            bookmark_interval: Duration::from_secs(5),
            deployment_controller: true,
        }
    }
}

/// One request as the server saw it, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: String,
}

#[derive(Debug, Clone)]
struct Fault {
    method: Option<Method>,
    path: String,
    code: u16,
    remaining: u32,
}

#[derive(Default)]
struct Hooks {
    /// The most recent requests (at most `REQUEST_LOG_LIMIT`), so long benchmarks stay bounded.
    requests: std::collections::VecDeque<RequestRecord>,
    /// Every request since start or `clear_requests`, including those dropped from the log.
    request_count: u64,
    faults: Vec<Fault>,
}

const REQUEST_LOG_LIMIT: usize = 100_000;

pub(crate) struct Shared {
    store: Mutex<Store>,
    hooks: Mutex<Hooks>,
    services: Mutex<HashMap<String, SocketAddr>>,
    bookmark_interval: Duration,
    uid_seed: AtomicU64,
}

impl Shared {
    /// Logs the request; returns an injected fault's status code if one matches.
    fn record(&self, method: &Method, path: &str, query: &str, content_type: &str) -> Option<u16> {
        let mut h = self.hooks.lock().expect("hooks lock");
        h.request_count += 1;
        if h.requests.len() == REQUEST_LOG_LIMIT {
            h.requests.pop_front();
        }
        h.requests.push_back(RequestRecord {
            method: method.to_string(),
            path: path.into(),
            query: query.into(),
            content_type: content_type.into(),
        });
        let i = h
            .faults
            .iter()
            .position(|f| f.path == path && f.method.as_ref().is_none_or(|m| m == method))?;
        let code = h.faults[i].code;
        h.faults[i].remaining -= 1;
        if h.faults[i].remaining == 0 {
            h.faults.remove(i);
        }
        Some(code)
    }

    fn next_uid_seed(&self) -> u64 {
        self.uid_seed.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// Handle to one in-memory API server; clones share it.
#[derive(Clone)]
pub struct ApiServer {
    shared: Arc<Shared>,
}

impl Default for ApiServer {
    fn default() -> Self {
        Self::new(Options::default())
    }
}

impl ApiServer {
    pub fn new(opts: Options) -> Self {
        let (tx, _) = tokio::sync::broadcast::channel(opts.history_limit.clamp(64, 65_536));
        let store = Store::new(opts.history_limit, opts.deployment_controller, tx);
        let server = ApiServer {
            shared: Arc::new(Shared {
                store: Mutex::new(store),
                hooks: Mutex::new(Hooks::default()),
                services: Mutex::new(HashMap::new()),
                bookmark_interval: opts.bookmark_interval,
                uid_seed: AtomicU64::new(0),
            }),
        };
        for ns in ["default", "kube-system", "kube-public"] {
            let _ = server.seed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}, "status": {"phase": "Active"}}));
        }
        server
    }

    pub fn router(&self) -> Router {
        Router::new()
            .fallback(http::handle)
            .with_state(self.shared.clone())
    }

    /// A kube client that talks to this server in-process (no socket).
    pub fn client(&self) -> kube::Client {
        kube::Client::new(self.router(), "default")
    }

    /// Serves over plain HTTP until the task is dropped/aborted. `addr` port 0 picks a free port.
    pub async fn serve(
        &self,
        addr: SocketAddr,
    ) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let router = self.router();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok((local, task))
    }

    /// Inserts an object directly: no admission, status kept as given, server fields filled in.
    pub fn seed(&self, mut obj: Value) -> Result<Value, ApiError> {
        let mut store = self.shared.store.lock().expect("store lock");
        let av = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let kind = obj
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let rt = store.registry.by_kind(&av, &kind).cloned().ok_or_else(|| {
            ApiError::bad_request(format!(
                "no resource serves apiVersion {av:?} kind {kind:?}: apply its CRD first"
            ))
        })?;
        let name = store::meta_str(&obj, "name").to_string();
        if name.is_empty() {
            return Err(ApiError::invalid(format!(
                "{kind}: metadata.name: Required value"
            )));
        }
        let ns = if rt.namespaced {
            Some(store::meta_str(&obj, "namespace").to_string())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "default".into())
        } else {
            String::new()
        };
        let uid = store.new_uid();
        let m = meta_mut(&mut obj);
        m.entry("uid").or_insert(json!(uid));
        m.entry("creationTimestamp").or_insert(json!(now_rfc3339()));
        m.entry("generation").or_insert(json!(1));
        if rt.namespaced {
            m.insert("namespace".into(), json!(ns));
        }
        let key = key_of(&rt, &ns, &name);
        let had_status = obj.get("status").is_some();
        let stored = store.put(key.clone(), obj);
        if !had_status {
            store.sync_workload(&key);
        }
        Ok(store.get(&key).cloned().unwrap_or(stored))
    }

    /// Seeds every document of a (multi-document) YAML or JSON text.
    pub fn seed_yaml(&self, text: &str) -> Result<Vec<Value>, ApiError> {
        let docs: Vec<Value> = serde_saphyr::from_multiple(text)
            .map_err(|e| ApiError::bad_request(format!("seed YAML: {e}")))?;
        docs.into_iter()
            .filter(|d| d.is_object())
            .map(|d| self.seed(d))
            .collect()
    }

    /// The stored object, for assertions (`api_version` as in the object, e.g. "apps/v1").
    pub fn object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Option<Value> {
        let store = self.shared.store.lock().expect("store lock");
        let rt = store.registry.by_kind(api_version, kind)?;
        store.get(&key_of(rt, namespace, name)).cloned()
    }

    /// Every stored object of a kind, in all namespaces.
    pub fn objects(&self, api_version: &str, kind: &str) -> Vec<Value> {
        let store = self.shared.store.lock().expect("store lock");
        let Some(rt) = store.registry.by_kind(api_version, kind) else {
            return vec![];
        };
        store
            .list(&rt.group, &rt.plural, None)
            .into_iter()
            .cloned()
            .collect()
    }

    /// The logged requests, oldest first (the last 100 000).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared
            .hooks
            .lock()
            .expect("hooks lock")
            .requests
            .iter()
            .cloned()
            .collect()
    }

    /// How many requests arrived since start or the last `clear_requests`.
    pub fn request_count(&self) -> u64 {
        self.shared.hooks.lock().expect("hooks lock").request_count
    }

    pub fn clear_requests(&self) {
        let mut h = self.shared.hooks.lock().expect("hooks lock");
        h.requests.clear();
        h.request_count = 0;
    }

    /// The next `times` requests to exactly `path` (and `method`, if given) fail with `code` as a Status.
    pub fn inject_fault(&self, method: Option<Method>, path: &str, code: u16, times: u32) {
        if times > 0 {
            self.shared
                .hooks
                .lock()
                .expect("hooks lock")
                .faults
                .push(Fault {
                    method,
                    path: path.into(),
                    code,
                    remaining: times,
                });
        }
    }

    pub fn set_deployment_controller(&self, on: bool) {
        self.shared
            .store
            .lock()
            .expect("store lock")
            .deployment_controller = on;
    }

    /// Where admission calls to `clientConfig.service` `name.namespace` go (there is no cluster DNS).
    pub fn set_service_address(&self, service: &str, addr: SocketAddr) {
        let key = service.trim_end_matches(".svc").to_string();
        self.shared
            .services
            .lock()
            .expect("services lock")
            .insert(key, addr);
    }

    /// Forgets the watch history: watches resuming from an older resourceVersion get 410 Expired.
    pub fn compact(&self) {
        self.shared.store.lock().expect("store lock").compact();
    }

    pub fn resource_version(&self) -> u64 {
        self.shared.store.lock().expect("store lock").rv
    }
}

/// A kubeconfig whose current context points at `http://addr`, namespace `default`, no credentials.
pub fn kubeconfig(addr: SocketAddr) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: serin-testkit\n  cluster:\n    server: http://{addr}\n\
         contexts:\n- name: serin-testkit\n  context:\n    cluster: serin-testkit\n    user: serin-testkit\n    namespace: default\n\
         current-context: serin-testkit\nusers:\n- name: serin-testkit\n  user: {{}}\n"
    )
}

pub fn write_kubeconfig(path: &Path, addr: SocketAddr) -> std::io::Result<()> {
    std::fs::write(path, kubeconfig(addr))
}
