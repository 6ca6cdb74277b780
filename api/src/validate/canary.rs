//! Semantic rules of a Canary: Flagger's runtime checks, the rules its users asked for (issue
//! #312) and serin's own. To add a rule, write a `fn(&Canary, &mut Vec<Diagnostic>)` and append
//! it to [`RULES`].

use std::time::Duration;

use url::Url;

use super::{Diagnostic, Rule};
use crate::canary::{BUILTIN_METRICS, CanaryAnalysis};
use crate::duration::GoDuration;
use crate::provider::{Support, TRAFFIC_PROVIDER_NAMES, TrafficProvider};
use crate::{Canary, WebhookType};

/// Every Canary rule, run in order.
pub const RULES: &[Rule<Canary>] = &[
    target_ref,
    provider,
    metrics_server,
    provider_requirements,
    service,
    analysis_present,
    schedule,
    weights,
    ab_match,
    thresholds,
    interval,
    progress_deadline,
    metrics,
    webhooks,
    alerts,
    session_affinity,
    autoscaler_ref,
    crate::judge::canary_rule,
    crate::canary::outcome_policy_rule,
    super::workload_kind::rule,
];

/// Analysis intervals below this are honoured by serin but clamped to it by Flagger.
pub const FLAGGER_MIN_INTERVAL: Duration = Duration::from_secs(10);
/// Progress deadlines below this leave pods too little time to start.
pub const MIN_PROGRESS_DEADLINE_SECONDS: i32 = 60;

const TARGET_KINDS: [&str; 4] = ["Deployment", "DaemonSet", "StatefulSet", "Service"];
const KNATIVE_API_VERSION: &str = "serving.knative.dev/v1";
const AUTOSCALER_KINDS: [&str; 2] = ["HorizontalPodAutoscaler", "ScaledObject"];
const ALERT_SEVERITIES: [&str; 3] = ["info", "warn", "error"];

/// `spec.analysis`, or `spec.canaryAnalysis` when only the deprecated name is used: the path
/// under which findings about the analysis are reported.
fn analysis(canary: &Canary) -> Option<(&'static str, &CanaryAnalysis)> {
    match (&canary.spec.analysis, &canary.spec.canary_analysis) {
        (Some(a), _) => Some(("spec.analysis", a)),
        (None, Some(a)) => Some(("spec.canaryAnalysis", a)),
        (None, None) => None,
    }
}

fn is_knative_target(canary: &Canary) -> bool {
    let t = &canary.spec.target_ref;
    t.kind.as_deref() == Some("Service") && t.api_version.as_deref() == Some(KNATIVE_API_VERSION)
}

fn target_ref(canary: &Canary, out: &mut Vec<Diagnostic>) {
    let t = &canary.spec.target_ref;
    match t.kind.as_deref() {
        None | Some("") => out.push(Diagnostic::error(
            "spec.targetRef.kind",
            "missing: set the kind of the workload, one of Deployment, DaemonSet, StatefulSet or Service",
        )),
        Some(kind) if !TARGET_KINDS.contains(&kind) => out.push(Diagnostic::error(
            "spec.targetRef.kind",
            format!(
                "{kind:?} is not supported: use Deployment, DaemonSet, StatefulSet or Service (a Knative \
                 Service with apiVersion {KNATIVE_API_VERSION})"
            ),
        )),
        Some(_) => {}
    }
    if t.name.is_empty() {
        out.push(Diagnostic::error(
            "spec.targetRef.name",
            "empty: name the workload under canary",
        ));
    }
}

fn provider(canary: &Canary, out: &mut Vec<Diagnostic>) {
    let Some(p) = canary.spec.provider.as_deref() else {
        return;
    };
    match (traffic_provider_problem(p), TrafficProvider::parse(p)) {
        (Some(problem), _) => out.push(Diagnostic::error("spec.provider", problem)),
        (None, Some(provider)) => out.extend(super::router::router_rules(&canary.spec, provider)),
        (None, None) => {}
    }
}

