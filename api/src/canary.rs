//! `Canary` (`flagger.app/v1beta1`): every field of Flagger's CRD, with Flagger's defaults as
//! methods (`interval()`, `threshold()` …) so the stored object keeps exactly what the user wrote.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{
    CrossNamespaceObjectReference, CustomMetadata, FreeForm, LocalObjectReference,
    UnmanagedMetadata,
};
use crate::duration::GoDuration;
use crate::status::CanaryStatus;

/// Flagger's default analysis interval when none (or an unparsable one) is given.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Flagger's default progress deadline.
pub const DEFAULT_PROGRESS_DEADLINE_SECONDS: i32 = 600;
/// Flagger's default webhook timeout.
pub const DEFAULT_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// Default metric interval (Flagger applies it only to builtin metrics; serin to all, §10).
pub const DEFAULT_METRIC_INTERVAL: Duration = Duration::from_secs(60);

// Each printcolumn repeats `type_`/`priority` keys, which this lint mistakes for duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "flagger.app",
    version = "v1beta1",
    kind = "Canary",
    plural = "canaries",
    namespaced,
    status = "CanaryStatus",
    category = "all",
    derive = "PartialEq",
    derive = "Default",
    printcolumn(name = "Status", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Weight", type_ = "integer", json_path = ".status.canaryWeight"),
    printcolumn(
        name = "Suspended",
        type_ = "boolean",
        json_path = ".spec.suspend",
        priority = 1
    ),
    printcolumn(
        name = "FailedChecks",
        type_ = "integer",
        json_path = ".status.failedChecks",
        priority = 1
    ),
    printcolumn(
        name = "Interval",
        type_ = "string",
        json_path = ".spec.analysis.interval",
        priority = 1
    ),
    printcolumn(
        name = "Mirror",
        type_ = "boolean",
        json_path = ".spec.analysis.mirror",
        priority = 1
    ),
    printcolumn(
        name = "StepWeight",
        type_ = "string",
        json_path = ".spec.analysis.stepWeight",
        priority = 1
    ),
    printcolumn(
        name = "StepWeights",
        type_ = "string",
        json_path = ".spec.analysis.stepWeights",
        priority = 1
    ),
    printcolumn(
        name = "MaxWeight",
        type_ = "string",
        json_path = ".spec.analysis.maxWeight",
        priority = 1
    ),
    printcolumn(
        name = "LastTransitionTime",
        type_ = "string",
        json_path = ".status.lastTransitionTime"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct CanarySpec {
    /// Traffic router for this Canary (overrides `--mesh-provider`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Prometheus address for builtin metrics and inline queries (overrides `--metrics-server`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_server: Option<String>,
    /// The workload under canary: a Deployment, DaemonSet or Service.
    pub target_ref: LocalObjectReference,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaler_ref: Option<AutoscalerReference>,
    /// Required by the nginx and skipper providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_ref: Option<LocalObjectReference>,
    /// APISIX route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_ref: Option<LocalObjectReference>,
    /// Gloo upstream to copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_ref: Option<CrossNamespaceObjectReference>,
    pub service: CanaryService,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<CanaryAnalysis>,
    /// Deprecated alias of `analysis` (used only when `analysis` is absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_analysis: Option<CanaryAnalysis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_deadline_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_analysis: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revert_on_deletion: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoscalerReference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_scaler_queries: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_scaler_replicas: Option<ScalerReplicas>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScalerReplicas {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replicas: Option<i32>,
}

/// `spec.service`: the apex, primary and canary Services and the router's route settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryService {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub port: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<IntOrString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_distribution: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_discovery: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headless: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<GoDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_timeout: Option<GoDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateways: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_refs: Option<Vec<GatewayRef>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegation: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_policy: Option<FreeForm>,
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub match_: Option<Vec<HttpMatchRequest>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<HttpRewrite>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<HttpRetry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Headers>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<Vec<FreeForm>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors_policy: Option<FreeForm>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backends: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apex: Option<CustomMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<CustomMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CustomMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmanaged_metadata: Option<UnmanagedMetadata>,
}

/// A Gateway API parentRef (a Gateway, or a Service for GAMMA meshes such as Linkerd).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
}

