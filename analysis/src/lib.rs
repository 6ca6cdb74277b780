//! The canary analysis engine: a deterministic, sans-I/O state machine.
//!
//! The engine decides every promotion and rollback; the shells (controller, local mode,
//! `serin simulate`) observe the world, feed the engine, and carry out what it says. It has no
//! async, no clock and no network: time is an input (`Observed::now_ms`), and everything it
//! needs to resume after a restart lives in `CanaryStatus`.
//!
//! # One tick, two phases
//!
//! A tick may need answers from the outside world (webhook calls, metric queries) before it can
//! decide. [`tick`] is therefore called repeatedly with a growing set of [`Answers`]:
//!
//! ```text
//! let mut answers = Answers::default();
//! let output = loop {
//!     match serin_analysis::tick(&input, &answers) {
//!         Tick::Need(requests) => for r in requests { answers.insert(&r, run(&r).await) },
//!         Tick::Done(output) => break output,
//!     }
//! };
//! // carry out output.actions in order, write output.status, requeue after output.requeue_after_ms
//! ```
//!
//! The engine replays the tick from the start each time (it is pure and cheap), so the
//! requests it returns are only those whose answers it does not have yet; the requests of one
//! `Need` may run concurrently. [`tick_with`] does the loop for synchronous callers.
//!
//! `Need` never changes anything: only the `Done` output carries a new status and actions.
//! Webhooks whose result cannot change a decision (`post-rollout`, `event`) are not requests
//! but [`Action::CallWebhook`] actions, fired after the status is written.
//!
//! # Checks
//!
//! Each metric check ends in one [`Outcome`]: Pass, Fail, NoData or Error, kept apart in status
//! (`status.metrics`) and in every message. By default NoData and Error count as failed checks,
//! as in Flagger; `spec.analysis.noDataPolicy` / `errorPolicy` with `action: halt` make them
//! halt advancement instead and roll back only after `limit` consecutive halted ticks.
//!
//! # Commands
//!
//! `serin promote|abort|approve|halt` reach the engine as [`Observed::commands`], read from the
//! Canary's annotations by the shell. They are acted on before anything else of the tick, once
//! each and only for the revision they were bound to; see [`commands`].
//!
//! # Comparators (judges)
//!
//! A metric's verdict normally comes from its threshold range. A shell that measures canary
//! and primary side by side answers with [`Measurement::Comparison`]; the engine then asks the
//! [`Comparator`] given in [`Input::comparator`] (the statistical judge plugs in there) and
//! uses its [`Verdict`] as the outcome.

#![forbid(unsafe_code)]

mod checks;
pub mod commands;
mod engine;
pub mod judge;
mod output;
pub mod sim;
pub mod weights;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serin_api::canary::{CanaryMetric, CanaryWebhook};
pub use serin_api::status::{MetricStatus, Outcome};
use serin_api::{CanarySpec, CanaryStatus, Phase, WebhookType};

pub use checks::{Evaluation, evaluate_range};

/// Everything the engine needs for one tick.
#[derive(Clone, Copy)]
pub struct Input<'a> {
    /// Namespace and name of the Canary, for messages (`prod/web`).
    pub namespace: &'a str,
    pub name: &'a str,
    pub spec: &'a CanarySpec,
    /// The status as last written (default for a new Canary).
    pub status: &'a CanaryStatus,
    pub observed: &'a Observed,
    /// Verdicts for [`Measurement::Comparison`] answers; `None` turns them into errors.
    pub comparator: Option<&'a dyn Comparator>,
}

/// What the shell observed this tick.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Observed {
    /// Unix time in milliseconds: the engine's only clock.
    pub now_ms: i64,
    /// Hash of the target's pod template (and tracked configs): the revision under analysis
    /// when it differs from `status.lastPromotedSpec`.
    pub revision: String,
    /// The stable workload (`web`): during Initializing and Promoting the engine waits for it.
    pub primary: Readiness,
    /// The canary workload (`web-canary`).
    pub canary: Readiness,
    /// Weights read back from the router; `None` when the router cannot say (the engine then
    /// trusts `status.canaryWeight`).
    pub routes: Option<Routes>,
    /// A retry request (the `serin.dev/retry` annotation's value). A value different from
    /// `status.lastRetry` starts a new analysis of the current revision after Failed.
    pub retry: Option<String>,
    /// Commands from people and pipelines: `serin promote|abort|approve|halt`.
    #[serde(default)]
    pub commands: Commands,
}