/// Why a traffic provider name cannot be used (unknown, or named but not driven by serin), with
/// the fix; shared with the controller's `--mesh-provider`.
pub fn traffic_provider_problem(name: &str) -> Option<String> {
    match TrafficProvider::parse(name) {
        None => {
            let hint = super::suggest::closest(name, TRAFFIC_PROVIDER_NAMES)
                .map(|s| format!("did you mean {s}? "))
                .unwrap_or_default();
            let driven: Vec<_> = TrafficProvider::cluster_names().collect();
            Some(format!(
                "unknown provider {name:?}: {hint}use one of {}",
                driven.join(", ")
            ))
        }
        Some(p) => match p.support() {
            Support::Driven => None,
            Support::Refused(fix) => Some(format!("provider {name} is not supported: {fix}")),
        },
    }
}

fn metrics_server(canary: &Canary, out: &mut Vec<Diagnostic>) {
    if let Some(problem) = canary
        .spec
        .metrics_server
        .as_deref()
        .and_then(http_url_problem)
    {
        out.push(Diagnostic::error("spec.metricsServer", problem));
    }
}

fn provider_requirements(canary: &Canary, out: &mut Vec<Diagnostic>) {
    let spec = &canary.spec;
    let provider = spec.provider.as_deref().and_then(TrafficProvider::parse);
    match provider {
        Some(TrafficProvider::Nginx) if spec.ingress_ref.is_none() => out.push(Diagnostic::error(
            "spec.ingressRef",
            "provider nginx needs the Ingress to split: add ingressRef: {apiVersion: \
             networking.k8s.io/v1, kind: Ingress, name: <ingress>}",
        )),
        Some(p @ TrafficProvider::GatewayApi { .. })
            if spec.service.gateway_refs.as_ref().is_none_or(Vec::is_empty) =>
        {
            out.push(Diagnostic::error(
                "spec.service.gatewayRefs",
                format!(
                    "provider {p} needs the Gateway to attach the HTTPRoute to: add \
                     service.gatewayRefs: [{{name: <gateway>, namespace: <ns>}}]"
                ),
            ))
        }
        _ => {}
    }
    if is_knative_target(canary) {
        out.push(Diagnostic::error(
            "spec.targetRef",
            "a Knative Service target is not supported: serin does not drive Knative traffic \
             yet; canary the Deployment behind it instead",
        ));
    }
}

fn service(canary: &Canary, out: &mut Vec<Diagnostic>) {
    let s = &canary.spec.service;
    if !(1..=65535).contains(&s.port) {
        out.push(Diagnostic::error(
            "spec.service.port",
            format!("{} is not a port: use 1..65535", s.port),
        ));
    }
    duration(s.timeout.as_ref(), "spec.service.timeout", out);
    duration(
        s.backend_timeout.as_ref(),
        "spec.service.backendTimeout",
        out,
    );
    if let Some(r) = &s.retries {
        duration(
            r.per_try_timeout.as_ref(),
            "spec.service.retries.perTryTimeout",
            out,
        );
    }
}

fn analysis_present(canary: &Canary, out: &mut Vec<Diagnostic>) {
    let spec = &canary.spec;
    match (&spec.analysis, &spec.canary_analysis) {
        (None, None) => out.push(Diagnostic::warning(
            "spec.analysis",
            "missing: every release is promoted without checks; add analysis with interval, \
             threshold and stepWeight (or iterations)",
        )),
        (None, Some(_)) => out.push(Diagnostic::warning(
            "spec.canaryAnalysis",
            "deprecated: rename canaryAnalysis to analysis",
        )),
        (Some(_), Some(_)) => out.push(Diagnostic::warning(
            "spec.canaryAnalysis",
            "ignored because analysis is set: remove canaryAnalysis",
        )),
        (Some(_), None) => {}
    }
}

/// Exactly one of stepWeight, stepWeights and iterations decides how the analysis advances.
fn schedule(canary: &Canary, out: &mut Vec<Diagnostic>) {
    let Some((at, a)) = analysis(canary) else {
        return;
    };
    let mut set = Vec::new();
    if a.step_weight.is_some() {
        set.push("stepWeight");
    }
    if a.step_weights.is_some() {
        set.push("stepWeights");
    }
    if a.iterations.is_some() {
        set.push("iterations");
    }
    match set.as_slice() {
        [] => out.push(Diagnostic::error(
            at,
            "set one of stepWeight (progressive canary), stepWeights (a list of weights) or \
             iterations (blue/green, or A/B testing with match)",
        )),
        [_] => {}
        [first, rest @ ..] => out.push(Diagnostic::error(
            format!("{at}.{}", rest[0]),
            format!(
                "{first} and {} exclude each other: keep exactly one of stepWeight, \
                 stepWeights and iterations",
                rest.join(" and ")
            ),
        )),
    }
    if let Some(i) = a.iterations
        && i < 1
    {
        out.push(Diagnostic::error(
            format!("{at}.iterations"),
            format!("{i} iterations: use 1 or more"),
        ));
    }
}

