//! Dynatrace: `GET {address}/api/v2/metrics/query?metricSelector=…&from=&to=&resolution=Inf`
//! with `Authorization: Api-Token …` (secret key `dynatrace_token`).

use std::time::{Duration, SystemTime};

use serde::Deserialize;

use crate::QueryError;
use crate::metric::{Http, ProviderError, SecretData, finite, parse_error, required, window_ms};

#[derive(Clone, Debug)]
pub struct Dynatrace {
    http: Http,
    token: String,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    result: Vec<MetricResult>,
}

#[derive(Deserialize)]
struct MetricResult {
    #[serde(default)]
    data: Vec<Data>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(default)]
    values: Vec<Option<f64>>,
}

impl Dynatrace {
    pub fn new(
        address: &str,
        secret: &SecretData,
        headers: Vec<(String, String)>,
        insecure: bool,
    ) -> Result<Self, ProviderError> {
        Ok(Dynatrace {
            http: Http::new("dynatrace", address, headers, insecure)?,
            token: required(secret, "dynatrace", "dynatrace_token")?,
        })
    }

    pub async fn query(
        &self,
        query: &str,
        interval: Duration,
        now: SystemTime,
    ) -> Result<f64, QueryError> {
        let (from, to) = window_ms(interval, now);
        let mut url = self.http.url("/api/v2/metrics/query")?;
        url.query_pairs_mut()
            .append_pair("metricSelector", query.trim())
            .append_pair("from", &from.to_string())
            .append_pair("to", &to.to_string())
            .append_pair("resolution", "Inf");
        let req = self
            .http
            .client
            .get(url)
            .header("Authorization", format!("Api-Token {}", self.token));
        let body = self.http.send("dynatrace", req).await?;
        parse_answer(&body, query)
    }
}

/// The last non-null value of the first series of the first metric.
pub fn parse_answer(body: &str, query: &str) -> Result<f64, QueryError> {
    let a: Answer = serde_json::from_str(body).map_err(|e| parse_error("dynatrace", body, e))?;
    let data = a
        .result
        .first()
        .and_then(|r| r.data.first())
        .ok_or_else(|| QueryError::NoData(format!("dynatrace returned no series: {query}")))?;
    let v =
        data.values.iter().rev().find_map(|v| *v).ok_or_else(|| {
            QueryError::NoData(format!("dynatrace series has no values: {query}"))
        })?;
    finite("dynatrace", query, v)
}
