//! The statistical judge in local mode: a metric with `judge` is answered with requests and bad
//! requests per side. On the embedded and nginx routers they come straight from the router's
//! accounting — exactly the requests since the previous look, so no request is judged twice —
//! and on Traefik from Prometheus (count queries). A MetricTemplate gives its own `spec.judge`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serin_analysis::{Measurement, Sample};
use serin_api::canary::CanaryMetric;
use serin_api::judge::JudgeQueries;
use serin_api::template::TemplateVars;
use serin_providers::QueryError;
use serin_providers::builtin::render_counts;
use serin_providers::prometheus::Prometheus;

use crate::router::{AnyRouter, Totals};

/// Count queries of `request-success-rate` for Traefik's file provider (serin names the two
/// weighted services `<service>-primary` and `<service>-canary`).
pub fn traefik_counts() -> JudgeQueries {
    let q = |side: &str, failed: &str| {
        format!(
            r#"sum(increase(traefik_service_request_duration_seconds_bucket{{service="{{{{ service }}}}-{side}@file",le="+Inf"{failed}}}[{{{{ interval }}}}]))"#
        )
    };
    JudgeQueries {
        canary_total: q("canary", ""),
        canary_failed: q("canary", r#",code=~"5..""#),
        primary_total: q("primary", ""),
        primary_failed: q("primary", r#",code=~"5..""#),
    }
}

/// What the judged metrics of one release looked at last.
pub struct Looks {
    started: Instant,
    /// Per metric: the router's totals at the previous look.
    totals: Mutex<BTreeMap<String, [Totals; 2]>>,
    /// Per metric: when the previous look was.
    times: Mutex<BTreeMap<String, Instant>>,
    /// Per latency metric: the bound (ms) taken from the primary at the first look.
    bounds: Mutex<BTreeMap<String, f64>>,
    /// The router's totals when the release started.
    start: Mutex<Option<[Totals; 2]>>,
}

impl Default for Looks {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            totals: Mutex::default(),
            times: Mutex::default(),
            bounds: Mutex::default(),
            start: Mutex::default(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn sample(requests: u64, bad: u64) -> Sample {
    Sample {
        count: requests as f64,
        failures: bad as f64,
        values: vec![],
    }
}

impl Looks {
    /// Records the router's totals at the start of the release: the first look counts from here.
    pub fn start(&self, router: &AnyRouter) {
        *lock(&self.start) = router.totals();
    }

    /// Requests and failures per side since the previous look, from the router's counters.
    pub fn errors(&self, router: &AnyRouter, metric: &str) -> Option<Measurement> {
        let now = router.totals()?;
        let before = lock(&self.totals)
            .insert(metric.to_string(), now)
            .or(*lock(&self.start))
            .unwrap_or_default();
        let side = |i: usize| {
            let (n, b) = (now[i], before[i]);
            sample(
                n.requests.saturating_sub(b.requests),
                n.errors.saturating_sub(b.errors),
            )
        };
        Some(Measurement::Comparison {
            primary: side(0),
            canary: side(1),
        })
    }

    /// Requests and slow requests per side since the previous look. The bound is the primary's
    /// `quantile` at the first look with primary traffic, then fixed (it must not be chosen from
    /// the data it judges), so that look judges nothing. Windows are the router's 250 ms
    /// buckets: consecutive looks may share one bucket.
    pub fn latency(&self, router: &AnyRouter, metric: &str, quantile: f64) -> Option<Measurement> {
        let now = Instant::now();
        let since = lock(&self.times)
            .insert(metric.to_string(), now)
            .unwrap_or(self.started);
        let [primary, canary] =
            router.windows(now.duration_since(since).max(Duration::from_millis(1)))?;
        let bound = lock(&self.bounds).get(metric).copied();
        let Some(bound) = bound else {
            if let Some(b) = primary.quantile_ms(quantile) {
                lock(&self.bounds).insert(metric.to_string(), b);
            }
            return Some(Measurement::Comparison {
                canary: sample(0, 0),
                primary: sample(0, 0),
            });
        };
        Some(Measurement::Comparison {
            canary: sample(canary.requests, canary.slower_than_ms(bound)),
            primary: sample(primary.requests, primary.slower_than_ms(bound)),
        })
    }
}

/// The four counts from Prometheus; a query matching no series counts zero.
pub async fn from_prometheus(
    server: &Prometheus,
    queries: &JudgeQueries,
    vars: &TemplateVars,
    metric: &CanaryMetric,
) -> Measurement {
    let q = match render_counts(queries, vars) {
        Ok(q) => q,
        Err(e) => {
            return Measurement::Error {
                message: format!("metric {} count queries: {e}", metric.name),
            };
        }
    };
    let count = |query: String| async move {
        match server.query(&query).await {
            Err(QueryError::NoData(_)) => Ok(0.0),
            other => other,
        }
    };
    let (ct, cf, pt, pf) = futures::join!(
        count(q.canary_total),
        count(q.canary_failed),
        count(q.primary_total),
        count(q.primary_failed),
    );
    match (ct, cf, pt, pf) {
        (Ok(ct), Ok(cf), Ok(pt), Ok(pf)) => Measurement::Comparison {
            canary: Sample {
                count: ct,
                failures: cf,
                values: vec![],
            },
            primary: Sample {
                count: pt,
                failures: pf,
                values: vec![],
            },
        },
        (Err(e), ..) | (_, Err(e), ..) | (_, _, Err(e), _) | (.., Err(e)) => Measurement::Error {
            message: e.to_string(),
        },
    }
}
