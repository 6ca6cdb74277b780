//! The state machine: Flagger's `advanceCanary` order (reference/flagger.md §3.1), adapted to
//! serin's hold model and without Flagger's known bugs (§10).

use serin_api::canary::{CanaryWebhook, PolicyAction};
use serin_api::common::Condition;
use serin_api::{CanarySpec, CanaryStatus, Phase, Strategy, WebhookType};

use crate::checks::evaluate;
use crate::output::Out;
use crate::{
    Action, Answer, Answers, CheckReport, Conclusion, EventType, Input, MetricStatus, Outcome,
    Output, Readiness, Reason, ReasonCode, Request, Routes, Severity, Tick, weights,
};

mod commands;
mod judge_hold;

/// Requests whose answers are missing: the tick stops here and is replayed with them.
struct Pending(Vec<Request>);

type Step<T = ()> = Result<T, Pending>;

pub(crate) fn tick(input: &Input<'_>, answers: &Answers) -> Tick {
    let mut e = Engine {
        input,
        answers,
        spec: input.spec,
        st: input.status.clone(),
        out: Out::new(input.spec),
    };
    match e.run() {
        Err(Pending(requests)) => Tick::Need(requests),
        Ok(()) => Tick::Done(e.finish()),
    }
}

struct Engine<'a> {
    input: &'a Input<'a>,
    answers: &'a Answers,
    spec: &'a CanarySpec,
    st: CanaryStatus,
    out: Out<'a>,
}

/// The phases of a run in progress.
fn in_analysis(p: Phase) -> bool {
    matches!(p, Phase::Progressing | Phase::WaitingPromotion)
}

impl<'a> Engine<'a> {
    fn finish(mut self) -> Output {
        if let Some(m) = self.out.last_message.take() {
            self.st.message = Some(m);
        }
        self.sync_condition();
        // Only a tick that changed the status records itself: an idle tick writes nothing.
        if self.st.phase.is_some_and(in_analysis) && self.st != *self.input.status {
            self.st.last_tick_time = Some(format_time_ms(self.input.observed.now_ms));
        }
        Output {
            status: self.st,
            actions: self.out.actions,
            requeue_after_ms: self.spec.interval().as_millis() as u64,
        }
    }

    fn run(&mut self) -> Step {
        if self.spec.suspended() {
            return Ok(());
        }
        let phase = match self.st.phase {
            None | Some(Phase::Initializing) => return self.initialize(),
            Some(Phase::Terminating | Phase::Terminated) => return Ok(()),
            Some(p) => p,
        };
        let obs = self.input.observed;
        let new_retry = obs.retry.is_some() && obs.retry != self.st.last_retry;
        let retry = new_retry
            && phase == Phase::Failed
            && Some(obs.revision.as_str()) != self.st.last_promoted_spec.as_deref();
        if new_retry {
            // Absorbed in any phase, so a stale annotation never retries a later failure.
            self.st.last_retry = obs.retry.clone();
        }
        if self.act_on_commands(phase, retry) {
            return Ok(());
        }
        let active = matches!(
            phase,
            Phase::Progressing
                | Phase::Waiting
                | Phase::WaitingPromotion
                | Phase::Promoting
                | Phase::Finalising
        );
        if !active && !self.revision_changed() && !retry {
            return Ok(());
        }
        let skip = self.spec.skip_analysis();

        if !skip {
            match &obs.primary {
                Readiness::Ready => {}
                Readiness::NotReady { reason } => {
                    let msg = format!(
                        "Waiting for {} to be ready: {reason}",
                        self.spec.target_ref.name
                    );
                    self.event(EventType::Normal, ReasonCode::PrimaryNotReady, msg);
                    return Ok(());
                }
                Readiness::DeadlineExceeded { reason } => {
                    let why = format!(
                        "{} did not become ready: {reason}",
                        self.spec.target_ref.name
                    );
                    if matches!(phase, Phase::Promoting | Phase::Finalising) {
                        self.failed_promotion(why);
                    } else {
                        self.rollback(ReasonCode::RollbackProgressDeadline, why);
                    }
                    return Ok(());
                }
            }
        }

        if matches!(
            phase,
            Phase::Initialized | Phase::Succeeded | Phase::Failed | Phase::Waiting
        ) {
            return self.start_run(phase, retry);
        }

        if in_analysis(phase) && self.revision_changed() {
            self.restart();
            return Ok(());
        }

        if in_analysis(phase) && !self.canary_ready()? {
            return Ok(());
        }

        if skip && in_analysis(phase) {
            self.promote_skipped();
            return Ok(());
        }

        if in_analysis(phase) {
            let hooks = self.hooks(WebhookType::Rollback);
            let answers = self.ask_hooks(WebhookType::Rollback, phase, &hooks)?;
            if let Some((hook, _)) = hooks.iter().zip(answers).find(|(_, (ok, _))| *ok) {
                let why = format!("rollback webhook {} signalled a rollback", hook.name);
                self.rollback(ReasonCode::RollbackWebhook, why);
                return Ok(());
            }
        }

        match phase {
            Phase::Promoting => {
                self.promotion_traffic();
                return Ok(());
            }
            Phase::Finalising => {
                self.finalise();
                return Ok(());
            }
            _ => {}
        }

        let threshold = self.spec.threshold();
        if self.st.failed_checks.max(0) as u32 >= threshold {
            // Reached before this tick (e.g. the threshold was lowered).
            let last = self.failure_summary();
            let why = format!("failed checks threshold reached {threshold}{last}");
            self.rollback(ReasonCode::RollbackThreshold, why);
            return Ok(());
        }

        let (weight, mirrored) = self.current_routes();
        let mirror = self.mirror_enabled();
        let first = weight == 0 && self.st.iterations == 0 && !(mirror && mirrored);
        if first {
            let msg = format!("Starting canary analysis for {}", self.who());
            self.event(EventType::Normal, ReasonCode::StartAnalysis, msg);
            let hooks = self.hooks(WebhookType::PreRollout);
            let answers = self.ask_hooks(WebhookType::PreRollout, Phase::Progressing, &hooks)?;
            let failed = hook_failures(WebhookType::PreRollout, &hooks, &answers);
            if !failed.is_empty() {
                self.failed_check(failed);
                return Ok(());
            }
        } else if !self.analyse()? {
            return Ok(());
        }

        match self.spec.strategy() {
            Strategy::Canary => self.run_canary(phase, weight, mirrored),
            Strategy::AbTesting => self.run_ab(phase),
            Strategy::BlueGreen => self.run_blue_green(phase, mirrored),
        }
    }