fn weights(canary: &Canary, out: &mut Vec<Diagnostic>) {
    let Some((at, a)) = analysis(canary) else {
        return;
    };
    let percent = |value: i32, field: &str, out: &mut Vec<Diagnostic>| {
        if !(1..=100).contains(&value) {
            out.push(Diagnostic::error(
                format!("{at}.{field}"),
                format!("{value} is outside 1..100: a weight is a percentage of traffic"),
            ));
        }
    };
    if let Some(w) = a.max_weight {
        percent(w, "maxWeight", out);
    }
    if let Some(w) = a.step_weight {
        percent(w, "stepWeight", out);
        let max = a.max_weight.unwrap_or(100);
        if (1..=100).contains(&max) && w > max {
            out.push(Diagnostic::error(
                format!("{at}.stepWeight"),
                format!(
                    "stepWeight {w} is above maxWeight {max}: the first step would pass the \
                     maximum; lower stepWeight or raise maxWeight"
                ),
            ));
        }
    }
    if let Some(steps) = &a.step_weights {
        if steps.is_empty() {
            out.push(Diagnostic::error(
                format!("{at}.stepWeights"),
                "empty: list ascending weights, e.g. [1, 5, 10, 50]",
            ));
        }
        for (i, &w) in steps.iter().enumerate() {
            percent(w, &format!("stepWeights[{i}]"), out);
            if i > 0 && w <= steps[i - 1] {
                out.push(Diagnostic::error(
                    format!("{at}.stepWeights[{i}]"),
                    format!(
                        "{w} does not exceed the previous weight {}: stepWeights must be \
                         strictly ascending",
                        steps[i - 1]
                    ),
                ));
            }
        }
        if a.max_weight.is_some() {
            out.push(Diagnostic::warning(
                format!("{at}.maxWeight"),
                "ignored with stepWeights (the last step is the maximum): remove maxWeight",
            ));
        }
    }
    if let Some(w) = a.step_weight_promotion
        && !(0..=100).contains(&w)
    {
        out.push(Diagnostic::error(
            format!("{at}.stepWeightPromotion"),
            format!("{w} is outside 0..100 (0 shifts all traffic at once)"),
        ));
    }
    if let Some(w) = a.mirror_weight
        && !(0..=100).contains(&w)
    {
        out.push(Diagnostic::error(
            format!("{at}.mirrorWeight"),
            format!("{w} is outside 0..100: it is the percentage of traffic mirrored"),
        ));
    }
}

fn ab_match(canary: &Canary, out: &mut Vec<Diagnostic>) {
    let Some((at, a)) = analysis(canary) else {
        return;
    };
    let has_match = a.match_.as_ref().is_some_and(|m| !m.is_empty());
    if has_match && a.iterations.unwrap_or(0) < 1 {
        out.push(Diagnostic::error(
            format!("{at}.match"),
            "A/B testing needs iterations: set iterations (e.g. 10) instead of stepWeight, or \
             remove match",
        ));
    }
}

fn thresholds(canary: &Canary, out: &mut Vec<Diagnostic>) {
    let Some((at, a)) = analysis(canary) else {
        return;
    };
    if let Some(t) = a.threshold
        && t < 1
    {
        out.push(Diagnostic::error(
            format!("{at}.threshold"),
            format!("{t}: the number of failed checks before rollback must be 1 or more"),
        ));
    }
    for (field, value) in [
        ("primaryReadyThreshold", a.primary_ready_threshold),
        ("canaryReadyThreshold", a.canary_ready_threshold),
    ] {
        if let Some(v) = value
            && !(0..=100).contains(&v)
        {
            out.push(Diagnostic::error(
                format!("{at}.{field}"),
                format!("{v} is outside 0..100: it is a percentage of ready pods"),
            ));
        }
    }
}

