//! Answers to the engine's requests: metric queries and gate/analysis webhooks.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt};
use serin_analysis::{Answer, Measurement, Request};
use serin_api::canary::CanaryMetric;
use serin_api::common::CrossNamespaceObjectReference;
use serin_api::template::TemplateVars;
use serin_api::{Canary, CanaryStatus, MetricTemplate};
use serin_providers::QueryError;
use serin_providers::builtin::{self, Builtin};
use serin_providers::metric::MetricProvider;
use serin_providers::prometheus::Prometheus;
use serin_providers::webhook::{self, WebhookCall, WebhookPayload};

use crate::Context;

pub mod judging;

/// Answers one request of the engine.
pub async fn answer(
    ctx: &Context,
    canary: &Canary,
    status: &CanaryStatus,
    revision: &str,
    request: &Request,
) -> Answer {
    match request {
        Request::Metric { metric } => Answer::Metric(measure(ctx, canary, metric).await),
        Request::Webhook { kind, phase, hook } => {
            let payload = payload(
                canary,
                status,
                revision,
                kind.as_str(),
                phase.as_str(),
                hook.metadata.clone(),
            );
            let call = WebhookCall {
                url: hook.url.clone(),
                timeout: hook.timeout(),
                retries: hook.retries.unwrap_or(0).max(0) as u32,
                disable_tls: hook.disable_tls.unwrap_or(false),
            };
            match webhook::call(&call, &payload).await {
                Ok(body) => Answer::Webhook {
                    ok: true,
                    message: body,
                },
                Err(e) => Answer::Webhook {
                    ok: false,
                    message: e.to_string(),
                },
            }
        }
    }
}

/// Flagger's payload plus serin's fields.
pub fn payload(
    canary: &Canary,
    status: &CanaryStatus,
    revision: &str,
    kind: &str,
    phase: &str,
    metadata: Option<BTreeMap<String, String>>,
) -> WebhookPayload {
    WebhookPayload {
        name: canary.name_any(),
        namespace: canary.namespace().unwrap_or_default(),
        phase: phase.to_string(),
        checksum: revision.to_string(),
        metadata: metadata.unwrap_or_default(),
        type_: Some(kind.to_string()),
        revision: Some(revision.to_string()),
        stable_revision: status.last_promoted_spec.clone(),
        images: None,
        canary_weight: Some(status.canary_weight),
        failed_checks: Some(status.failed_checks),
        reason: None,
    }
}

fn interval_text(metric: &CanaryMetric) -> String {
    metric
        .interval
        .as_ref()
        .filter(|d| d.parse().is_ok())
        .map(|d| d.as_str().to_string())
        .unwrap_or_else(|| "1m".into())
}

/// Runs one metric query: a MetricTemplate, an inline query, or a builtin. A metric with a
/// `judge` is measured as counts per side instead ([`judging`]).
pub async fn measure(ctx: &Context, canary: &Canary, metric: &CanaryMetric) -> Measurement {
    if metric.judge.is_some() {
        return judging::measure(ctx, canary, metric).await;
    }
    match query(ctx, canary, metric).await {
        Ok(value) => Measurement::Value { value },
        Err(QueryError::NoData(message)) => Measurement::NoData { message },
        Err(QueryError::Error(message)) => Measurement::Error { message },
    }
}

/// The template variables of `metric` for `canary`.
pub(crate) fn vars(canary: &Canary, metric: &CanaryMetric) -> TemplateVars {
    TemplateVars::for_canary(
        &canary.spec,
        &canary.name_any(),
        &canary.namespace().unwrap_or_default(),
        &interval_text(metric),
        metric.template_variables.clone().unwrap_or_default(),
    )
}

/// The metrics server of the Canary (`spec.metricsServer`) or of the controller.
pub(crate) fn default_server(ctx: &Context, canary: &Canary) -> String {
    canary
        .spec
        .metrics_server
        .clone()
        .unwrap_or_else(|| ctx.config.metrics_server.clone())
}

/// The MetricTemplate a metric refers to, with its provider (credentials read from its Secret).
pub(crate) async fn template_provider(
    ctx: &Context,
    canary: &Canary,
    r: &CrossNamespaceObjectReference,
) -> Result<(MetricTemplate, MetricProvider), QueryError> {
    let ns = canary.namespace().unwrap_or_default();
    let tns = r.namespace.clone().unwrap_or_else(|| ns.clone());
    let api: Api<MetricTemplate> = Api::namespaced(ctx.client.clone(), &tns);
    let template = api
        .get_opt(&r.name)
        .await
        .map_err(|e| QueryError::Error(format!("reading MetricTemplate {tns}/{}: {e}", r.name)))?
        .ok_or_else(|| {
            QueryError::Error(format!(
                "MetricTemplate {tns}/{} not found: create it or fix templateRef.name",
                r.name
            ))
        })?;
    let p = &template.spec.provider;
    let data = match &p.secret_ref {
        Some(s) => secret_data(ctx, &tns, &s.name, &format!("MetricTemplate {}", r.name))
            .await
            .map_err(QueryError::Error)?,
        None => BTreeMap::new(),
    };
    let provider = MetricProvider::new(p, &data, &default_server(ctx, canary))
        .map_err(|e| QueryError::Error(format!("MetricTemplate {tns}/{}: {e}", r.name)))?;
    Ok((template, provider))
}

async fn query(ctx: &Context, canary: &Canary, metric: &CanaryMetric) -> Result<f64, QueryError> {
    let vars = vars(canary, metric);
    let render = |q: &str| {
        serin_api::template::render(q, &vars)
            .map_err(|e| QueryError::Error(format!("metric {}: {e}", metric.name)))
    };
    if let Some(r) = &metric.template_ref {
        let (template, provider) = template_provider(ctx, canary, r).await?;
        return provider
            .query(&render(&template.spec.query)?, metric.interval())
            .await;
    }
    let q = if let Some(q) = &metric.query {
        render(q)?
    } else if let Some(b) = Builtin::from_name(&metric.name) {
        let provider = ctx.provider(canary).map_err(QueryError::Error)?;
        builtin::query(provider, b, &vars).map_err(|e| QueryError::Error(e.to_string()))?
    } else {
        return Err(QueryError::Error(format!(
            "metric {}: no templateRef, no query and not a builtin (request-success-rate, request-duration)",
            metric.name
        )));
    };
    let prom = Prometheus::new(&default_server(ctx, canary))
        .map_err(|e| QueryError::Error(e.to_string()))?;
    prom.query(&q).await
}

/// The data of a Secret referenced by `owner` (a MetricTemplate or an AlertProvider).
pub async fn secret_data(
    ctx: &Context,
    ns: &str,
    name: &str,
    owner: &str,
) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let secret = secrets
        .get_opt(name)
        .await
        .map_err(|e| format!("reading Secret {ns}/{name}: {e}"))?
        .ok_or_else(|| format!("Secret {ns}/{name} (secretRef of {owner}) not found"))?;
    Ok(secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect())
}
