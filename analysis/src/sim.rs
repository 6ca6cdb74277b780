//! The engine on a virtual clock with scripted inputs (`serin simulate`, and tests): a world
//! that obeys the engine's actions at once, canary readiness after a delay, metric values and
//! webhook failures by time window.

use serde::{Deserialize, Serialize};
use serin_api::{CanarySpec, CanaryStatus, Phase, WebhookType};

use crate::{
    Action, Answer, Commands, Conclusion, EventType, Input, Measurement, Observed, Readiness,
    Request, Routes,
};

/// Revision hashes of the simulated world.
pub const STABLE_REVISION: &str = "stable";
pub const NEW_REVISION: &str = "candidate";

/// A half-open time window `[from, to)` in milliseconds since the start; `to: None` = forever.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Window {
    pub from_ms: u64,
    pub to_ms: Option<u64>,
}

impl Window {
    pub fn contains(&self, t: u64) -> bool {
        t >= self.from_ms && self.to_ms.is_none_or(|to| t < to)
    }
}

/// What a scripted metric returns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Scripted {
    Value(f64),
    NoData,
    Error,
    /// Counts of requests and failures per side, for a metric with a `judge`.
    Counts {
        canary: crate::Sample,
        primary: crate::Sample,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricScript {
    pub name: String,
    pub window: Window,
    pub result: Scripted,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookScript {
    pub name: String,
    pub window: Window,
}

/// The scripted inputs. Later metric scripts win over earlier ones where windows overlap.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scenario {
    pub metrics: Vec<MetricScript>,
    /// Webhooks that fail (any type; a `rollback` hook "fails" = does not signal).
    pub failing_webhooks: Vec<WebhookScript>,
    /// How long the canary takes to be ready after each scale-up.
    pub canary_ready_after_ms: u64,
    /// How long the stable workload takes to roll out after the promotion.
    pub primary_ready_after_ms: u64,
    /// Stop after this much virtual time without a verdict.
    pub duration_ms: u64,
    /// `serin abort` at this time (the annotation then stays on the Canary).
    #[serde(default)]
    pub abort_at_ms: Option<u64>,
    /// `serin promote` at this time.
    #[serde(default)]
    pub promote_at_ms: Option<u64>,
    /// `serin halt` for each window, `serin approve` at its end.
    #[serde(default)]
    pub halts: Vec<Window>,
}

/// One tick of the timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub at_ms: u64,
    pub phase: Phase,
    pub weight: u32,
    pub failed_checks: u32,
    pub iterations: u32,
    /// The tick's events, in order ("Warning: …" for warnings).
    pub messages: Vec<String>,
    pub actions: Vec<Action>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Promoted,
    RolledBack,
    /// No verdict within the scenario's duration.
    Undecided,
}

/// An unscripted metric and the passing value the simulation used for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Defaulted {
    pub metric: String,
    pub value: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Simulation {
    pub verdict: Verdict,
    /// Metrics no script covered at some tick, with the passing value used for them.
    pub defaulted: Vec<Defaulted>,
    pub timeline: Vec<Entry>,
    pub status: CanaryStatus,
}

/// A value inside the metric's range: the middle of min..max, else min, else half of max.
pub fn passing_value(spec: &CanarySpec, metric: &str) -> f64 {
    let Some(m) = spec.metrics().iter().find(|m| m.name == metric) else {
        return 0.0;
    };
    let r = m.range();
    match (r.min, r.max) {
        (Some(a), Some(b)) => (a + b) / 2.0,
        (Some(a), None) => a,
        (None, Some(b)) => b / 2.0,
        (None, None) => 0.0,
    }
}