    // ---- phases -------------------------------------------------------------------------

    fn initialize(&mut self) -> Step {
        let obs = self.input.observed;
        self.out.push(Action::Initialize {
            stable_revision: obs.revision.clone(),
        });
        self.set_phase(Phase::Initializing);
        if !self.spec.skip_analysis() && obs.primary != Readiness::Ready {
            let reason = match &obs.primary {
                Readiness::NotReady { reason } | Readiness::DeadlineExceeded { reason } => {
                    reason.as_str()
                }
                Readiness::Ready => "",
            };
            let msg = format!(
                "Waiting for {} to be ready: {reason}",
                self.spec.target_ref.name
            );
            self.event(EventType::Normal, ReasonCode::PrimaryNotReady, msg);
            return Ok(());
        }
        self.set_phase(Phase::Initialized);
        self.st.last_applied_spec = Some(obs.revision.clone());
        self.st.last_promoted_spec = Some(obs.revision.clone());
        self.st.last_retry = obs.retry.clone();
        self.absorb_commands();
        let msg = format!("Initialization done! {}", self.who());
        self.event(EventType::Normal, ReasonCode::Initialized, msg);
        let kind = self.spec.target_ref.kind.as_deref().unwrap_or("Deployment");
        let msg = format!("New {kind} detected, initialization completed.");
        self.alert(Severity::Info, ReasonCode::Initialized, vec![], msg);
        Ok(())
    }

    /// A new revision (or a retry) from an idle phase: the confirm-rollout gate, then the
    /// canary is scaled up and the analysis starts on the next tick.
    fn start_run(&mut self, phase: Phase, retry: bool) -> Step {
        if let Some((hook, body)) = self.closed_gate(WebhookType::ConfirmRollout, phase)? {
            if phase != Phase::Waiting {
                self.set_phase(Phase::Waiting);
                self.waiting_at_gate(WebhookType::ConfirmRollout, &hook, &body);
            }
            return Ok(());
        }
        if self.spec.skip_analysis() {
            self.promote_skipped();
            return Ok(());
        }
        let revision = self.input.observed.revision.clone();
        self.reset_run(&revision);
        self.set_phase(Phase::Progressing);
        let (code, msg) = if retry {
            (
                ReasonCode::Retry,
                format!(
                    "Retry requested: new analysis of revision {} for {}, scaling up {}",
                    short(&revision),
                    self.who(),
                    self.canary_name()
                ),
            )
        } else {
            (
                ReasonCode::NewRevision,
                format!(
                    "New revision {} detected for {}, scaling up {}",
                    short(&revision),
                    self.who(),
                    self.canary_name()
                ),
            )
        };
        self.out.push(Action::ScaleUpCanary {
            revision,
            reason: self.reason(code, vec![]),
        });
        self.event(EventType::Normal, code, msg);
        let msg = "New revision detected, progressing canary analysis.".to_string();
        self.alert(Severity::Info, code, vec![], msg);
        Ok(())
    }

