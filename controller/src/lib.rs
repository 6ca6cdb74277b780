//! `serin controller`: the Kubernetes operator. It observes Canaries and their workloads, feeds
//! the analysis engine, and carries out what the engine decides (DESIGN.md, "hold, don't
//! clone"). The engine decides; nothing here makes a promotion or rollback decision.

#![forbid(unsafe_code)]

pub mod checks;
pub mod commands;
pub mod context;
pub mod error;
pub mod lease;
pub mod notify;
pub mod reconcile;
pub mod router;
pub mod services;
pub mod target;
pub mod telemetry;
pub mod workload;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client, ResourceExt};
use serin_api::Canary;
use serin_api::labels::CANARY_LABEL;

pub use context::Context;
pub use error::Error;

/// The controller's settings (flags of `serin controller`).
#[derive(Clone, Debug)]
pub struct Config {
    /// Watch one namespace only (`-n`); all namespaces when `None`.
    pub namespace: Option<String>,
    /// Default traffic provider (`--mesh-provider`), overridden by `spec.provider`.
    pub mesh_provider: String,
    /// Default Prometheus (`--metrics-server`), overridden by `spec.metricsServer`.
    pub metrics_server: String,
    /// Labels tried in order to find the selector label of a target (`--selector-labels`).
    pub selector_labels: Vec<String>,
    /// Name shown in alerts (`--cluster-name`).
    pub cluster_name: String,
    /// Controller identity in events.
    pub instance: String,
    /// Canaries reconciled at once.
    pub concurrency: u16,
    /// Global notifiers (`--slack-url`, `--msteams-url`) for Canaries without `analysis.alerts`.
    pub slack_url: Option<String>,
    pub msteams_url: Option<String>,
    /// Channel and user name of the global Slack notifier (`--slack-channel`, `--slack-user`).
    pub slack_channel: String,
    pub slack_user: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            namespace: None,
            mesh_provider: "kubernetes".into(),
            metrics_server: "http://prometheus:9090".into(),
            selector_labels: vec!["app".into(), "name".into(), "app.kubernetes.io/name".into()],
            cluster_name: String::new(),
            instance: "serin-controller".into(),
            concurrency: 4,
            slack_url: None,
            msteams_url: None,
            slack_channel: "general".into(),
            slack_user: "flagger".into(),
        }
    }
}

/// Runs the controller until `shutdown` resolves.
pub async fn run(
    client: Client,
    config: Config,
    telemetry: Arc<telemetry::Telemetry>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Error> {
    let canaries: Api<Canary> = match &config.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    // One watch per workload kind of the objects serin manages (targets it adopted and canary
    // workloads both carry the label) feeds both the store the reconciler reads and the
    // reconcile triggers.
    let (deployments, deployment_stream) = watch_workloads::<Deployment>(&client, &config);
    let (daemonsets, daemonset_stream) = watch_workloads::<DaemonSet>(&client, &config);
    let (statefulsets, statefulset_stream) = watch_workloads::<StatefulSet>(&client, &config);
    let stores = target::Stores {
        deployments,
        daemonsets,
        statefulsets,
    };

    let ctx = Arc::new(Context::new(
        client.clone(),
        config.clone(),
        stores,
        telemetry,
        Reporter {
            controller: "serin".into(),
            instance: Some(config.instance.clone()),
        },
    ));
    Controller::new(canaries, watcher::Config::default().any_semantic())
        .with_config(ControllerConfig::default().concurrency(config.concurrency))
        .watches_stream(deployment_stream, canary_of)
        .watches_stream(daemonset_stream, canary_of)
        .watches_stream(statefulset_stream, canary_of)
        .graceful_shutdown_on(shutdown)
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "reconcile failed");
            }
        })
        .await;
    Ok(())
}

/// A reflector of the workloads of kind `K` labelled `serin.dev/canary`, and the stream of the
/// objects it sees change.
fn watch_workloads<K>(
    client: &Client,
    config: &Config,
) -> (
    Store<K>,
    impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let api: Api<K> = match &config.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let (store, writer) = reflector::store::<K>();
    let stream = reflector(
        writer,
        watcher(api, watcher::Config::default().labels(CANARY_LABEL)),
    )
    .default_backoff()
    .touched_objects();
    (store, stream)
}

/// The Canary a workload belongs to: the value of its `serin.dev/canary` label.
fn canary_of<K: kube::Resource>(workload: K) -> Option<ObjectRef<Canary>> {
    let name = workload.labels().get(CANARY_LABEL)?.clone();
    let r = ObjectRef::new(&name);
    Some(match workload.meta().namespace.clone() {
        Some(ns) => r.within(&ns),
        None => r,
    })
}

/// Requeue delay after an error.
pub const ERROR_REQUEUE: Duration = Duration::from_secs(5);
