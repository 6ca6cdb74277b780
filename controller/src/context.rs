//! What every reconcile shares: the client, the Deployment store, settings, telemetry, events.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};

use crate::Config;
use crate::telemetry::Telemetry;

pub struct Context {
    pub client: Client,
    pub config: Config,
    pub deployments: Store<Deployment>,
    pub telemetry: Arc<Telemetry>,
    pub recorder: Recorder,
}

impl Context {
    pub fn new(
        client: Client,
        config: Config,
        deployments: Store<Deployment>,
        telemetry: Arc<Telemetry>,
        reporter: Reporter,
    ) -> Self {
        let recorder = Recorder::new(client.clone(), reporter);
        Self {
            client,
            config,
            deployments,
            telemetry,
            recorder,
        }
    }

    /// A Deployment from the store (no API request).
    pub fn cached_deployment(&self, namespace: &str, name: &str) -> Option<Arc<Deployment>> {
        self.deployments
            .get(&ObjectRef::new(name).within(namespace))
    }
}