    /// A new revision in the middle of a run: back to 100/0 and start over with it.
    fn restart(&mut self) {
        let revision = self.input.observed.revision.clone();
        self.set_routes(100, 0, false, ReasonCode::RevisionChangedRestart);
        self.reset_run(&revision);
        self.set_phase(Phase::Progressing);
        self.out.push(Action::ScaleUpCanary {
            revision: revision.clone(),
            reason: self.reason(ReasonCode::RevisionChangedRestart, vec![]),
        });
        let msg = format!(
            "New revision {} detected for {}, restarting analysis",
            short(&revision),
            self.who()
        );
        self.event(EventType::Normal, ReasonCode::RevisionChangedRestart, msg);
    }

    /// Waits for the canary; past the progress deadline (reported by the shell, or measured
    /// from `status.canaryWaitingSince`) rolls back, with an alert.
    fn canary_ready(&mut self) -> Step<bool> {
        let obs = self.input.observed;
        let reason = match &obs.canary {
            Readiness::Ready => {
                self.st.canary_waiting_since = None;
                return Ok(true);
            }
            Readiness::DeadlineExceeded { reason } => {
                let why = format!("{} did not become ready: {reason}", self.canary_name());
                self.rollback(ReasonCode::RollbackProgressDeadline, why);
                return Ok(false);
            }
            Readiness::NotReady { reason } => reason,
        };
        let since = self
            .st
            .canary_waiting_since
            .as_deref()
            .and_then(parse_time)
            .unwrap_or(obs.now_ms);
        self.st.canary_waiting_since = Some(format_time(since));
        let deadline = self.spec.progress_deadline();
        if obs.now_ms.saturating_sub(since) > deadline.as_millis() as i64 {
            let why = format!(
                "{} not ready within the progress deadline {}s: {reason}",
                self.canary_name(),
                deadline.as_secs()
            );
            self.rollback(ReasonCode::RollbackProgressDeadline, why);
            return Ok(false);
        }
        let msg = format!("Waiting for {} to be ready: {reason}", self.canary_name());
        self.event(EventType::Normal, ReasonCode::CanaryNotReady, msg);
        Ok(false)
    }