/// Istio's `HTTPMatchRequest`, used for `service.match` and A/B `analysis.match`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpMatchRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<StringMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<StringMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<StringMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<StringMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, StringMatch>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_params: Option<BTreeMap<String, StringMatch>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub without_headers: Option<BTreeMap<String, StringMatch>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateways: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_uri_case: Option<bool>,
}

/// One of exact, prefix, suffix or regex.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StringMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HttpRewrite {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    /// Gateway API: `ReplaceFullPath` (default) or `ReplacePrefixMatch`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpRetry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_try_timeout: Option<GoDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_on: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Headers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<HeaderOperations>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<HeaderOperations>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HeaderOperations {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove: Option<Vec<String>>,
}

/// `spec.analysis`: the schedule, the checks and the gates.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryAnalysis {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<GoDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iterations: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_weight: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_weight: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_weight: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_weights: Option<Vec<i32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_weight_promotion: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_ready_threshold: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_ready_threshold: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts: Option<Vec<CanaryAlert>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Vec<CanaryMetric>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhooks: Option<Vec<CanaryWebhook>>,
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub match_: Option<Vec<HttpMatchRequest>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_affinity: Option<SessionAffinity>,
    /// serin extension: what a metric check that returned no data does (default: a failed check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_data_policy: Option<OutcomePolicy>,
    /// serin extension: what a metric check that could not run does (default: a failed check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_policy: Option<OutcomePolicy>,
}

/// serin extension (`spec.analysis.noDataPolicy` / `errorPolicy`): Flagger counts no-data and
/// errors as failed checks, so a quiet night rolls back a good release. `action: halt` holds the
/// analysis where it is instead, and rolls back after `limit` consecutive halted checks.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutcomePolicy {
    pub action: PolicyAction,
    /// Consecutive halted checks before rollback; absent or 0 halts without limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i32>,
}

/// Canary rule (in `validate::canary::RULES`): `noDataPolicy` / `errorPolicy` limits.
pub fn outcome_policy_rule(canary: &crate::Canary, out: &mut Vec<crate::validate::Diagnostic>) {
    use crate::validate::Diagnostic;
    let (base, analysis) = match (&canary.spec.analysis, &canary.spec.canary_analysis) {
        (Some(a), _) => ("spec.analysis", a),
        (None, Some(a)) => ("spec.canaryAnalysis", a),
        (None, None) => return,
    };
    for (field, policy) in [
        ("noDataPolicy", &analysis.no_data_policy),
        ("errorPolicy", &analysis.error_policy),
    ] {
        let Some(p) = policy else { continue };
        let path = format!("{base}.{field}");
        match (p.action, p.limit) {
            (_, Some(l)) if l < 0 => out.push(Diagnostic::error(
                format!("{path}.limit"),
                format!("limit must be 0 or more (got {l}); 0 halts without limit"),
            )),
            (PolicyAction::Fail, Some(l)) if l > 0 => out.push(Diagnostic::warning(
                format!("{path}.limit"),
                "limit applies to action: halt only; with action: fail the threshold decides",
            )),
            (PolicyAction::Halt, None | Some(0)) => out.push(Diagnostic::warning(
                path,
                "action: halt without a limit holds the analysis for as long as the condition lasts; \
                 set limit to roll back after that many consecutive checks",
            )),
            _ => {}
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PolicyAction {
    /// Count as a failed check (Flagger's behaviour).
    #[default]
    Fail,
    /// Hold advancement without counting a failed check.
    Halt,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryAlert {
    pub name: String,
    /// `info` (everything), `warn` (warn and error) or `error`; empty means `info`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    pub provider_ref: CrossNamespaceObjectReference,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryMetric {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<GoDuration>,
    /// Deprecated single threshold (a minimum for request-success-rate, a maximum otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_range: Option<ThresholdRange>,
    /// Deprecated inline PromQL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_ref: Option<CrossNamespaceObjectReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_variables: Option<BTreeMap<String, String>>,
    /// serin: compare canary with primary with a statistical judge instead of a fixed range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<crate::judge::JudgeSpec>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ThresholdRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryWebhook {
    pub name: String,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mute_alert: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<GoDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i32>,
    #[serde(
        default,
        rename = "disableTLS",
        skip_serializing_if = "Option::is_none"
    )]
    pub disable_tls: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionAffinity {
    pub cookie_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_cookie_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_only: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitioned: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_site: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure: Option<bool>,
}

/// How a Canary moves traffic, chosen as Flagger chooses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Progressive weights (stepWeight / stepWeights).
    Canary,
    /// iterations + match.
    AbTesting,
    /// iterations without match.
    BlueGreen,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Canary => "canary",
            Strategy::AbTesting => "ab-testing",
            Strategy::BlueGreen => "blue-green",
        }
    }
}