/// The command annotations of a Canary, as read by the shell (see [`commands`] for how the
/// engine acts on them). `None` when the annotation is absent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Commands {
    /// `serin.dev/promote`: a token, optionally bound to a revision (`<token>@<revision>`).
    pub promote: Option<String>,
    /// `serin.dev/abort`: a token, optionally bound to a revision (`<token>@<revision>`).
    pub abort: Option<String>,
    /// `serin.dev/gate`: `halted`, or `approved` optionally bound (`approved@<revision>`).
    pub gate: Option<String>,
}

/// Readiness of a workload.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum Readiness {
    #[default]
    Ready,
    /// Still rolling out; the engine waits (this is never a failed check).
    NotReady { reason: String },
    /// The workload reported that its progress deadline passed (Deployment condition
    /// `ProgressDeadlineExceeded`). The engine also measures the deadline itself from
    /// `status.canaryWaitingSince`, so a shell that cannot tell may always say `NotReady`.
    DeadlineExceeded { reason: String },
}

/// Traffic split: primary + canary = 100, optionally mirroring to the canary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Routes {
    pub primary: u32,
    pub canary: u32,
    pub mirror: bool,
}

/// Something the engine must know before it can finish the tick.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "request")]
// A few per tick: boxing would only add noise for the shells that match on it.
#[allow(clippy::large_enum_variant)]
pub enum Request {
    /// Call a gate or analysis webhook (`confirm-rollout`, `pre-rollout`, `rollout`,
    /// `confirm-traffic-increase`, `confirm-promotion`, `rollback`) and report whether it
    /// succeeded (HTTP status ≤ 202). `phase` goes into the payload.
    Webhook {
        kind: WebhookType,
        phase: Phase,
        hook: CanaryWebhook,
    },
    /// Measure one metric of `spec.analysis.metrics` for the canary.
    Metric { metric: CanaryMetric },
}

impl Request {
    /// Key of the answer: `webhook/<type>/<name>` or `metric/<name>`.
    pub fn id(&self) -> String {
        match self {
            Request::Webhook { kind, hook, .. } => {
                format!("webhook/{}/{}", kind.as_str(), hook.name)
            }
            Request::Metric { metric } => format!("metric/{}", metric.name),
        }
    }
}

/// The answer to a [`Request`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "answer")]
pub enum Answer {
    /// `ok` = 2xx (≤ 202); `message` is the response body or the transport error.
    Webhook {
        ok: bool,
        message: String,
    },
    Metric(Measurement),
}

/// What a metric provider returned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Measurement {
    /// One value, checked against the metric's threshold range.
    Value { value: f64 },
    /// The query ran but returned nothing (empty result, NaN): usually no traffic.
    NoData { message: String },
    /// The query could not run (provider unreachable, bad template, HTTP error).
    Error { message: String },
    /// Canary and primary measured side by side, for a [`Comparator`].
    Comparison { canary: Sample, primary: Sample },
}

/// Observations of one side (canary or primary) for a comparator.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    /// Number of requests (or events) observed.
    pub count: f64,
    /// How many of them were failures (errors), when the metric is a rate.
    #[serde(default)]
    pub failures: f64,
    /// Individual observations (e.g. latencies in ms), when the metric is a distribution.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<f64>,
}

/// Decides a metric's outcome from a canary/primary comparison (the statistical judge).
pub trait Comparator {
    fn compare(&self, metric: &CanaryMetric, canary: &Sample, primary: &Sample) -> Verdict;

    /// After `compare` gave NoData for `metric`: whether it asks to hold the current weight
    /// (a judge waiting for traffic, or pausing for a person). The engine then holds whatever
    /// `noDataPolicy` says and never rolls back on it.
    fn hold(&self, _metric: &str) -> Option<judge::Hold> {
        None
    }
}

/// A comparator's decision: the outcome, the value it reports (e.g. the difference or the
/// p-value) and a short explanation that goes into events ("canary 4.1% vs primary 0.3%").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub outcome: Outcome,
    pub value: Option<f64>,
    pub explanation: String,
}

/// Answers collected so far in this tick, keyed by [`Request::id`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Answers(pub BTreeMap<String, Answer>);

impl Answers {
    pub fn insert(&mut self, request: &Request, answer: Answer) {
        self.0.insert(request.id(), answer);
    }

    pub fn get(&self, request: &Request) -> Option<&Answer> {
        self.0.get(&request.id())
    }
}

/// The result of one call of [`tick`].
#[derive(Clone, Debug, PartialEq)]
// One per call, moved out at once.
#[allow(clippy::large_enum_variant)]
pub enum Tick {
    /// Answer these (concurrently if you like), then call [`tick`] again.
    Need(Vec<Request>),
    Done(Output),
}