fn interval(canary: &Canary, out: &mut Vec<Diagnostic>) {
    let Some((at, a)) = analysis(canary) else {
        return;
    };
    let path = format!("{at}.interval");
    let Some(d) = duration(a.interval.as_ref(), &path, out) else {
        return;
    };
    if d.is_zero() {
        out.push(Diagnostic::error(
            path,
            "0 is not an interval: use e.g. 1m (the default) or 30s",
        ));
    } else if d < FLAGGER_MIN_INTERVAL {
        out.push(Diagnostic::warning(
            path,
            format!(
                "{} is below 10s: serin honours it, Flagger would silently use 10s; use 10s or \
                 more for manifests shared with Flagger",
                a.interval.as_ref().map(GoDuration::as_str).unwrap_or("")
            ),
        ));
    }
}

fn progress_deadline(canary: &Canary, out: &mut Vec<Diagnostic>) {
    match canary.spec.progress_deadline_seconds {
        Some(s) if s < 1 => out.push(Diagnostic::error(
            "spec.progressDeadlineSeconds",
            format!("{s}: use a positive number of seconds (the default is 600)"),
        )),
        Some(s) if s < MIN_PROGRESS_DEADLINE_SECONDS => out.push(Diagnostic::warning(
            "spec.progressDeadlineSeconds",
            format!(
                "{s}s leaves pods little time to become ready before the release fails; use 60 \
                 or more"
            ),
        )),
        _ => {}
    }
}

fn metrics(canary: &Canary, out: &mut Vec<Diagnostic>) {
    let Some((at, a)) = analysis(canary) else {
        return;
    };
    for (i, m) in a.metrics.iter().flatten().enumerate() {
        let path = format!("{at}.metrics[{i}]");
        let builtin = BUILTIN_METRICS.contains(&m.name.as_str());
        let query = m.query.as_deref().is_some_and(|q| !q.trim().is_empty());
        if !builtin && !query && m.template_ref.is_none() {
            let hint = super::suggest::closest(&m.name, BUILTIN_METRICS)
                .map(|s| format!(" (did you mean {s}?)"))
                .unwrap_or_default();
            out.push(Diagnostic::error(
                format!("{path}.name"),
                format!(
                    "{:?} is not a builtin metric{hint}: use request-success-rate or \
                     request-duration, or add a templateRef to a MetricTemplate",
                    m.name
                ),
            ));
        }
        if query && m.template_ref.is_some() {
            out.push(Diagnostic::warning(
                format!("{path}.query"),
                "ignored because templateRef is set: remove one of them",
            ));
        }
        duration(m.interval.as_ref(), &format!("{path}.interval"), out);
        if let Some(r) = &m.threshold_range
            && let (Some(min), Some(max)) = (r.min, r.max)
            && min > max
        {
            out.push(Diagnostic::error(
                format!("{path}.thresholdRange"),
                format!("min {min} is above max {max}: no value can pass; swap them"),
            ));
        }
        if m.threshold_range.is_some() && m.threshold.is_some() {
            out.push(Diagnostic::warning(
                format!("{path}.threshold"),
                "ignored because thresholdRange is set: remove threshold",
            ));
        }
        let unbounded = m
            .threshold_range
            .as_ref()
            .is_none_or(|r| r.min.is_none() && r.max.is_none());
        if unbounded && m.threshold.is_none() {
            out.push(Diagnostic::warning(
                format!("{path}.thresholdRange"),
                "missing: this metric can never fail a check; add thresholdRange {min: …} or \
                 {max: …}",
            ));
        }
    }
}

fn webhooks(canary: &Canary, out: &mut Vec<Diagnostic>) {
    let Some((at, a)) = analysis(canary) else {
        return;
    };
    for (i, w) in a.webhooks.iter().flatten().enumerate() {
        let path = format!("{at}.webhooks[{i}]");
        if let Some(t) = w.type_.as_deref()
            && WebhookType::parse(t).is_none()
        {
            let names: Vec<&str> = WebhookType::ALL.iter().map(|t| t.as_str()).collect();
            let hint = super::suggest::closest(t, names.iter().copied())
                .map(|s| format!("did you mean {s}? "))
                .unwrap_or_default();
            out.push(Diagnostic::error(
                format!("{path}.type"),
                format!(
                    "unknown webhook type {t:?}: {hint}use one of {}",
                    names.join(", ")
                ),
            ));
        }
        if let Some(problem) = http_url_problem(&w.url) {
            out.push(Diagnostic::error(format!("{path}.url"), problem));
        }
        duration(w.timeout.as_ref(), &format!("{path}.timeout"), out);
        if let Some(r) = w.retries
            && r < 0
        {
            out.push(Diagnostic::error(
                format!("{path}.retries"),
                format!("{r}: use 0 or more"),
            ));
        }
    }
}

