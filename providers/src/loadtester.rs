//! serin's loadtester as a metric provider: `GET {address}/results/{namespace}/{name}` and one
//! number from the last finished run's summary. The query is `namespace/name field`, where
//! field is a path in the summary: `error_rate`, `rps`, `requests`, `failed`, or a latency
//! percentile in milliseconds `p50`, `p90`, `p95`, `p99`, `max`, `mean`.

use serde_json::Value;

use crate::QueryError;
use crate::metric::{Http, ProviderError, finite, parse_error};

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

    pub async fn query(&self, query: &str) -> Result<f64, QueryError> {
        let (run, field) = parse_query(query)?;
        let url = self.http.url(&format!("/results/{run}"))?;
        let mut req = self.http.client.get(url);
        for (k, v) in &self.http.headers {
            req = req.header(k, v);
        }
        let resp = req.send().await.map_err(|e| {
            QueryError::Error(format!(
                "loadtester {} unreachable: {}",
                self.http.address,
                crate::metric::error_chain(&e)
            ))
        })?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .map_err(|e| QueryError::Error(format!("loadtester: reading the answer: {e}")))?;
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(QueryError::NoData(format!(
                "loadtester has no run for {run}"
            )));
        }
        if !status.is_success() {
            return Err(QueryError::Error(format!(
                "loadtester answered HTTP {}: {}",
                status.as_u16(),
                body.chars().take(300).collect::<String>().trim()
            )));
        }
        parse_answer(&body, field)
    }
}

fn parse_query(query: &str) -> Result<(&str, &str), QueryError> {
    let mut parts = query.split_whitespace();
    match (parts.next(), parts.next(), parts.next()) {
        (Some(run), Some(field), None) if run.split('/').count() == 2 => Ok((run, field)),
        _ => Err(QueryError::Error(format!(
            "loadtester query {query:?} must be `<namespace>/<name> <field>`, e.g. `{{{{ namespace }}}}/{{{{ name }}}} error_rate`"
        ))),
    }
}

/// Reads `field` from a `/results` record; a run still going or without summary is no data.
pub fn parse_answer(body: &str, field: &str) -> Result<f64, QueryError> {
    let record: Value =
        serde_json::from_str(body).map_err(|e| parse_error("loadtester", body, e))?;
    let summary = record
        .get("summary")
        .filter(|s| !s.is_null())
        .ok_or_else(|| {
            QueryError::NoData(format!(
                "loadtester run is {} without a summary yet",
                record
                    .get("state")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
            ))
        })?;
    let (path, scale) = match field {
        "p50" | "p90" | "p95" | "p99" | "max" | "mean" | "min" => {
            (format!("/latency_us/{field}"), 1e-3)
        }
        other => (format!("/{}", other.replace('.', "/")), 1.0),
    };
    let v = summary
        .pointer(&path)
        .and_then(Value::as_f64)
        .ok_or_else(|| {
            QueryError::Error(format!(
                "loadtester summary has no number at {field:?}: use error_rate, rps, requests, failed, p50, p90, p95, p99, mean or max"
            ))
        })?;
    finite("loadtester", field, v * scale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serin_loadtester::summary::{Latency, Summary};

    /// The field names this provider reads are those the loadtester writes.
    #[test]
    fn reads_the_loadtesters_own_summary() {
        let summary = Summary {
            requests: 200,
            failed: 3,
            error_rate: 0.015,
            rps: 20.0,
            latency_us: Latency {
                p99: 12_500,
                ..Default::default()
            },
            ..Default::default()
        };
        let body = serde_json::json!({"state": "passed", "summary": summary}).to_string();
        assert_eq!(parse_answer(&body, "error_rate"), Ok(0.015));
        assert_eq!(parse_answer(&body, "requests"), Ok(200.0));
        assert_eq!(parse_answer(&body, "p99"), Ok(12.5));
    }
}