/// The decision of a tick.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    /// The status to write (complete: resuming from it continues exactly where this tick left).
    pub status: CanaryStatus,
    /// To carry out in order.
    pub actions: Vec<Action>,
    /// When to tick again: the analysis interval.
    pub requeue_after_ms: u64,
}

/// What the shell must do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "action")]
pub enum Action {
    /// Adopt the target: create the apex/primary/canary Services and the router's objects at
    /// 100/0, and record `stable_revision` as the stable hash (`serin.dev/stable-hash`).
    Initialize { stable_revision: String },
    /// Set the router's weights (with `spec.analysis.match`, the A/B router applies the canary
    /// weight to the matching requests only).
    SetRoutes { routes: Routes, reason: Reason },
    /// Create or scale up the canary workload (`web-canary`) from the held template `revision`.
    ScaleUpCanary { revision: String, reason: Reason },
    /// Scale the canary workload to zero.
    ScaleDownCanary { reason: Reason },
    /// Promotion: set the stable hash to `revision` and unpause the target, which then rolls
    /// out; the engine waits for it (`Observed::primary`) before shifting traffic back.
    Promote { revision: String, reason: Reason },
    /// A Kubernetes event on the Canary (and log line).
    RecordEvent {
        #[serde(rename = "type")]
        type_: EventType,
        reason: Reason,
        message: String,
    },
    /// An alert for the providers of `spec.analysis.alerts` listed in `alerts` (those whose
    /// severity admits it) and for the shell's global notifier, if any.
    SendAlert {
        severity: Severity,
        alerts: Vec<String>,
        message: String,
        reason: Reason,
    },
    /// Fire-and-forget webhook (`post-rollout`, `event`): the shell reports a failure as a
    /// warning event, it changes no decision. `event_message`/`event_type` are set for `event`.
    CallWebhook {
        kind: WebhookType,
        phase: Phase,
        hook: CanaryWebhook,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event_message: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event_type: Option<EventType>,
    },
    /// The run ended: for the shell's counters (`flagger_canary_successes_total` …).
    Concluded { result: Conclusion },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// Alert severity; `spec.analysis.alerts[].severity` absent or empty means `info`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warn,
    Error,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Conclusion {
    Promoted,
    RolledBack,
    Skipped,
}

/// Why an action was taken: a stable code plus, for decisions made on checks, the checks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reason {
    pub code: ReasonCode,
    /// The checks behind the decision (failed, no-data or error metrics and webhooks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckReport>,
    /// `status.failedChecks` after this tick, and the threshold.
    pub failed_checks: u32,
    pub threshold: u32,
}

/// Stable, machine-readable reason codes (also used as Kubernetes event reasons).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReasonCode {
    Initialized,
    NewRevision,
    RevisionChangedRestart,
    Retry,
    WaitingForApproval,
    StartAnalysis,
    AdvanceWeight,
    AdvanceIteration,
    Mirroring,
    TrafficIncreaseWaiting,
    PromotionWaiting,
    CanaryNotReady,
    PrimaryNotReady,
    Halted,
    CheckFailed,
    Promoting,
    RoutingToPrimary,
    RoutingToCanary,
    Finalising,
    Succeeded,
    Skipped,
    RollbackThreshold,
    RollbackNoData,
    RollbackError,
    RollbackWebhook,
    RollbackProgressDeadline,
    PromotionFailed,
    RolledBack,
    /// `serin.dev/abort` rolled the analysis back.
    Aborted,
    /// `serin.dev/promote` skipped the remaining analysis.
    PromotionRequested,
    /// A command that had nothing to act on, or was meant for another revision.
    CommandIgnored,
    /// `serin.dev/gate=halted` holds the analysis.
    GateHalted,
    /// `serin.dev/gate=approved` opened the confirm-* gates of a revision.
    GateApproved,
}

/// One check's result, as it appears in reasons and status.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    /// Metric or webhook name.
    pub name: String,
    /// `metric` or the webhook type (`rollout`, `pre-rollout`).
    pub kind: String,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Human text: "error-rate 4.2 > max 1", "no data for request-duration: …".
    pub message: String,
}

/// Runs one tick (see the module docs for the two-phase protocol).
pub fn tick(input: &Input<'_>, answers: &Answers) -> Tick {
    engine::tick(input, answers)
}

/// Runs one complete tick, answering requests with `answer` (for synchronous shells:
/// `serin simulate`, tests).
pub fn tick_with(input: &Input<'_>, mut answer: impl FnMut(&Request) -> Answer) -> Output {
    let mut answers = Answers::default();
    loop {
        match tick(input, &answers) {
            Tick::Done(output) => return output,
            Tick::Need(requests) => {
                for r in requests {
                    let a = answer(&r);
                    answers.insert(&r, a);
                }
            }
        }
    }
}
