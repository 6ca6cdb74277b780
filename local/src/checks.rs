//! Answers to the engine's requests in local mode: metrics from the router's own accounting
//! (builtins on the embedded and nginx routers), from Prometheus (builtins on Traefik, inline
//! queries, MetricTemplates with the prometheus provider), and webhooks called over HTTP.

use std::time::Duration;

use serin_analysis::{Answer, Measurement, Request};
use serin_api::canary::CanaryMetric;
use serin_api::common::CrossNamespaceObjectReference;
use serin_api::judge::JudgeSpec;
use serin_api::template::{TemplateVars, render};
use serin_api::{CanarySpec, CanaryStatus, MetricTemplate};
use serin_providers::QueryError;
use serin_providers::metric::MetricProvider;
use serin_providers::prometheus::Prometheus;
use serin_providers::webhook::{self, WebhookCall, WebhookPayload};

use crate::router::AnyRouter;

/// The PromQL of the builtin metrics for Traefik's file provider: Flagger's traefik queries
/// with the service selector `<service>-canary@file` (serin names the two weighted services
/// `<service>-primary` and `<service>-canary`).
pub const TRAEFIK_SUCCESS_RATE: &str = r#"sum(rate(traefik_service_request_duration_seconds_bucket{service="{{ service }}-canary@file",code!~"5..",le="+Inf"}[{{ interval }}])) / sum(rate(traefik_service_request_duration_seconds_bucket{service="{{ service }}-canary@file",le="+Inf"}[{{ interval }}])) * 100"#;
pub const TRAEFIK_DURATION: &str = r#"histogram_quantile(0.99, sum(rate(traefik_service_request_duration_seconds_bucket{service="{{ service }}-canary@file"}[{{ interval }}])) by (le)) * 1000"#;

pub mod judging;

/// What the checks need to know about the run.
pub struct Checker {
    pub name: String,
    pub namespace: String,
    pub spec: CanarySpec,
    pub templates: Vec<MetricTemplate>,
    /// `--metrics-server`, or the Prometheus serin started.
    pub prometheus: Option<Prometheus>,
    /// What the judged metrics (`judge:`) looked at last.
    pub judging: judging::Looks,
}

fn from_query(r: Result<f64, QueryError>) -> Measurement {
    match r {
        Ok(value) => Measurement::Value { value },
        Err(QueryError::NoData(message)) => Measurement::NoData { message },
        Err(QueryError::Error(message)) => Measurement::Error { message },
    }
}

fn error(message: String) -> Measurement {
    Measurement::Error { message }
}

impl Checker {
    fn vars(&self, metric: &CanaryMetric) -> TemplateVars {
        TemplateVars::for_canary(
            &self.spec,
            &self.name,
            &self.namespace,
            &serin_api::duration::format(metric.interval()),
            metric.template_variables.clone().unwrap_or_default(),
        )
    }

    async fn prom_query(
        &self,
        server: Option<&Prometheus>,
        metric: &str,
        query: &str,
    ) -> Measurement {
        let Some(server) = server.or(self.prometheus.as_ref()) else {
            return error(format!(
                "metric {metric} needs Prometheus: pass --metrics-server http://HOST:9090"
            ));
        };
        from_query(server.query(query).await)
    }

    /// The MetricTemplate `tref` names (passed with -f), with its own Prometheus if it gives an
    /// address.
    fn template(
        &self,
        metric: &CanaryMetric,
        tref: &CrossNamespaceObjectReference,
    ) -> Result<(&MetricTemplate, Option<Prometheus>), Measurement> {
        let Some(t) = self.templates.iter().find(|t| {
            t.metadata.name.as_deref() == Some(tref.name.as_str())
                && tref.namespace.as_ref().is_none_or(|ns| {
                    t.metadata.namespace.as_deref().unwrap_or(&self.namespace) == ns
                })
        }) else {
            return Err(error(format!(
                "metric {}: MetricTemplate {} not found: pass the file that defines it with -f",
                metric.name, tref.name
            )));
        };
        let provider = t.spec.provider.type_.as_str();
        if provider == "loadtester" {
            return Ok((t, None));
        }
        if !matches!(provider, "prometheus" | "") {
            return Err(error(format!(
                "metric {}: MetricTemplate {} uses provider {provider:?}; local mode queries prometheus and loadtester templates only",
                metric.name, tref.name
            )));
        }
        let own = match t.spec.provider.address.as_deref() {
            Some(addr) => match Prometheus::new(addr) {
                Ok(p) => Some(p),
                Err(e) => {
                    return Err(error(format!(
                        "MetricTemplate {} spec.provider.address: {e}",
                        tref.name
                    )));
                }
            },
            None => None,
        };
        Ok((t, own))
    }

