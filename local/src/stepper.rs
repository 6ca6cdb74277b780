//! A minimal stand-in for the analysis engine, with the engine's signature
//! (`serin_analysis::tick`): Flagger's canary loop (reference/flagger.md §3.1, §3.3, §3.7) for
//! the canary, A/B and blue/green strategies, enough for local runs while the full engine is
//! being written. Local mode picks the decider through [`Decider`]; the engine replaces this.

use serin_analysis::{
    Action, Answer, Answers, CheckReport, Conclusion, EventType, Input, Measurement, Output,
    Reason, ReasonCode, Request, Routes, Tick,
};
use serin_api::canary::ThresholdRange;
use serin_api::status::{MetricStatus, Outcome};
use serin_api::{CanaryStatus, Phase, Strategy, WebhookType};

/// Decides one tick: `serin_analysis::tick` or [`tick`].
pub type Decider = fn(&Input<'_>, &Answers) -> Tick;

struct Ctx<'a, 'i> {
    input: &'a Input<'i>,
    answers: &'a Answers,
    status: CanaryStatus,
    actions: Vec<Action>,
}

enum Gate {
    Need(Vec<Request>),
    Ok,
    Failed(Vec<CheckReport>),
}

impl Ctx<'_, '_> {
    fn threshold(&self) -> u32 {
        self.input.spec.threshold()
    }

    fn reason(&self, code: ReasonCode, checks: Vec<CheckReport>) -> Reason {
        Reason {
            code,
            checks,
            failed_checks: self.status.failed_checks.max(0) as u32,
            threshold: self.threshold(),
        }
    }

    fn event(&mut self, type_: EventType, code: ReasonCode, checks: Vec<CheckReport>, msg: String) {
        let reason = self.reason(code, checks);
        self.status.message = Some(msg.clone());
        self.actions.push(Action::RecordEvent {
            type_,
            reason,
            message: msg,
        });
    }

    fn routes(&mut self, canary: u32, code: ReasonCode) {
        let routes = Routes {
            primary: 100 - canary.min(100),
            canary: canary.min(100),
            mirror: false,
        };
        let reason = self.reason(code, Vec::new());
        self.actions.push(Action::SetRoutes { routes, reason });
    }

    fn hooks(&self, kind: WebhookType) -> Vec<Request> {
        let phase = self.status.phase.unwrap_or(Phase::Progressing);
        self.input
            .spec
            .webhooks()
            .iter()
            .filter(|h| h.kind() == Some(kind))
            .map(|h| Request::Webhook {
                kind,
                phase,
                hook: h.clone(),
            })
            .collect()
    }

    /// Runs `requests`; failures are reported as checks.
    fn gate(&self, requests: Vec<Request>) -> Gate {
        let missing: Vec<Request> = requests
            .iter()
            .filter(|r| self.answers.get(r).is_none())
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Gate::Need(missing);
        }
        let mut failed = Vec::new();
        for r in &requests {
            if let Some(report) = check(r, self.answers.get(r)) {
                failed.push(report);
            }
        }
        if failed.is_empty() {
            Gate::Ok
        } else {
            Gate::Failed(failed)
        }
    }

    fn done(self) -> Tick {
        Tick::Done(Output {
            status: self.status,
            actions: self.actions,
            requeue_after_ms: self.input.spec.interval().as_millis() as u64,
        })
    }

    fn rollback(mut self, code: ReasonCode, checks: Vec<CheckReport>, why: String) -> Tick {
        self.routes(0, code);
        self.actions.push(Action::ScaleDownCanary {
            reason: self.reason(code, checks.clone()),
        });
        let msg = format!(
            "Rolling back {}/{}: {why}",
            self.input.namespace, self.input.name
        );
        self.event(EventType::Warning, code, checks, msg);
        self.status.phase = Some(Phase::Failed);
        self.status.canary_weight = 0;
        self.status.last_applied_spec = Some(self.input.observed.revision.clone());
        for hook in self.hooks(WebhookType::PostRollout) {
            if let Request::Webhook { hook, .. } = hook {
                self.actions.push(Action::CallWebhook {
                    kind: WebhookType::PostRollout,
                    phase: Phase::Failed,
                    hook,
                    event_message: None,
                    event_type: None,
                });
            }
        }
        self.actions.push(Action::Concluded {
            result: Conclusion::RolledBack,
        });
        self.done()
    }
}