    /// Rollout webhooks, then metrics. `true` when everything passed.
    fn analyse(&mut self) -> Step<bool> {
        let hooks = self.hooks(WebhookType::Rollout);
        let answers = self.ask_hooks(WebhookType::Rollout, Phase::Progressing, &hooks)?;
        let failed = hook_failures(WebhookType::Rollout, &hooks, &answers);
        if !failed.is_empty() {
            self.failed_check(failed);
            return Ok(false);
        }

        let metrics = self.spec.metrics();
        let requests: Vec<Request> = metrics
            .iter()
            .map(|m| Request::Metric { metric: m.clone() })
            .collect();
        let answers = self.ask(&requests)?;
        let now = format_time(self.input.observed.now_ms);
        let mut reports = Vec::new();
        self.st.metrics.clear();
        for (metric, answer) in metrics.iter().zip(answers) {
            let eval = match answer {
                Answer::Metric(m) => evaluate(metric, m, self.input.comparator),
                Answer::Webhook { .. } => evaluate(
                    metric,
                    &crate::Measurement::Error {
                        message: "the shell answered a metric with a webhook result".into(),
                    },
                    None,
                ),
            };
            self.st.metrics.push(MetricStatus {
                name: metric.name.clone(),
                outcome: eval.outcome,
                value: eval.value,
                message: eval.message.clone(),
                last_check_time: Some(now.clone()),
            });
            reports.push(CheckReport {
                name: metric.name.clone(),
                kind: "metric".into(),
                outcome: eval.outcome,
                value: eval.value,
                message: eval.message,
            });
        }
        // A judge holding for traffic is not a no-data check (engine/judge_hold.rs).
        let (reports, judge_holds) = self.judge_holds(reports);

        let analysis = self.spec.analysis();
        let policy = |p: Option<&serin_api::canary::OutcomePolicy>| {
            p.map(|p| (p.action, p.limit.unwrap_or(0).max(0) as u32))
                .unwrap_or((PolicyAction::Fail, 0))
        };
        let (no_data_action, no_data_limit) =
            policy(analysis.and_then(|a| a.no_data_policy.as_ref()));
        let (error_action, error_limit) = policy(analysis.and_then(|a| a.error_policy.as_ref()));
        let counts_as_failure = |o: Outcome| match o {
            Outcome::Pass => false,
            Outcome::Fail => true,
            Outcome::NoData => no_data_action == PolicyAction::Fail,
            Outcome::Error => error_action == PolicyAction::Fail,
        };
        let bad: Vec<CheckReport> = reports
            .iter()
            .filter(|r| r.outcome != Outcome::Pass)
            .cloned()
            .collect();
        let any = |o: Outcome| reports.iter().any(|r| r.outcome == o);
        if bad.iter().any(|r| counts_as_failure(r.outcome)) {
            self.failed_check(bad);
            return Ok(false);
        }
        self.st.no_data_checks = if any(Outcome::NoData) {
            self.st.no_data_checks + 1
        } else {
            0
        };
        self.st.error_checks = if any(Outcome::Error) {
            self.st.error_checks + 1
        } else {
            0
        };
        if bad.is_empty() {
            return Ok(self.hold_for_judges(judge_holds));
        }
        let text = join(&bad);
        for (outcome, count, limit, code) in [
            (
                Outcome::NoData,
                self.st.no_data_checks,
                no_data_limit,
                ReasonCode::RollbackNoData,
            ),
            (
                Outcome::Error,
                self.st.error_checks,
                error_limit,
                ReasonCode::RollbackError,
            ),
        ] {
            if any(outcome) && limit > 0 && count.max(0) as u32 >= limit {
                let what = if outcome == Outcome::NoData {
                    "no data"
                } else {
                    "errors"
                };
                let why = format!("{what} for {count} consecutive checks (limit {limit}): {text}");
                self.rollback_with(code, why, bad);
                return Ok(false);
            }
        }
        let mut halted = Vec::new();
        if any(Outcome::NoData) {
            halted.push(halt_count("no data", self.st.no_data_checks, no_data_limit));
        }
        if any(Outcome::Error) {
            halted.push(halt_count("errors", self.st.error_checks, error_limit));
        }
        let msg = format!(
            "Halt advancement of {}: {text} ({})",
            self.who(),
            halted.join(", ")
        );
        let reason = self.reason(ReasonCode::Halted, bad);
        self.out
            .event(EventType::Warning, reason, self.phase(), msg);
        Ok(false)
    }

    fn run_canary(&mut self, phase: Phase, weight: u32, mirrored: bool) -> Step {
        let max = self.spec.max_weight();
        if self.mirror_enabled() && weight == 0 && !mirrored {
            self.set_routes(100, 0, true, ReasonCode::Mirroring);
            self.st.traffic_mirrored = true;
            let msg = format!(
                "Mirroring traffic of {} to {}",
                self.who(),
                self.canary_name()
            );
            self.event(EventType::Normal, ReasonCode::Mirroring, msg);
            return Ok(());
        }
        if weight < max {
            let step = weights::next_step(self.spec, weight);
            if step == 0 {
                return Ok(());
            }
            if !mirrored && phase == Phase::Progressing {
                let gate = WebhookType::ConfirmTrafficIncrease;
                if let Some((hook, body)) = self.closed_gate(gate, Phase::Progressing)? {
                    self.waiting_at_gate(gate, &hook, &body);
                    return Ok(());
                }
            }
            let canary = (weight + step).min(100);
            self.set_routes(100 - canary, canary, false, ReasonCode::AdvanceWeight);
            self.st.canary_weight = canary as i32;
            self.st.traffic_mirrored = false;
            let msg = format!("Advance {} canary weight {canary}", self.who());
            self.event(EventType::Normal, ReasonCode::AdvanceWeight, msg);
            return Ok(());
        }
        self.promote_or_wait(phase)
    }

    fn run_ab(&mut self, phase: Phase) -> Step {
        let n = self.spec.iterations();
        if (self.st.iterations.max(0) as u32) < n {
            self.set_routes(0, 100, false, ReasonCode::AdvanceIteration);
            self.st.iterations += 1;
            let msg = format!(
                "Advance {} canary iteration {}/{n}",
                self.who(),
                self.st.iterations
            );
            self.event(EventType::Normal, ReasonCode::AdvanceIteration, msg);
            return Ok(());
        }
        self.promote_or_wait(phase)
    }