fn alerts(canary: &Canary, out: &mut Vec<Diagnostic>) {
    let Some((at, a)) = analysis(canary) else {
        return;
    };
    for (i, alert) in a.alerts.iter().flatten().enumerate() {
        if let Some(s) = alert.severity.as_deref()
            && !s.is_empty()
            && !ALERT_SEVERITIES.contains(&s)
        {
            out.push(Diagnostic::error(
                format!("{at}.alerts[{i}].severity"),
                format!("unknown severity {s:?}: use info, warn or error"),
            ));
        }
    }
}

fn session_affinity(canary: &Canary, out: &mut Vec<Diagnostic>) {
    let Some((at, a)) = analysis(canary) else {
        return;
    };
    let Some(s) = &a.session_affinity else {
        return;
    };
    let path = format!("{at}.sessionAffinity");
    if s.cookie_name.is_empty() {
        out.push(Diagnostic::error(
            format!("{path}.cookieName"),
            "empty: name the cookie that pins users to the canary",
        ));
    }
    if s.primary_cookie_name.as_deref() == Some(s.cookie_name.as_str()) {
        out.push(Diagnostic::error(
            format!("{path}.primaryCookieName"),
            format!(
                "equals cookieName {:?}: the primary and canary cookies need different names",
                s.cookie_name
            ),
        ));
    }
    if let Some(age) = s.max_age
        && age < 0
    {
        out.push(Diagnostic::error(
            format!("{path}.maxAge"),
            format!("{age}: use a number of seconds, 0 or more (default 86400)"),
        ));
    }
}

fn autoscaler_ref(canary: &Canary, out: &mut Vec<Diagnostic>) {
    let Some(a) = &canary.spec.autoscaler_ref else {
        return;
    };
    if let Some(kind) = a.kind.as_deref()
        && !AUTOSCALER_KINDS.contains(&kind)
    {
        out.push(Diagnostic::error(
            "spec.autoscalerRef.kind",
            format!("{kind:?} is not supported: use HorizontalPodAutoscaler or ScaledObject"),
        ));
    }
    if let Some(r) = &a.primary_scaler_replicas {
        let path = "spec.autoscalerRef.primaryScalerReplicas";
        for (field, value) in [
            ("minReplicas", r.min_replicas),
            ("maxReplicas", r.max_replicas),
        ] {
            if let Some(v) = value
                && v < 1
            {
                out.push(Diagnostic::error(
                    format!("{path}.{field}"),
                    format!("{v}: use 1 or more"),
                ));
            }
        }
        if let (Some(min), Some(max)) = (r.min_replicas, r.max_replicas)
            && min > max
        {
            out.push(Diagnostic::error(
                format!("{path}.minReplicas"),
                format!("{min} is above maxReplicas {max}: swap them"),
            ));
        }
    }
}

/// Parses an optional duration field, reporting the parse error at `path`.
fn duration(value: Option<&GoDuration>, path: &str, out: &mut Vec<Diagnostic>) -> Option<Duration> {
    match value?.parse() {
        Ok(d) => Some(d),
        Err(err) => {
            out.push(Diagnostic::error(path, err.to_string()));
            None
        }
    }
}

/// Why `text` is not an absolute http(s) URL, or `None` when it is one.
pub(crate) fn http_url_problem(text: &str) -> Option<String> {
    if text.trim().is_empty() {
        return Some("empty: write an http:// or https:// URL".into());
    }
    match Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => None,
        // `host:9090` parses with scheme `host`: the user forgot the scheme.
        Ok(_) if !text.contains("://") => Some(format!(
            "{text:?} has no http:// or https:// scheme: write http://{text}"
        )),
        Ok(url) => Some(format!(
            "{text:?} has scheme {:?}: write an http:// or https:// URL",
            url.scheme()
        )),
        Err(err) => Some(format!(
            "{text:?} is not a URL ({err}): write an absolute http:// or https:// URL, e.g. \
             http://loadtester.test/"
        )),
    }
}
