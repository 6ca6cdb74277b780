//! serin's loadtester as a metric provider: the load a canary's runs completed in the metric's
//! window, `GET {address}/results/{namespace}/{name}?window={interval}`. The query is
//! `namespace/name field`, where name is the Canary's (`{{ namespace }}/{{ name }}`; the
//! loadtester also answers `{{ target }}`, the `<name>-canary` workload) and field is
//! `error_rate`, `rps`, `requests`, `failed`, or a latency percentile in milliseconds `p50`,
//! `p90`, `p95`, `p99`, `mean`.
//!
//! A window that the runs do not cover yet (the hook started the load less than an interval ago)
//! is no data; a covered window without a completed request is an error, because the load is
//! not reaching the canary.

use std::time::Duration;

use serde_json::Value;

use crate::QueryError;
use crate::metric::{Http, ProviderError, finite, parse_error};

pub const FIELDS: &str = "error_rate, rps, requests, failed, p50, p90, p95, p99 or mean";

#[derive(Clone, Debug)]
pub struct Loadtester {
    http: Http,
}

impl Loadtester {
    pub fn new(
        address: &str,
        headers: Vec<(String, String)>,
        insecure: bool,
    ) -> Result<Self, ProviderError> {
        Ok(Loadtester {
            http: Http::new("loadtester", address, headers, insecure)?,
        })
    }

    /// Reads `field` over the last `interval` of the canary's load.
    pub async fn query(&self, query: &str, interval: Duration) -> Result<f64, QueryError> {
        let (run, field) = parse_query(query)?;
        let mut url = self.http.url(&format!("/results/{run}"))?;
        url.query_pairs_mut()
            .append_pair("window", &format!("{}", interval.as_secs_f64().max(1.0)));
        let mut req = self.http.client.get(url);
        for (k, v) in &self.http.headers {
            req = req.header(k, v);
        }
        let (status, body) = crate::metric::exchange("loadtester", &self.http.address, req).await?;
        if status == 404 {
            return Err(QueryError::NoData(format!(
                "no load test has run for {run}: the loadtester keys results by the Canary ({{{{ namespace }}}}/{{{{ name }}}})"
            )));
        }
        if !(200..300).contains(&status) {
            return Err(QueryError::Error(format!(
                "loadtester answered HTTP {status}: {}",
                body.chars().take(300).collect::<String>().trim()
            )));
        }
        parse_answer(&body, field)
    }
}

/// `namespace/name field`.
pub fn parse_query(query: &str) -> Result<(&str, &str), QueryError> {
    let mut parts = query.split_whitespace();
    match (parts.next(), parts.next(), parts.next()) {
        (Some(run), Some(field), None) if run.split('/').count() == 2 => Ok((run, field)),
        _ => Err(QueryError::Error(format!(
            "loadtester query {query:?} must be `<namespace>/<name> <field>`, e.g. `{{{{ namespace }}}}/{{{{ name }}}} error_rate`"
        ))),
    }
}

/// Reads `field` from a windowed `/results` answer.
pub fn parse_answer(body: &str, field: &str) -> Result<f64, QueryError> {
    let w: Value = serde_json::from_str(body).map_err(|e| parse_error("loadtester", body, e))?;
    let message = || {
        w.get("message")
            .and_then(Value::as_str)
            .unwrap_or("the loadtester has no figures for this window")
            .to_string()
    };
    let complete = w.get("complete").and_then(Value::as_bool).unwrap_or(false);
    let runs = w.get("runs").and_then(Value::as_u64).unwrap_or(0);
    let requests = w.get("requests").and_then(Value::as_u64).unwrap_or(0);
    if !complete || runs == 0 {
        return Err(QueryError::NoData(message()));
    }
    if requests == 0 {
        return Err(QueryError::Error(message()));
    }
    let pointer = match field {
        "p50" | "p90" | "p95" | "p99" | "mean" => format!("/latency_ms/{field}"),
        "error_rate" | "rps" | "requests" | "failed" => format!("/{field}"),
        _ => String::new(),
    };
    let v = w.pointer(&pointer).and_then(Value::as_f64).ok_or_else(|| {
        QueryError::Error(format!(
            "loadtester field {field:?} is not one it measures: use {FIELDS}"
        ))
    })?;
    finite("loadtester", field, v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serin_loadtester::service::window::{Window, WindowLatency};

    /// The field names this provider reads are those the loadtester writes.
    #[test]
    fn reads_the_loadtesters_own_window() {
        let w = Window {
            canary: "test/web".into(),
            window_secs: 60.0,
            complete: true,
            runs: 1,
            running: 1,
            requests: 200,
            failed: 3,
            error_rate: 0.015,
            rps: 20.0,
            latency_ms: Some(WindowLatency {
                p99: 12.5,
                ..Default::default()
            }),
            ..Default::default()
        };
        let body = serde_json::to_string(&w).unwrap();
        assert_eq!(parse_answer(&body, "error_rate"), Ok(0.015));
        assert_eq!(parse_answer(&body, "requests"), Ok(200.0));
        assert_eq!(parse_answer(&body, "p99"), Ok(12.5));
        assert!(
            parse_answer(&body, "p42")
                .unwrap_err()
                .to_string()
                .contains("p50")
        );
    }

    #[test]
    fn uncovered_is_no_data_and_covered_but_empty_is_an_error() {
        let w = Window {
            runs: 1,
            running: 1,
            message: Some("its first 60s window completes in 59s".into()),
            ..Default::default()
        };
        let e = parse_answer(&serde_json::to_string(&w).unwrap(), "error_rate").unwrap_err();
        assert!(
            e.is_no_data() && e.to_string().contains("completes in 59s"),
            "{e}"
        );
        let w = Window {
            complete: true,
            ..w
        };
        let e = parse_answer(&serde_json::to_string(&w).unwrap(), "error_rate").unwrap_err();
        assert!(!e.is_no_data(), "{e}");
    }

    #[test]
    fn query_names_a_canary_and_a_field() {
        assert_eq!(
            parse_query("test/web error_rate"),
            Ok(("test/web", "error_rate"))
        );
        assert!(parse_query("web error_rate").is_err());
        assert!(parse_query("test/web").is_err());
    }
}