    fn run_blue_green(&mut self, phase: Phase, mirrored: bool) -> Step {
        let n = self.spec.iterations();
        let done = self.st.iterations.max(0) as u32;
        if done < n {
            if self.mirror_enabled() && !mirrored {
                self.set_routes(100, 0, true, ReasonCode::Mirroring);
                self.st.traffic_mirrored = true;
            }
            self.st.iterations += 1;
            let msg = format!(
                "Advance {} canary iteration {}/{n}",
                self.who(),
                self.st.iterations
            );
            self.event(EventType::Normal, ReasonCode::AdvanceIteration, msg);
            return Ok(());
        }
        if done == n {
            if !self.confirm_promotion(phase)? {
                return Ok(());
            }
            // Green serves all traffic while blue (the stable workload) rolls out.
            self.set_routes(0, 100, false, ReasonCode::RoutingToCanary);
            self.st.traffic_mirrored = false;
            self.st.canary_weight = 100;
            self.st.iterations = n as i32 + 1;
            let msg = format!(
                "Routing all traffic of {} to {}",
                self.who(),
                self.canary_name()
            );
            self.event(EventType::Normal, ReasonCode::RoutingToCanary, msg);
            return Ok(());
        }
        self.promote();
        Ok(())
    }

    fn promote_or_wait(&mut self, phase: Phase) -> Step {
        if self.confirm_promotion(phase)? {
            self.promote();
        }
        Ok(())
    }

    /// The confirm-promotion gate; on refusal the phase becomes WaitingPromotion (the weight
    /// stays where it is, in status too).
    fn confirm_promotion(&mut self, phase: Phase) -> Step<bool> {
        let gate = WebhookType::ConfirmPromotion;
        let Some((hook, body)) = self.closed_gate(gate, Phase::Progressing)? else {
            return Ok(true);
        };
        if phase != Phase::WaitingPromotion {
            self.set_phase(Phase::WaitingPromotion);
            self.waiting_at_gate(gate, &hook, &body);
        }
        Ok(false)
    }

    /// Asks the gate webhooks of `kind`; the first that refuses, with its answer.
    fn closed_gate(
        &mut self,
        kind: WebhookType,
        phase: Phase,
    ) -> Step<Option<(CanaryWebhook, String)>> {
        let hooks = self.hooks(kind);
        let answers = self.ask_hooks(kind, phase, &hooks)?;
        Ok(hooks
            .into_iter()
            .zip(answers)
            .find(|(_, (ok, _))| !ok)
            .map(|(hook, (_, body))| (hook, body)))
    }

    /// Flagger's event and alert for a gate webhook that keeps the analysis waiting.
    fn waiting_at_gate(&mut self, kind: WebhookType, hook: &CanaryWebhook, body: &str) {
        let (waiting_for, code, alert) = match kind {
            WebhookType::ConfirmRollout => (
                "approval by confirm-rollout",
                ReasonCode::WaitingForApproval,
                "Canary is waiting for approval.",
            ),
            WebhookType::ConfirmTrafficIncrease => (
                "approval by confirm-traffic-increase",
                ReasonCode::TrafficIncreaseWaiting,
                "Canary traffic increase is waiting for approval.",
            ),
            _ => (
                "promotion approval by confirm-promotion",
                ReasonCode::PromotionWaiting,
                "Canary promotion is waiting for approval.",
            ),
        };
        let msg = format!(
            "Halt {} advancement: waiting for {waiting_for} webhook {}{}",
            self.who(),
            hook.name,
            colon(body)
        );
        self.event(EventType::Warning, code, msg);
        if !hook.mute_alert.unwrap_or(false) {
            self.alert(Severity::Warn, code, vec![], alert.to_string());
        }
    }

    fn promote(&mut self) {
        let revision = self.input.observed.revision.clone();
        self.out.push(Action::Promote {
            revision: revision.clone(),
            reason: self.reason(ReasonCode::Promoting, vec![]),
        });
        self.set_phase(Phase::Promoting);
        let msg = format!(
            "Promoting {}: rolling out revision {} on {}",
            self.who(),
            short(&revision),
            self.spec.target_ref.name
        );
        self.event(EventType::Normal, ReasonCode::Promoting, msg);
    }