    /// A metric with `judge`: requests and bad requests per side (checks/judging.rs).
    async fn judged(
        &self,
        router: &AnyRouter,
        metric: &CanaryMetric,
        spec: &JudgeSpec,
    ) -> Measurement {
        let vars = self.vars(metric);
        let name = &metric.name;
        let needs_prometheus = || {
            error(format!(
                "metric {name} needs Prometheus: pass --metrics-server http://HOST:9090"
            ))
        };
        if let Some(tref) = &metric.template_ref {
            let (t, own) = match self.template(metric, tref) {
                Ok(found) => found,
                Err(m) => return m,
            };
            if is_loadtester(t) {
                return error(format!(
                    "metric {name} has a judge but MetricTemplate {} reads the loadtester, which measures the canary alone: judge with Prometheus count queries",
                    tref.name
                ));
            }
            let Some(queries) = &t.spec.judge else {
                return error(format!(
                    "metric {name} has a judge but MetricTemplate {} has no spec.judge: add its four count queries (canaryTotal, canaryFailed, primaryTotal, primaryFailed)",
                    tref.name
                ));
            };
            let Some(server) = own.as_ref().or(self.prometheus.as_ref()) else {
                return needs_prometheus();
            };
            return judging::from_prometheus(server, queries, &vars, metric).await;
        }
        if metric.query.is_none() && name == "request-success-rate" {
            if let Some(m) = self.judging.errors(router, name) {
                return m;
            }
            let Some(server) = self.prometheus.as_ref() else {
                return needs_prometheus();
            };
            return judging::from_prometheus(server, &judging::traefik_counts(), &vars, metric)
                .await;
        }
        if metric.query.is_none() && name == "request-duration" {
            return self
                .judging
                .latency(router, name, spec.latency_quantile())
                .unwrap_or_else(|| {
                    error(format!(
                        "metric {name} has a judge: local mode judges latency on the embedded or nginx router; with Traefik use a MetricTemplate with spec.judge"
                    ))
                });
        }
        error(format!(
            "metric {name} has a judge but no count queries: use the builtin request-success-rate or request-duration, or a templateRef to a MetricTemplate with spec.judge"
        ))
    }

    /// Measures one metric of `spec.analysis.metrics`.
    pub async fn metric(&self, router: &AnyRouter, metric: &CanaryMetric) -> Measurement {
        if let Some(spec) = &metric.judge {
            return self.judged(router, metric, spec).await;
        }
        let vars = self.vars(metric);
        if let Some(tref) = &metric.template_ref {
            let (t, own) = match self.template(metric, tref) {
                Ok(found) => found,
                Err(m) => return m,
            };
            let query = match render(&t.spec.query, &vars) {
                Ok(q) => q,
                Err(e) => return error(format!("MetricTemplate {} query: {e}", tref.name)),
            };
            if is_loadtester(t) {
                return loadtester_query(t, &query, metric.interval()).await;
            }
            return self.prom_query(own.as_ref(), &metric.name, &query).await;
        }
        if let Some(q) = &metric.query {
            return match render(q, &vars) {
                Ok(query) => self.prom_query(None, &metric.name, &query).await,
                Err(e) => error(format!("metric {} query: {e}", metric.name)),
            };
        }
        if metric.is_builtin() {
            if let Some(w) = router.canary_window(metric.interval()) {
                let value = if metric.name == "request-success-rate" {
                    w.success_rate()
                } else {
                    w.p99_ms()
                };
                return match value {
                    Some(value) => Measurement::Value { value },
                    None => Measurement::NoData {
                        message: format!(
                            "the canary received no requests in the last {}: is load running?",
                            serin_api::duration::format(metric.interval())
                        ),
                    },
                };
            }
            let template = if metric.name == "request-success-rate" {
                TRAEFIK_SUCCESS_RATE
            } else {
                TRAEFIK_DURATION
            };
            return match render(template, &vars) {
                Ok(query) => self.prom_query(None, &metric.name, &query).await,
                Err(e) => error(e.to_string()),
            };
        }
        error(format!(
            "metric {}: no usable metrics template and query were configured (set templateRef or query, or use request-success-rate / request-duration)",
            metric.name
        ))
    }

    /// Calls one webhook.
    pub async fn webhook(
        &self,
        request: &Request,
        status: &CanaryStatus,
        revision: &str,
    ) -> Answer {
        let Request::Webhook { kind, phase, hook } = request else {
            return Answer::Webhook {
                ok: false,
                message: "not a webhook request".into(),
            };
        };
        let call = WebhookCall {
            url: hook.url.clone(),
            timeout: hook.timeout(),
            retries: hook.retries.unwrap_or(0).max(0) as u32,
            disable_tls: hook.disable_tls.unwrap_or(false),
        };
        let payload = WebhookPayload {
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            phase: phase.as_str().into(),
            checksum: revision.into(),
            metadata: hook.metadata.clone().unwrap_or_default(),
            type_: Some(kind.as_str().into()),
            revision: Some(revision.into()),
            canary_weight: Some(status.canary_weight),
            failed_checks: Some(status.failed_checks),
            ..Default::default()
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

    pub async fn answer(
        &self,
        router: &AnyRouter,
        request: &Request,
        status: &CanaryStatus,
        revision: &str,
    ) -> Answer {
        match request {
            Request::Metric { metric } => Answer::Metric(self.metric(router, metric).await),
            Request::Webhook { .. } => self.webhook(request, status, revision).await,
        }
    }
}

fn is_loadtester(t: &MetricTemplate) -> bool {
    t.spec.provider.type_ == "loadtester"
}

/// A `loadtester` MetricTemplate: the load its rollout hook started, read from `serin loadtester`
/// over the metric's interval, as the controller reads it.
async fn loadtester_query(t: &MetricTemplate, query: &str, interval: Duration) -> Measurement {
    let name = t.metadata.name.as_deref().unwrap_or_default();
    match MetricProvider::new(&t.spec.provider, &Default::default(), "") {
        Ok(p) => from_query(p.query(query, interval).await),
        Err(e) => error(format!("MetricTemplate {name}: {e}")),
    }
}

/// How long a tick may wait for its answers before the run gives up on them.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