/// The failed check for one answered request, `None` when it passed.
fn check(request: &Request, answer: Option<&Answer>) -> Option<CheckReport> {
    match (request, answer) {
        (Request::Webhook { kind, hook, .. }, Some(Answer::Webhook { ok, message })) => {
            (!ok).then(|| CheckReport {
                name: hook.name.clone(),
                kind: kind.as_str().into(),
                outcome: Outcome::Fail,
                value: None,
                message: format!("{} webhook {} failed: {message}", kind.as_str(), hook.name),
            })
        }
        (Request::Metric { metric }, Some(Answer::Metric(m))) => {
            let (outcome, value, message) = measure(&metric.name, &metric.range(), m);
            (outcome != Outcome::Pass).then(|| CheckReport {
                name: metric.name.clone(),
                kind: "metric".into(),
                outcome,
                value,
                message,
            })
        }
        (r, _) => Some(CheckReport {
            name: r.id(),
            kind: "internal".into(),
            outcome: Outcome::Error,
            value: None,
            message: format!("no answer for {}", r.id()),
        }),
    }
}

fn measure(name: &str, range: &ThresholdRange, m: &Measurement) -> (Outcome, Option<f64>, String) {
    match m {
        Measurement::Value { value } => {
            let v = *value;
            if let Some(min) = range.min.filter(|min| v < *min) {
                (Outcome::Fail, Some(v), format!("{name} {v:.2} < min {min}"))
            } else if let Some(max) = range.max.filter(|max| v > *max) {
                (Outcome::Fail, Some(v), format!("{name} {v:.2} > max {max}"))
            } else {
                (Outcome::Pass, Some(v), format!("{name} {v:.2} in range"))
            }
        }
        Measurement::NoData { message } => (
            Outcome::NoData,
            None,
            format!("no data for {name}: {message}"),
        ),
        Measurement::Error { message } => (
            Outcome::Error,
            None,
            format!("{name} query failed: {message}"),
        ),
        Measurement::Comparison { .. } => (
            Outcome::Error,
            None,
            format!("{name}: comparisons need the full engine"),
        ),
    }
}

fn metric_statuses(input: &Input<'_>, answers: &Answers) -> Vec<MetricStatus> {
    input
        .spec
        .metrics()
        .iter()
        .filter_map(|metric| {
            let r = Request::Metric {
                metric: metric.clone(),
            };
            let Some(Answer::Metric(m)) = answers.get(&r) else {
                return None;
            };
            let (outcome, value, message) = measure(&metric.name, &metric.range(), m);
            Some(MetricStatus {
                name: metric.name.clone(),
                outcome,
                value,
                message,
                last_check_time: None,
            })
        })
        .collect()
}

fn next_step(input: &Input<'_>, current: u32) -> u32 {
    let Some(a) = input.spec.analysis() else {
        return 100 - current;
    };
    if let Some(step) = a.step_weight.filter(|s| *s > 0) {
        return (step as u32).min(100 - current);
    }
    if let Some(steps) = a.step_weights.as_ref().filter(|s| !s.is_empty()) {
        if current == 0 {
            return (steps[0].max(0) as u32).min(100);
        }
        return match steps.iter().position(|s| *s as u32 == current) {
            Some(i) if i + 1 < steps.len() => (steps[i + 1].max(0) as u32).saturating_sub(current),
            _ => 100 - current,
        };
    }
    100 - current
}