    /// Promoting, once the stable workload has rolled out: traffic back to it, at once or by
    /// `stepWeightPromotion`.
    fn promotion_traffic(&mut self) {
        let (weight, _) = self.current_routes();
        let step = self
            .spec
            .analysis()
            .and_then(|a| a.step_weight_promotion)
            .filter(|s| *s > 0)
            .map(|s| s as u32);
        let primary = match step {
            Some(s) if self.spec.strategy() == Strategy::Canary => {
                (100 - weight.min(100) + s).min(100)
            }
            _ => 100,
        };
        self.set_routes(primary, 100 - primary, false, ReasonCode::RoutingToPrimary);
        self.st.canary_weight = (100 - primary) as i32;
        self.st.traffic_mirrored = false;
        if primary == 100 {
            self.set_phase(Phase::Finalising);
            let msg = format!(
                "Routing all traffic of {} to {}",
                self.who(),
                self.spec.target_ref.name
            );
            self.event(EventType::Normal, ReasonCode::RoutingToPrimary, msg);
        } else {
            let msg = format!("Advance {} primary weight {primary}", self.who());
            self.event(EventType::Normal, ReasonCode::RoutingToPrimary, msg);
        }
    }

    fn finalise(&mut self) {
        self.out.push(Action::ScaleDownCanary {
            reason: self.reason(ReasonCode::Succeeded, vec![]),
        });
        self.set_phase(Phase::Succeeded);
        self.st.last_promoted_spec = self.st.last_applied_spec.clone();
        self.st.canary_weight = 0;
        self.out
            .call_hooks(WebhookType::PostRollout, Phase::Succeeded);
        let msg = format!(
            "Promotion completed! {} runs revision {}, {} scaled down",
            self.who(),
            short(self.st.last_promoted_spec.as_deref().unwrap_or("")),
            self.canary_name()
        );
        self.event(EventType::Normal, ReasonCode::Succeeded, msg);
        let msg = "Canary analysis completed successfully, promotion finished.".to_string();
        self.alert(Severity::Info, ReasonCode::Succeeded, vec![], msg);
        self.out.push(Action::Concluded {
            result: Conclusion::Promoted,
        });
    }

    fn promote_skipped(&mut self) {
        let revision = self.input.observed.revision.clone();
        self.set_routes(100, 0, false, ReasonCode::Skipped);
        self.out.push(Action::Promote {
            revision: revision.clone(),
            reason: self.reason(ReasonCode::Skipped, vec![]),
        });
        self.out.push(Action::ScaleDownCanary {
            reason: self.reason(ReasonCode::Skipped, vec![]),
        });
        self.reset_run(&revision);
        self.st.last_promoted_spec = Some(revision);
        self.set_phase(Phase::Succeeded);
        self.out
            .call_hooks(WebhookType::PostRollout, Phase::Succeeded);
        let msg = format!(
            "Canary analysis was skipped for {}, promotion finished.",
            self.who()
        );
        self.event(EventType::Normal, ReasonCode::Skipped, msg.clone());
        self.alert(Severity::Info, ReasonCode::Skipped, vec![], msg);
        self.out.push(Action::Concluded {
            result: Conclusion::Skipped,
        });
    }

    /// One failed check; at the threshold, the rollback.
    fn failed_check(&mut self, reports: Vec<CheckReport>) {
        self.st.failed_checks += 1;
        let threshold = self.spec.threshold();
        let failed = self.st.failed_checks.max(0) as u32;
        let text = join(&reports);
        if failed >= threshold {
            let why = format!("failed checks threshold reached {threshold}: {text}");
            self.rollback_with(ReasonCode::RollbackThreshold, why, reports);
            return;
        }
        let msg = format!(
            "Halt advancement of {}: {text} (failed checks {failed}/{threshold})",
            self.who()
        );
        let reason = self.reason(ReasonCode::CheckFailed, reports);
        self.out
            .event(EventType::Warning, reason, self.phase(), msg);
    }

    fn rollback(&mut self, code: ReasonCode, why: String) {
        self.rollback_with(code, why, vec![]);
    }