/// Runs the engine from an initialized Canary whose target just got a new revision, ticking
/// every analysis interval, until the run concludes or `duration_ms` passes.
pub fn simulate(namespace: &str, name: &str, spec: &CanarySpec, scenario: &Scenario) -> Simulation {
    let interval = spec.interval().as_millis().max(1) as u64;
    let mut status = CanaryStatus {
        phase: Some(Phase::Initialized),
        last_applied_spec: Some(STABLE_REVISION.into()),
        last_promoted_spec: Some(STABLE_REVISION.into()),
        ..Default::default()
    };
    let mut routes = Routes {
        primary: 100,
        canary: 0,
        mirror: false,
    };
    let mut canary_up_at: Option<u64> = None;
    let mut promoted_at: Option<u64> = None;
    let mut defaulted: Vec<Defaulted> = Vec::new();
    let mut timeline = Vec::new();
    let mut verdict = Verdict::Undecided;
    let mut t = 0u64;
    while t <= scenario.duration_ms {
        let ready = |since: Option<u64>, after: u64| match since {
            Some(s) if t >= s + after => Readiness::Ready,
            Some(_) => Readiness::NotReady {
                reason: "scripted rollout in progress".into(),
            },
            None => Readiness::NotReady {
                reason: "scaled to zero".into(),
            },
        };
        let observed = Observed {
            now_ms: t as i64,
            revision: NEW_REVISION.into(),
            primary: match promoted_at {
                Some(_) => ready(promoted_at, scenario.primary_ready_after_ms),
                None => Readiness::Ready,
            },
            canary: ready(canary_up_at, scenario.canary_ready_after_ms),
            routes: Some(routes),
            retry: None,
            commands: commands(scenario, t),
        };
        // The judges' evidence lives in the status, as in the controller.
        let judges = crate::judge::record::comparator(spec, &status, NEW_REVISION);
        let input = Input {
            namespace,
            name,
            spec,
            status: &status,
            observed: &observed,
            comparator: Some(&judges),
        };
        let mut out = crate::tick_with(&input, |r| answer(spec, scenario, t, r, &mut defaulted));
        crate::judge::record::save(&judges, NEW_REVISION, &mut out.status);
        let mut messages = Vec::new();
        for a in &out.actions {
            match a {
                Action::SetRoutes { routes: r, .. } => routes = *r,
                Action::ScaleUpCanary { .. } => canary_up_at = Some(t),
                Action::ScaleDownCanary { .. } => canary_up_at = None,
                Action::Promote { .. } => promoted_at = Some(t),
                Action::RecordEvent { type_, message, .. } => messages.push(match type_ {
                    EventType::Normal => message.clone(),
                    EventType::Warning => format!("Warning: {message}"),
                }),
                Action::Concluded { result } => {
                    verdict = match result {
                        Conclusion::Promoted | Conclusion::Skipped => Verdict::Promoted,
                        Conclusion::RolledBack => Verdict::RolledBack,
                    }
                }
                _ => {}
            }
        }
        status = out.status;
        timeline.push(Entry {
            at_ms: t,
            phase: status.phase.unwrap_or(Phase::Initializing),
            weight: status.canary_weight.max(0) as u32,
            failed_checks: status.failed_checks.max(0) as u32,
            iterations: status.iterations.max(0) as u32,
            messages,
            actions: out.actions,
        });
        if verdict != Verdict::Undecided {
            break;
        }
        t += interval;
    }
    Simulation {
        verdict,
        defaulted,
        timeline,
        status,
    }
}

/// The command annotations at `t`: tokens bound to the candidate, as `serin` writes them.
fn commands(scenario: &Scenario, t: u64) -> Commands {
    let token = |at: Option<u64>| {
        at.filter(|at| t >= *at)
            .map(|at| crate::commands::token(&format!("{at}ms"), Some(NEW_REVISION)))
    };
    let halted = scenario.halts.iter().any(|w| w.contains(t));
    let ended = scenario
        .halts
        .iter()
        .any(|w| w.to_ms.is_some_and(|to| t >= to));
    Commands {
        promote: token(scenario.promote_at_ms),
        abort: token(scenario.abort_at_ms),
        gate: if halted {
            Some(crate::commands::HALTED.into())
        } else if ended {
            Some(crate::commands::approval(Some(NEW_REVISION)))
        } else {
            None
        },
    }
}

fn answer(
    spec: &CanarySpec,
    scenario: &Scenario,
    t: u64,
    request: &Request,
    defaulted: &mut Vec<Defaulted>,
) -> Answer {
    match request {
        Request::Webhook { kind, hook, .. } => {
            let failing = scenario
                .failing_webhooks
                .iter()
                .any(|w| w.name == hook.name && w.window.contains(t));
            // A rollback hook answers 2xx to ask for a rollback: scripted "fail" means "do it".
            let ok = if *kind == WebhookType::Rollback {
                failing
            } else {
                !failing
            };
            Answer::Webhook {
                ok,
                message: if failing {
                    "scripted failure".into()
                } else {
                    String::new()
                },
            }
        }
        Request::Metric { metric } => {
            let scripted = scenario
                .metrics
                .iter()
                .rev()
                .find(|m| m.name == metric.name && m.window.contains(t));
            Answer::Metric(match scripted {
                Some(MetricScript {
                    result: Scripted::Value(v),
                    ..
                }) => Measurement::Value { value: *v },
                Some(MetricScript {
                    result: Scripted::NoData,
                    ..
                }) => Measurement::NoData {
                    message: "scripted: no values found".into(),
                },
                Some(MetricScript {
                    result: Scripted::Error,
                    ..
                }) => Measurement::Error {
                    message: "scripted: query failed".into(),
                },
                Some(MetricScript {
                    result: Scripted::Counts { canary, primary },
                    ..
                }) => Measurement::Comparison {
                    canary: canary.clone(),
                    primary: primary.clone(),
                },
                None => {
                    let v = passing_value(spec, &metric.name);
                    if !defaulted.iter().any(|d| d.metric == metric.name) {
                        defaulted.push(Defaulted {
                            metric: metric.name.clone(),
                            value: v,
                        });
                    }
                    Measurement::Value { value: v }
                }
            })
        }
    }
}
