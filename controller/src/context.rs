//! What every reconcile shares: the client, the workload stores, settings, telemetry, events.

use serin_api::provider::TrafficProvider;
use std::sync::Arc;

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

use crate::Config;
use crate::target::{Stores, Workload};
use crate::telemetry::Telemetry;

/// What the controller remembers of a Canary between ticks (lost on restart, which only makes
/// the first tick after a restart run at once, as in Flagger).
#[derive(Clone, Debug, Default)]
pub struct TickMemory {
    /// When the next analysis tick is due.
    pub due: Option<std::time::Instant>,
    /// resourceVersion of the Canary as our last status write left it.
    pub written_version: Option<String>,
    /// What the last tick saw: a change of any of these ticks at once.
    pub generation: Option<i64>,
    pub revision: String,
    pub retry: Option<String>,
    /// `serin promote|abort|approve|halt` annotations: a change ticks at once, so a command acts
    /// within a watch event, not an interval.
    pub commands: serin_analysis::Commands,
    /// The weights the router's object holds, as last written or read: read back from the
    /// object only on the first tick after a (re)start, so a tick costs no GET.
    pub routes: Option<serin_analysis::Routes>,
}

pub struct Context {
    pub client: Client,
    pub config: Config,
    pub workloads: Stores,
    pub telemetry: Arc<Telemetry>,
    pub recorder: Recorder,
    pub memory: std::sync::Mutex<std::collections::HashMap<String, TickMemory>>,
}

impl Context {
    pub fn new(
        client: Client,
        config: Config,
        workloads: Stores,
        telemetry: Arc<Telemetry>,
        reporter: Reporter,
    ) -> Self {
        let recorder = Recorder::new(client.clone(), reporter);
        Self {
            client,
            config,
            workloads,
            telemetry,
            recorder,
            memory: Default::default(),
        }
    }

    pub fn memory(&self, key: &str) -> TickMemory {
        self.memory
            .lock()
            .expect("memory lock")
            .get(key)
            .cloned()
            .unwrap_or_default()
    }

    pub fn remember(&self, key: &str, m: TickMemory) {
        self.memory
            .lock()
            .expect("memory lock")
            .insert(key.to_string(), m);
    }

    pub fn forget(&self, key: &str) {
        self.memory.lock().expect("memory lock").remove(key);
    }

    /// The Canary's traffic provider: `spec.provider`, else `--mesh-provider`; an error names the
    /// field and the fix.
    pub fn provider(&self, canary: &serin_api::Canary) -> Result<TrafficProvider, String> {
        let (field, name) = match canary.spec.provider.as_deref() {
            Some(p) => ("spec.provider", p),
            None => ("--mesh-provider", self.config.mesh_provider.as_str()),
        };
        match serin_api::validate::traffic_provider_problem(name) {
            Some(problem) => Err(format!("{field}: {problem}")),
            None => {
                TrafficProvider::parse(name).ok_or_else(|| format!("{field}: unknown {name:?}"))
            }
        }
    }

    /// A workload from the store (no API request).
    pub fn cached_workload(
        &self,
        kind: serin_api::hold::Kind,
        namespace: &str,
        name: &str,
    ) -> Option<Workload> {
        self.workloads.get(kind, namespace, name)
    }
}