    /// Traffic back to the stable workload, canary to zero, phase Failed. failedChecks is kept
    /// (Flagger resets it and the count is lost).
    fn rollback_with(&mut self, code: ReasonCode, why: String, checks: Vec<CheckReport>) {
        let msg = format!("Rolling back {}: {why}", self.who());
        let reason = self.reason(code, checks);
        self.out.event(
            EventType::Warning,
            reason.clone(),
            self.phase(),
            msg.clone(),
        );
        self.out.alert(Severity::Error, reason.clone(), msg);
        self.out.push(Action::SetRoutes {
            routes: Routes {
                primary: 100,
                canary: 0,
                mirror: false,
            },
            reason: reason.clone(),
        });
        self.out.push(Action::ScaleDownCanary {
            reason: reason.clone(),
        });
        self.set_phase(Phase::Failed);
        self.st.canary_weight = 0;
        self.st.traffic_mirrored = false;
        self.st.canary_waiting_since = None;
        self.out.call_hooks(WebhookType::PostRollout, Phase::Failed);
        let msg = format!(
            "Canary failed! {} stays on revision {}, {} scaled down",
            self.who(),
            short(self.st.last_promoted_spec.as_deref().unwrap_or("")),
            self.canary_name()
        );
        let mut reason = reason;
        reason.code = ReasonCode::RolledBack;
        self.out
            .event(EventType::Warning, reason, Phase::Failed, msg);
        self.out.push(Action::Concluded {
            result: Conclusion::RolledBack,
        });
    }

    /// The stable workload did not roll out the promoted revision: traffic stays on the canary
    /// (which runs the same revision) and the run ends Failed with weight 100.
    fn failed_promotion(&mut self, why: String) {
        let msg = format!(
            "Promotion of {} failed: {why}; traffic stays on {}",
            self.who(),
            self.canary_name()
        );
        self.set_routes(0, 100, false, ReasonCode::PromotionFailed);
        self.set_phase(Phase::Failed);
        self.st.canary_weight = 100;
        self.event(EventType::Warning, ReasonCode::PromotionFailed, msg.clone());
        self.alert(Severity::Error, ReasonCode::PromotionFailed, vec![], msg);
        self.out.call_hooks(WebhookType::PostRollout, Phase::Failed);
        self.out.push(Action::Concluded {
            result: Conclusion::RolledBack,
        });
    }

    // ---- helpers ------------------------------------------------------------------------

    fn revision_changed(&self) -> bool {
        let rev = Some(self.input.observed.revision.as_str());
        rev != self.st.last_applied_spec.as_deref() && rev != self.st.last_promoted_spec.as_deref()
    }

    fn reset_run(&mut self, revision: &str) {
        self.st.last_applied_spec = Some(revision.to_string());
        self.st.canary_weight = 0;
        self.st.failed_checks = 0;
        self.st.iterations = 0;
        self.st.metrics.clear();
        self.st.no_data_checks = 0;
        self.st.error_checks = 0;
        self.st.canary_waiting_since = None;
        self.st.traffic_mirrored = false;
    }

    fn current_routes(&self) -> (u32, bool) {
        match self.input.observed.routes {
            Some(r) => (r.canary.min(100), r.mirror),
            None => (
                self.st.canary_weight.clamp(0, 100) as u32,
                self.st.traffic_mirrored,
            ),
        }
    }

    fn mirror_enabled(&self) -> bool {
        self.spec.analysis().and_then(|a| a.mirror).unwrap_or(false)
    }

    fn hooks(&self, kind: WebhookType) -> Vec<CanaryWebhook> {
        if self.gates_approved(kind) {
            return Vec::new();
        }
        self.spec
            .webhooks()
            .iter()
            .filter(|h| h.kind() == Some(kind))
            .cloned()
            .collect()
    }

