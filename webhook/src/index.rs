//! Who targets which workload: the validating webhook denies a Canary whose target is already
//! held by another Canary (two Canaries fighting over one Deployment is what Flagger only logs as
//! "Bad things will happen"). In a cluster the index is a reflector of Canaries; tests use the
//! in-memory one.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

/// The kind a `targetRef` without `kind` means (Flagger's default).
pub const DEFAULT_TARGET_KIND: &str = "Deployment";

/// Lookup of Canaries by target workload.
pub trait CanaryIndex: Send + Sync + 'static {
    /// Names of the Canaries in `namespace` whose `spec.targetRef` is `kind`/`name`.
    fn targeting(&self, namespace: &str, kind: &str, name: &str) -> Vec<String>;

    /// Whether the index has seen the cluster's state at least once (`/readyz`).
    fn is_ready(&self) -> bool {
        true
    }
}

/// The `(kind, name)` a Canary given as JSON targets, if it names one.
pub fn target_of(canary: &Value) -> Option<(&str, &str)> {
    let target = canary.pointer("/spec/targetRef")?;
    let name = target.get("name")?.as_str().filter(|n| !n.is_empty())?;
    let kind = target
        .get("kind")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .unwrap_or(DEFAULT_TARGET_KIND);
    Some((kind, name))
}

type Key = (String, String, String);

/// An index kept in memory, filled by hand (tests, `--standalone`).
#[derive(Debug, Default)]
pub struct MemoryCanaryIndex {
    by_target: RwLock<BTreeMap<Key, BTreeSet<String>>>,
}

impl MemoryCanaryIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that Canary `namespace/canary` targets `kind`/`name`.
    pub fn insert(&self, namespace: &str, canary: &str, kind: &str, name: &str) {
        let mut map = self.by_target.write().unwrap_or_else(|e| e.into_inner());
        map.entry((namespace.into(), kind.into(), name.into()))
            .or_default()
            .insert(canary.into());
    }

    /// Forgets Canary `namespace/canary`.
    pub fn remove(&self, namespace: &str, canary: &str) {
        let mut map = self.by_target.write().unwrap_or_else(|e| e.into_inner());
        map.retain(|(ns, _, _), canaries| {
            if ns == namespace {
                canaries.remove(canary);
            }
            !canaries.is_empty()
        });
    }
}

impl CanaryIndex for MemoryCanaryIndex {
    fn targeting(&self, namespace: &str, kind: &str, name: &str) -> Vec<String> {
        let map = self.by_target.read().unwrap_or_else(|e| e.into_inner());
        map.get(&(namespace.into(), kind.into(), name.into()))
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// An index backed by a kube reflector of `flagger.app/v1beta1` Canaries, read as untyped objects
/// so one Canary with unexpected fields cannot stop the watch.
pub struct KubeCanaryIndex {
    store: kube::runtime::reflector::Store<kube::api::DynamicObject>,
    ready: AtomicBool,
}

impl KubeCanaryIndex {
    /// Starts watching Canaries in `namespace` (all namespaces when `None`). The returned future
    /// drives the watch and must be spawned; it ends only when the process does.
    pub fn watch(
        client: kube::Client,
        namespace: Option<&str>,
    ) -> (
        std::sync::Arc<Self>,
        impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        use futures::StreamExt as _;
        use kube::runtime::{WatchStreamExt as _, reflector, watcher};

        let resource = kube::api::ApiResource {
            group: "flagger.app".into(),
            version: "v1beta1".into(),
            api_version: "flagger.app/v1beta1".into(),
            kind: "Canary".into(),
            plural: "canaries".into(),
        };
        let api: kube::Api<kube::api::DynamicObject> = match namespace {
            Some(ns) => kube::Api::namespaced_with(client, ns, &resource),
            None => kube::Api::all_with(client, &resource),
        };
        let writer = reflector::store::Writer::new(resource);
        let index = std::sync::Arc::new(KubeCanaryIndex {
            store: writer.as_reader(),
            ready: AtomicBool::new(false),
        });
        let marker = index.clone();
        let drive = async move {
            let stream = watcher(api, watcher::Config::default())
                .default_backoff()
                .reflect(writer);
            futures::pin_mut!(stream);
            while let Some(event) = stream.next().await {
                match event {
                    Ok(watcher::Event::InitDone) => marker.ready.store(true, Ordering::Release),
                    Ok(_) => {}
                    Err(err) => tracing::warn!(error = %err, "watching Canaries failed; retrying"),
                }
            }
        };
        (index, drive)
    }
}

impl CanaryIndex for KubeCanaryIndex {
    fn targeting(&self, namespace: &str, kind: &str, name: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .store
            .state()
            .iter()
            .filter(|c| c.metadata.namespace.as_deref() == Some(namespace))
            .filter(|c| c.metadata.deletion_timestamp.is_none())
            // `data` holds everything but apiVersion, kind and metadata, so `/spec/targetRef` is there.
            .filter(|c| target_of(&c.data) == Some((kind, name)))
            .filter_map(|c| c.metadata.name.clone())
            .collect();
        names.sort();
        names
    }

    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn target_defaults_to_deployment() {
        let c = json!({"spec": {"targetRef": {"name": "web"}}});
        assert_eq!(target_of(&c), Some(("Deployment", "web")));
        let c = json!({"spec": {"targetRef": {"kind": "DaemonSet", "name": "web"}}});
        assert_eq!(target_of(&c), Some(("DaemonSet", "web")));
        assert_eq!(
            target_of(&json!({"spec": {"targetRef": {"name": ""}}})),
            None
        );
        assert_eq!(target_of(&json!({"spec": {"targetRef": 3}})), None);
    }

    #[test]
    fn memory_index_insert_and_remove() {
        let index = MemoryCanaryIndex::new();
        index.insert("prod", "web", "Deployment", "web");
        index.insert("prod", "web-b", "Deployment", "web");
        index.insert("test", "web", "Deployment", "web");
        assert_eq!(
            index.targeting("prod", "Deployment", "web"),
            ["web", "web-b"]
        );
        index.remove("prod", "web-b");
        assert_eq!(index.targeting("prod", "Deployment", "web"), ["web"]);
        assert_eq!(
            index.targeting("prod", "DaemonSet", "web"),
            Vec::<String>::new()
        );
        assert_eq!(index.targeting("test", "Deployment", "web"), ["web"]);
    }
}