/// The eight webhook types (an empty type means `rollout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WebhookType {
    ConfirmRollout,
    PreRollout,
    Rollout,
    ConfirmTrafficIncrease,
    ConfirmPromotion,
    PostRollout,
    Rollback,
    Event,
}

impl WebhookType {
    pub const ALL: [WebhookType; 8] = [
        WebhookType::ConfirmRollout,
        WebhookType::PreRollout,
        WebhookType::Rollout,
        WebhookType::ConfirmTrafficIncrease,
        WebhookType::ConfirmPromotion,
        WebhookType::PostRollout,
        WebhookType::Rollback,
        WebhookType::Event,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookType::ConfirmRollout => "confirm-rollout",
            WebhookType::PreRollout => "pre-rollout",
            WebhookType::Rollout => "rollout",
            WebhookType::ConfirmTrafficIncrease => "confirm-traffic-increase",
            WebhookType::ConfirmPromotion => "confirm-promotion",
            WebhookType::PostRollout => "post-rollout",
            WebhookType::Rollback => "rollback",
            WebhookType::Event => "event",
        }
    }

    /// Parses a webhook `type`; `""` is `rollout` as in Flagger.
    pub fn parse(s: &str) -> Option<Self> {
        if s.is_empty() {
            return Some(WebhookType::Rollout);
        }
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// The builtin metric names.
pub const BUILTIN_METRICS: [&str; 2] = ["request-success-rate", "request-duration"];

impl CanarySpec {
    /// `analysis`, or the deprecated `canaryAnalysis` when `analysis` is absent.
    pub fn analysis(&self) -> Option<&CanaryAnalysis> {
        self.analysis.as_ref().or(self.canary_analysis.as_ref())
    }

    /// Analysis interval; 60s when absent or unparsable. Unlike Flagger, not clamped to 10s
    /// (validation warns instead), so local runs and tests can use short intervals.
    pub fn interval(&self) -> Duration {
        self.analysis()
            .and_then(|a| a.interval.as_ref())
            .and_then(|d| d.parse().ok())
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_INTERVAL)
    }

    /// Failed checks before rollback; 1 when absent or ≤ 0.
    pub fn threshold(&self) -> u32 {
        match self.analysis().and_then(|a| a.threshold) {
            Some(t) if t > 0 => t as u32,
            _ => 1,
        }
    }

    /// The weight at which promotion starts: min(100, last stepWeights) with stepWeights,
    /// else maxWeight, else 100.
    pub fn max_weight(&self) -> u32 {
        let Some(a) = self.analysis() else { return 100 };
        if let Some(steps) = a.step_weights.as_ref().filter(|s| !s.is_empty()) {
            return steps.last().copied().unwrap_or(100).clamp(0, 100) as u32;
        }
        match a.max_weight {
            Some(w) if w > 0 => w.min(100) as u32,
            _ => 100,
        }
    }

    pub fn progress_deadline(&self) -> Duration {
        let secs = self
            .progress_deadline_seconds
            .filter(|s| *s > 0)
            .unwrap_or(DEFAULT_PROGRESS_DEADLINE_SECONDS);
        Duration::from_secs(secs as u64)
    }

    pub fn skip_analysis(&self) -> bool {
        self.skip_analysis.unwrap_or(false) || self.analysis().is_none()
    }

    pub fn suspended(&self) -> bool {
        self.suspend.unwrap_or(false)
    }

    pub fn iterations(&self) -> u32 {
        self.analysis()
            .and_then(|a| a.iterations)
            .filter(|i| *i > 0)
            .unwrap_or(0) as u32
    }

    pub fn strategy(&self) -> Strategy {
        let Some(a) = self.analysis() else {
            return Strategy::Canary;
        };
        let iterations = a.iterations.unwrap_or(0) > 0;
        let has_match = a.match_.as_ref().is_some_and(|m| !m.is_empty());
        match (iterations, has_match) {
            (true, true) => Strategy::AbTesting,
            (true, false) => Strategy::BlueGreen,
            _ => Strategy::Canary,
        }
    }

    /// Apex Service name: `service.name`, else the target's name.
    pub fn service_name(&self) -> &str {
        self.service
            .name
            .as_deref()
            .unwrap_or(&self.target_ref.name)
    }

    pub fn primary_ready_threshold(&self) -> u32 {
        self.analysis()
            .and_then(|a| a.primary_ready_threshold)
            .unwrap_or(100)
            .clamp(0, 100) as u32
    }

    pub fn canary_ready_threshold(&self) -> u32 {
        self.analysis()
            .and_then(|a| a.canary_ready_threshold)
            .unwrap_or(100)
            .clamp(0, 100) as u32
    }

    pub fn metrics(&self) -> &[CanaryMetric] {
        self.analysis()
            .and_then(|a| a.metrics.as_deref())
            .unwrap_or(&[])
    }

    pub fn webhooks(&self) -> &[CanaryWebhook] {
        self.analysis()
            .and_then(|a| a.webhooks.as_deref())
            .unwrap_or(&[])
    }

    pub fn alerts(&self) -> &[CanaryAlert] {
        self.analysis()
            .and_then(|a| a.alerts.as_deref())
            .unwrap_or(&[])
    }
}