/// One tick of the minimal loop.
pub fn tick(input: &Input<'_>, answers: &Answers) -> Tick {
    let mut c = Ctx {
        input,
        answers,
        status: input.status.clone(),
        actions: Vec::new(),
    };
    let revision = &input.observed.revision;
    match c.status.phase {
        None | Some(Phase::Initializing) => {
            c.status.phase = Some(Phase::Initialized);
            c.status.last_applied_spec = Some(revision.clone());
            c.status.last_promoted_spec = Some(revision.clone());
            c.actions.push(Action::Initialize {
                stable_revision: revision.clone(),
            });
            c.event(
                EventType::Normal,
                ReasonCode::Initialized,
                Vec::new(),
                "Initialization done!".into(),
            );
            c.done()
        }
        Some(Phase::Initialized | Phase::Succeeded | Phase::Failed | Phase::Waiting) => {
            let new = c.status.last_applied_spec.as_ref() != Some(revision)
                && c.status.last_promoted_spec.as_ref() != Some(revision);
            if !new && c.status.phase != Some(Phase::Waiting) {
                return c.done();
            }
            match c.gate(c.hooks(WebhookType::ConfirmRollout)) {
                Gate::Need(r) => return Tick::Need(r),
                Gate::Failed(checks) => {
                    c.status.phase = Some(Phase::Waiting);
                    c.event(
                        EventType::Warning,
                        ReasonCode::WaitingForApproval,
                        checks,
                        "Halt advancement: waiting for rollout approval".into(),
                    );
                    return c.done();
                }
                Gate::Ok => {}
            }
            c.status.phase = Some(Phase::Progressing);
            c.status.canary_weight = 0;
            c.status.failed_checks = 0;
            c.status.iterations = 0;
            c.status.metrics.clear();
            c.status.last_applied_spec = Some(revision.clone());
            c.actions.push(Action::ScaleUpCanary {
                revision: revision.clone(),
                reason: c.reason(ReasonCode::NewRevision, Vec::new()),
            });
            c.event(
                EventType::Normal,
                ReasonCode::NewRevision,
                Vec::new(),
                format!(
                    "New revision detected! Scaling up {}",
                    input.spec.target_ref.name
                ),
            );
            c.done()
        }
        Some(Phase::Promoting) => {
            c.routes(0, ReasonCode::RoutingToPrimary);
            c.status.canary_weight = 0;
            c.status.phase = Some(Phase::Finalising);
            c.event(
                EventType::Normal,
                ReasonCode::RoutingToPrimary,
                Vec::new(),
                "Routing all traffic to primary".into(),
            );
            c.done()
        }
        Some(Phase::Finalising) => {
            c.actions.push(Action::ScaleDownCanary {
                reason: c.reason(ReasonCode::Succeeded, Vec::new()),
            });
            c.status.phase = Some(Phase::Succeeded);
            c.status.last_promoted_spec = c.status.last_applied_spec.clone();
            c.event(
                EventType::Normal,
                ReasonCode::Succeeded,
                Vec::new(),
                "Promotion completed! Scaling down".into(),
            );
            for r in c.hooks(WebhookType::PostRollout) {
                if let Request::Webhook { hook, .. } = r {
                    c.actions.push(Action::CallWebhook {
                        kind: WebhookType::PostRollout,
                        phase: Phase::Succeeded,
                        hook,
                        event_message: None,
                        event_type: None,
                    });
                }
            }
            c.actions.push(Action::Concluded {
                result: Conclusion::Promoted,
            });
            c.done()
        }
        Some(Phase::Progressing | Phase::WaitingPromotion) => progressing(c),
        Some(Phase::Terminating | Phase::Terminated) => c.done(),
    }
}

