//! `Canary.status`: Flagger's fields, which are everything a restarted controller needs to
//! resume (phase, weight, failed checks, iterations, hashes).
//!
//! The analysis engine owns what goes in here; serin's own additions are camelCase fields that
//! Flagger's tooling ignores.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use crate::common::Condition;

/// The phases of a Canary, in Flagger's spelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Phase {
    Initializing,
    Initialized,
    Waiting,
    Progressing,
    WaitingPromotion,
    Promoting,
    Finalising,
    Succeeded,
    Failed,
    Terminating,
    Terminated,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Initializing => "Initializing",
            Phase::Initialized => "Initialized",
            Phase::Waiting => "Waiting",
            Phase::Progressing => "Progressing",
            Phase::WaitingPromotion => "WaitingPromotion",
            Phase::Promoting => "Promoting",
            Phase::Finalising => "Finalising",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
            Phase::Terminating => "Terminating",
            Phase::Terminated => "Terminated",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStatus {
    /// Flagger writes `""` for a Canary it has not seen yet; serin reads that as absent.
    #[serde(
        default,
        deserialize_with = "empty_phase_is_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub phase: Option<Phase>,
    #[serde(default)]
    pub failed_checks: i32,
    #[serde(default)]
    pub canary_weight: i32,
    #[serde(default)]
    pub iterations: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_spec: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_promoted_spec: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracked_configs: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_affinity_cookie: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_session_affinity_cookie: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_session_affinity_cookie: Option<String>,
    /// serin: each metric's last check (value and outcome), in `spec.analysis.metrics` order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricStatus>,
    /// serin: consecutive checks halted on no data (`noDataPolicy: {action: halt}`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub no_data_checks: i32,
    /// serin: consecutive checks halted on errors (`errorPolicy: {action: halt}`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub error_checks: i32,
    /// serin: when the engine started waiting for the canary to be ready (RFC 3339); the
    /// progress deadline counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_waiting_since: Option<String>,
    /// serin: traffic is mirrored to the canary (mirror pre-stage), for routers that cannot say.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub traffic_mirrored: bool,
    /// serin: the last `serin.dev/retry` value acted upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_retry: Option<String>,
    /// serin: the last `serin.dev/promote` value acted upon (or ignored, with an event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_promote: Option<String>,
    /// serin: the last `serin.dev/abort` value acted upon (or ignored, with an event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_abort: Option<String>,
    /// serin: the revision whose confirm-* gates `serin.dev/gate=approved` opened; gates of any
    /// other revision stay closed until approved again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_revision: Option<String>,
    /// serin: the statistical judges' evidence for the run under analysis (`judge:` metrics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<crate::judge::JudgeRecord>,
    /// serin: when the analysis last advanced (RFC 3339, milliseconds); a restarted controller
    /// waits out the interval from here instead of ticking at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_tick_time: Option<String>,
    /// serin: the explanation of the last decision ("Rolling back prod/web: …").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

/// The outcome of one check: kept apart so that no data and errors are never mistaken for a
/// failing metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Outcome {
    Pass,
    Fail,
    NoData,
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "Pass",
            Outcome::Fail => "Fail",
            Outcome::NoData => "NoData",
            Outcome::Error => "Error",
        }
    }
}

/// serin: the last check of one metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricStatus {
    pub name: String,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// "error-rate 4.2 > max 1", "no data: …".
    pub message: String,
    /// When it was checked (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check_time: Option<String>,
}

fn empty_phase_is_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Phase>, D::Error> {
    let raw: Option<String> = Option::deserialize(d)?;
    match raw.as_deref() {
        None | Some("") => Ok(None),
        Some(s) => serde_json::from_value(serde_json::Value::String(s.to_string()))
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}