impl CanaryMetric {
    /// Metric interval; `1m` when absent (for templates too, unlike Flagger).
    pub fn interval(&self) -> Duration {
        self.interval
            .as_ref()
            .and_then(|d| d.parse().ok())
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_METRIC_INTERVAL)
    }

    pub fn is_builtin(&self) -> bool {
        BUILTIN_METRICS.contains(&self.name.as_str())
    }

    /// The effective range: `thresholdRange`, or the deprecated `threshold` read as Flagger
    /// reads it (a minimum for request-success-rate, a maximum for everything else).
    pub fn range(&self) -> ThresholdRange {
        if let Some(r) = &self.threshold_range {
            return r.clone();
        }
        match self.threshold {
            Some(t) if self.name == "request-success-rate" => ThresholdRange {
                min: Some(t),
                max: None,
            },
            Some(t) => ThresholdRange {
                min: None,
                max: Some(t),
            },
            None => ThresholdRange::default(),
        }
    }
}

impl CanaryWebhook {
    /// The webhook type; `None` when the type is not one of the eight.
    pub fn kind(&self) -> Option<WebhookType> {
        WebhookType::parse(self.type_.as_deref().unwrap_or(""))
    }

    /// Timeout; 10s when absent or unparsable.
    pub fn timeout(&self) -> Duration {
        self.timeout
            .as_ref()
            .and_then(|d| d.parse().ok())
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_WEBHOOK_TIMEOUT)
    }
}

impl CanaryAlert {
    /// Severity; an empty or absent severity is `info` (Flagger's documented default).
    pub fn severity(&self) -> &str {
        match self.severity.as_deref() {
            None | Some("") => "info",
            Some(s) => s,
        }
    }
}