fn progressing(mut c: Ctx<'_, '_>) -> Tick {
    let input = c.input;
    // Rollback webhooks: a 2xx answer asks for the rollback (inverse semantics).
    let rollback_hooks = c.hooks(WebhookType::Rollback);
    match c.gate(rollback_hooks.clone()) {
        Gate::Need(r) => return Tick::Need(r),
        Gate::Ok if !rollback_hooks.is_empty() => {
            return c.rollback(
                ReasonCode::RollbackWebhook,
                Vec::new(),
                "rollback webhook invoked".into(),
            );
        }
        _ => {}
    }
    if c.status.failed_checks.max(0) as u32 >= c.threshold() {
        let checks: Vec<CheckReport> = c
            .status
            .metrics
            .iter()
            .filter(|m| m.outcome != Outcome::Pass)
            .map(|m| CheckReport {
                name: m.name.clone(),
                kind: "metric".into(),
                outcome: m.outcome,
                value: m.value,
                message: m.message.clone(),
            })
            .collect();
        let why = format!(
            "failed checks threshold reached {}{}",
            c.status.failed_checks,
            checks
                .first()
                .map(|r| format!(" ({})", r.message))
                .unwrap_or_default()
        );
        return c.rollback(ReasonCode::RollbackThreshold, checks, why);
    }
    let first = c.status.canary_weight == 0 && c.status.iterations == 0;
    let checks = if first {
        c.hooks(WebhookType::PreRollout)
    } else {
        let mut r = c.hooks(WebhookType::Rollout);
        r.extend(
            input
                .spec
                .metrics()
                .iter()
                .map(|m| Request::Metric { metric: m.clone() }),
        );
        r
    };
    let gate = c.gate(checks);
    if !first {
        c.status.metrics = metric_statuses(input, c.answers);
    }
    match gate {
        Gate::Need(r) => return Tick::Need(r),
        Gate::Failed(checks) => {
            c.status.failed_checks += 1;
            let msg = format!(
                "Halt advancement: {} (failed checks {}/{})",
                checks
                    .iter()
                    .map(|r| r.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
                c.status.failed_checks,
                c.threshold()
            );
            c.event(EventType::Warning, ReasonCode::CheckFailed, checks, msg);
            return c.done();
        }
        Gate::Ok => {}
    }
    match input.spec.strategy() {
        Strategy::Canary => {
            let weight = c.status.canary_weight.max(0) as u32;
            if weight < input.spec.max_weight() {
                let step = next_step(input, weight);
                if step > 0 {
                    match c.gate(c.hooks(WebhookType::ConfirmTrafficIncrease)) {
                        Gate::Need(r) => return Tick::Need(r),
                        Gate::Failed(checks) => {
                            c.event(
                                EventType::Warning,
                                ReasonCode::TrafficIncreaseWaiting,
                                checks,
                                "Halt advancement: waiting for traffic increase approval".into(),
                            );
                            return c.done();
                        }
                        Gate::Ok => {}
                    }
                }
                let next = (weight + step).min(100);
                c.routes(next, ReasonCode::AdvanceWeight);
                c.status.canary_weight = next as i32;
                c.event(
                    EventType::Normal,
                    ReasonCode::AdvanceWeight,
                    Vec::new(),
                    format!(
                        "Advance {}.{} canary weight {next}",
                        input.name, input.namespace
                    ),
                );
                return c.done();
            }
        }
        Strategy::AbTesting | Strategy::BlueGreen => {
            let iterations = c.status.iterations.max(0) as u32;
            if iterations < input.spec.iterations() {
                if iterations == 0 {
                    // A/B: the router applies 100 to the matching requests only.
                    c.routes(100, ReasonCode::RoutingToCanary);
                    c.status.canary_weight = 100;
                }
                c.status.iterations += 1;
                c.event(
                    EventType::Normal,
                    ReasonCode::AdvanceIteration,
                    Vec::new(),
                    format!(
                        "Advance {}.{} canary iteration {}/{}",
                        input.name,
                        input.namespace,
                        c.status.iterations,
                        input.spec.iterations()
                    ),
                );
                return c.done();
            }
        }
    }
    match c.gate(c.hooks(WebhookType::ConfirmPromotion)) {
        Gate::Need(r) => Tick::Need(r),
        Gate::Failed(checks) => {
            c.status.phase = Some(Phase::WaitingPromotion);
            c.event(
                EventType::Warning,
                ReasonCode::PromotionWaiting,
                checks,
                "Halt advancement: waiting for promotion approval".into(),
            );
            c.done()
        }
        Gate::Ok => {
            let revision = input.observed.revision.clone();
            c.actions.push(Action::Promote {
                revision,
                reason: c.reason(ReasonCode::Promoting, Vec::new()),
            });
            c.status.phase = Some(Phase::Promoting);
            c.event(
                EventType::Normal,
                ReasonCode::Promoting,
                Vec::new(),
                format!(
                    "Copying {} template spec to the stable workload",
                    input.spec.target_ref.name
                ),
            );
            c.done()
        }
    }
}