    /// Asks for all `requests`; their answers in order, or the missing ones.
    fn ask(&self, requests: &[Request]) -> Step<Vec<&'a Answer>> {
        let missing: Vec<Request> = requests
            .iter()
            .filter(|r| self.answers.get(r).is_none())
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(Pending(missing));
        }
        Ok(requests
            .iter()
            .filter_map(|r| self.answers.get(r))
            .collect())
    }

    /// Calls the gate/analysis webhooks: `(ok, message)` for each.
    fn ask_hooks(
        &self,
        kind: WebhookType,
        phase: Phase,
        hooks: &[CanaryWebhook],
    ) -> Step<Vec<(bool, String)>> {
        let requests: Vec<Request> = hooks
            .iter()
            .map(|h| Request::Webhook {
                kind,
                phase,
                hook: h.clone(),
            })
            .collect();
        Ok(self
            .ask(&requests)?
            .into_iter()
            .map(|a| match a {
                Answer::Webhook { ok, message } => (*ok, message.clone()),
                Answer::Metric(_) => (
                    false,
                    "answered with a metric instead of a webhook result".into(),
                ),
            })
            .collect())
    }

    fn set_routes(&mut self, primary: u32, canary: u32, mirror: bool, code: ReasonCode) {
        let reason = self.reason(code, vec![]);
        self.out.push(Action::SetRoutes {
            routes: Routes {
                primary,
                canary,
                mirror,
            },
            reason,
        });
    }

    fn set_phase(&mut self, phase: Phase) {
        if self.st.phase != Some(phase) {
            self.st.phase = Some(phase);
            self.st.last_transition_time = Some(format_time(self.input.observed.now_ms));
        }
    }

    fn phase(&self) -> Phase {
        self.st.phase.unwrap_or(Phase::Initializing)
    }

    fn reason(&self, code: ReasonCode, checks: Vec<CheckReport>) -> Reason {
        Reason {
            code,
            checks,
            failed_checks: self.st.failed_checks.max(0) as u32,
            threshold: self.spec.threshold(),
        }
    }

    fn event(&mut self, type_: EventType, code: ReasonCode, message: String) {
        let reason = self.reason(code, vec![]);
        self.out.event(type_, reason, self.phase(), message);
    }

    fn alert(
        &mut self,
        severity: Severity,
        code: ReasonCode,
        checks: Vec<CheckReport>,
        msg: String,
    ) {
        let reason = self.reason(code, checks);
        self.out.alert(severity, reason, msg);
    }

    fn who(&self) -> String {
        format!("{}/{}", self.input.namespace, self.input.name)
    }

    fn canary_name(&self) -> String {
        format!(
            "{}{}",
            self.spec.target_ref.name,
            serin_api::labels::CANARY_SUFFIX
        )
    }

    /// ": <last failing checks>" from status, for a rollback decided at the start of a tick.
    fn failure_summary(&self) -> String {
        let bad: Vec<&str> = self
            .st
            .metrics
            .iter()
            .filter(|m| m.outcome != Outcome::Pass)
            .map(|m| m.message.as_str())
            .collect();
        if bad.is_empty() {
            String::new()
        } else {
            format!(": {}", bad.join("; "))
        }
    }

    /// Keeps Flagger's `Promoted` condition in step with the phase.
    fn sync_condition(&mut self) {
        let Some(phase) = self.st.phase else { return };
        let status = match phase {
            Phase::Initialized | Phase::Succeeded => "True",
            Phase::Failed => "False",
            _ => "Unknown",
        };
        let conditions = self.st.conditions.get_or_insert_with(Vec::new);
        let now = format_time(self.input.observed.now_ms);
        let message = self.st.message.clone();
        match conditions.iter_mut().find(|c| c.type_ == "Promoted") {
            Some(c) => {
                if c.status != status {
                    c.last_transition_time = Some(now.clone());
                }
                if c.status != status
                    || c.reason.as_deref() != Some(phase.as_str())
                    || c.message != message
                {
                    c.last_update_time = Some(now);
                }
                c.status = status.into();
                c.reason = Some(phase.as_str().into());
                c.message = message;
            }
            None => conditions.push(Condition {
                type_: "Promoted".into(),
                status: status.into(),
                last_update_time: Some(now.clone()),
                last_transition_time: Some(now),
                reason: Some(phase.as_str().into()),
                message,
            }),
        }
    }
}

fn hook_failures(
    kind: WebhookType,
    hooks: &[CanaryWebhook],
    answers: &[(bool, String)],
) -> Vec<CheckReport> {
    hooks
        .iter()
        .zip(answers)
        .filter(|(_, (ok, _))| !ok)
        .map(|(h, (_, body))| CheckReport {
            name: h.name.clone(),
            kind: kind.as_str().into(),
            outcome: Outcome::Fail,
            value: None,
            message: format!("{} webhook {} failed{}", kind.as_str(), h.name, colon(body)),
        })
        .collect()
}

fn join(reports: &[CheckReport]) -> String {
    reports
        .iter()
        .map(|r| r.message.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

fn halt_count(what: &str, count: i32, limit: u32) -> String {
    if limit > 0 {
        format!("{what} {count}/{limit}")
    } else {
        format!("{what} {count}, no limit")
    }
}

fn colon(body: &str) -> String {
    let body = body.trim();
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

/// The first 10 characters of a revision hash, for messages.
fn short(revision: &str) -> &str {
    revision.get(..10).unwrap_or(revision)
}

pub(crate) fn format_time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// RFC 3339 with milliseconds, for times a shell waits on (`lastTickTime`).
pub(crate) fn format_time_ms(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

fn parse_time(s: &str) -> Option<i64> {
    s.parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_millisecond())
}
