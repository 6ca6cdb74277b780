//! A scripted world for engine tests: obeys the actions at once, answers webhooks and metrics
//! from tables, keeps the order of every webhook call.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use serin_analysis::{
    Action, Answer, Comparator, Input, Measurement, Observed, Readiness, Request, Routes,
};
use serin_api::{CanarySpec, CanaryStatus, Phase};

pub fn spec(yaml: &str) -> CanarySpec {
    serde_saphyr::from_str(yaml).expect("test spec parses")
}

pub struct World {
    pub spec: CanarySpec,
    pub status: CanaryStatus,
    pub obs: Observed,
    pub failing_hooks: BTreeSet<String>,
    pub metrics: BTreeMap<String, Measurement>,
    /// `<type>:<name>` of every webhook call (requests and fire-and-forget), in order.
    pub calls: Vec<String>,
    pub comparator: Option<Box<dyn Comparator>>,
    /// Apply SetRoutes to `obs.routes` (a router that reads back).
    pub read_back_routes: bool,
}

impl World {
    /// A Canary initialized on revision `v1`, its target now at `v2`.
    pub fn new(spec: CanarySpec) -> Self {
        World {
            spec,
            status: CanaryStatus {
                phase: Some(Phase::Initialized),
                last_applied_spec: Some("v1".into()),
                last_promoted_spec: Some("v1".into()),
                ..Default::default()
            },
            obs: Observed {
                now_ms: 1_700_000_000_000,
                revision: "v2".into(),
                routes: Some(Routes {
                    primary: 100,
                    canary: 0,
                    mirror: false,
                }),
                ..Default::default()
            },
            failing_hooks: BTreeSet::new(),
            metrics: BTreeMap::new(),
            calls: Vec::new(),
            comparator: None,
            read_back_routes: true,
        }
    }

    pub fn tick(&mut self) -> Vec<Action> {
        let input = Input {
            namespace: "prod",
            name: "web",
            spec: &self.spec,
            status: &self.status,
            observed: &self.obs,
            comparator: self.comparator.as_deref(),
        };
        let failing = &self.failing_hooks;
        let metrics = &self.metrics;
        let calls = &mut self.calls;
        let out = serin_analysis::tick_with(&input, |r| match r {
            Request::Webhook { kind, hook, .. } => {
                calls.push(format!("{}:{}", kind.as_str(), hook.name));
                let fail = failing.contains(&hook.name);
                Answer::Webhook {
                    ok: !fail,
                    message: if fail { "denied".into() } else { String::new() },
                }
            }
            Request::Metric { metric } => Answer::Metric(
                metrics
                    .get(&metric.name)
                    .cloned()
                    .unwrap_or(Measurement::Value { value: 0.5 }),
            ),
        });
        for a in &out.actions {
            match a {
                Action::SetRoutes { routes, .. } if self.read_back_routes => {
                    self.obs.routes = Some(*routes)
                }
                Action::CallWebhook { kind, hook, .. } => {
                    self.calls.push(format!("{}:{}", kind.as_str(), hook.name))
                }
                _ => {}
            }
        }
        self.status = out.status;
        self.obs.now_ms += self.spec.interval().as_millis() as i64;
        out.actions
    }

    pub fn phase(&self) -> Phase {
        self.status.phase.unwrap()
    }

    pub fn weight(&self) -> i32 {
        self.status.canary_weight
    }

    /// Ticks until the phase is `p` (at most `n` ticks); the number of ticks taken.
    pub fn until(&mut self, p: Phase, n: usize) -> usize {
        for i in 1..=n {
            self.tick();
            if self.phase() == p {
                return i;
            }
        }
        panic!("phase {p} not reached in {n} ticks, now {}", self.phase());
    }
}

pub fn events(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::RecordEvent { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

pub fn routes(actions: &[Action]) -> Vec<(u32, u32, bool)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SetRoutes { routes, .. } => {
                Some((routes.primary, routes.canary, routes.mirror))
            }
            _ => None,
        })
        .collect()
}

pub fn not_ready() -> Readiness {
    Readiness::NotReady {
        reason: "0 of 1 updated replicas are available".into(),
    }
}
