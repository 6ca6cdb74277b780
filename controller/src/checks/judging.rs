//! The statistical judge in the controller: a metric with `judge` is measured as requests and
//! failed requests per side (four count queries), and the judges' evidence is carried from tick
//! to tick — and across restarts — in `status.judge`.
//!
//! Count queries come from the MetricTemplate's `spec.judge`, or for `request-success-rate`
//! from the series Flagger's builtin query divides (`serin_providers::builtin::count_templates`).

use serin_analysis::judge::{JudgeComparator, latency, record};
use serin_analysis::{Measurement, Sample};
use serin_api::canary::CanaryMetric;
use serin_api::judge::JudgeQueries;
use serin_api::{Canary, CanaryStatus};
use serin_providers::QueryError;
use serin_providers::builtin::{self, Builtin};
use serin_providers::metric::MetricProvider;
use serin_providers::prometheus::Prometheus;

use super::{default_server, template_provider, vars};
use crate::Context;

/// The tick's comparator, resumed from `status.judge` when it belongs to this run.
pub fn comparator(
    canary: &Canary,
    status: &CanaryStatus,
    revision: &str,
    retry: Option<&str>,
) -> JudgeComparator {
    record::comparator(&canary.spec, status, &record::run_key(revision, retry))
}

/// Writes the judges' evidence into the status the tick is about to write.
pub fn save(judges: &JudgeComparator, revision: &str, retry: Option<&str>, out: &mut CanaryStatus) {
    record::save(judges, &record::run_key(revision, retry), out);
}

enum Source {
    Template(MetricProvider),
    Prometheus(Prometheus),
}

impl Source {
    /// One count. A query that matches no series counts zero requests: `sum()` over nothing is
    /// empty, which for counts means none happened (no 5xx yet, no traffic yet).
    async fn count(&self, query: &str, metric: &CanaryMetric) -> Result<f64, QueryError> {
        let r = match self {
            Source::Template(p) => p.query(query, metric.interval()).await,
            Source::Prometheus(p) => p.query(query).await,
        };
        match r {
            Err(QueryError::NoData(_)) => Ok(0.0),
            other => other,
        }
    }
}

/// Measures a judged metric: the four counts, as a comparison for the engine's judge.
pub async fn measure(ctx: &Context, canary: &Canary, metric: &CanaryMetric) -> Measurement {
    match counts(ctx, canary, metric).await {
        Ok((canary, primary)) => Measurement::Comparison { canary, primary },
        Err(QueryError::NoData(message)) => Measurement::NoData { message },
        Err(QueryError::Error(message)) => Measurement::Error { message },
    }
}

async fn counts(
    ctx: &Context,
    canary: &Canary,
    metric: &CanaryMetric,
) -> Result<(Sample, Sample), QueryError> {
    let name = &metric.name;
    if metric.template_ref.is_none()
        && metric.query.is_none()
        && Builtin::from_name(name) == Some(Builtin::RequestDuration)
    {
        return histograms(ctx, canary, metric).await;
    }
    let (queries, source) = if let Some(r) = &metric.template_ref {
        let (template, provider) = template_provider(ctx, canary, r).await?;
        let queries = template.spec.judge.ok_or_else(|| {
            QueryError::Error(format!(
                "metric {name} has a judge but MetricTemplate {} has no spec.judge: add its four count queries (canaryTotal, canaryFailed, primaryTotal, primaryFailed)",
                r.name
            ))
        })?;
        (queries, Source::Template(provider))
    } else if metric.query.is_none()
        && Builtin::from_name(name) == Some(Builtin::RequestSuccessRate)
    {
        let provider = ctx.provider(canary).map_err(QueryError::Error)?;
        let prom = Prometheus::new(&default_server(ctx, canary))
            .map_err(|e| QueryError::Error(e.to_string()))?;
        (builtin::count_templates(provider), Source::Prometheus(prom))
    } else {
        return Err(QueryError::Error(format!(
            "metric {name} has a judge but no count queries: use the builtin request-success-rate or request-duration, or a templateRef to a MetricTemplate with spec.judge"
        )));
    };
    let q: JudgeQueries = builtin::render_counts(&queries, &vars(canary, metric))
        .map_err(|e| QueryError::Error(format!("metric {name} count queries: {e}")))?;
    let (ct, cf, pt, pf) = futures::join!(
        source.count(&q.canary_total, metric),
        source.count(&q.canary_failed, metric),
        source.count(&q.primary_total, metric),
        source.count(&q.primary_failed, metric),
    );
    let sample = |total: f64, failed: f64| Sample {
        count: total,
        failures: failed,
        values: vec![],
    };
    Ok((sample(ct?, cf?), sample(pt?, pf?)))
}

/// `request-duration` with a judge: each side's latency histogram (`sum by (le)` of the
/// builtin's buckets); the engine's judge takes the bound from the primary's first look and
/// counts slow requests (`serin_analysis::judge::latency`).
async fn histograms(
    ctx: &Context,
    canary: &Canary,
    metric: &CanaryMetric,
) -> Result<(Sample, Sample), QueryError> {
    let name = &metric.name;
    let provider = ctx.provider(canary).map_err(QueryError::Error)?;
    let (canary_q, primary_q) = builtin::bucket_templates(provider).ok_or_else(|| {
        QueryError::Error(format!(
            "metric {name} has a judge, but provider {provider} exports no latency histogram: use a MetricTemplate with spec.judge counting slow requests"
        ))
    })?;
    let vars = vars(canary, metric);
    let render = |q: &str| {
        serin_api::template::render(q, &vars)
            .map_err(|e| QueryError::Error(format!("metric {name} bucket query: {e}")))
    };
    let (canary_q, primary_q) = (render(&canary_q)?, render(&primary_q)?);
    let prom = Prometheus::new(&default_server(ctx, canary))
        .map_err(|e| QueryError::Error(e.to_string()))?;
    let (c, p) = futures::join!(
        prom.query_buckets(&canary_q),
        prom.query_buckets(&primary_q)
    );
    Ok((latency::to_sample(&c?), latency::to_sample(&p?)))
}
