//! Datadog: `GET {address}/api/v1/query?from=&to=&query=` with the API and application keys
//! (secret keys `datadog_api_key`, `datadog_application_key`).

use std::time::{Duration, SystemTime};

use serde::Deserialize;

use crate::QueryError;
use crate::metric::{Http, ProviderError, SecretData, finite, parse_error, required, window_ms};

pub const DEFAULT_ADDRESS: &str = "https://api.datadoghq.com";

#[derive(Clone, Debug)]
pub struct Datadog {
    http: Http,
    api_key: String,
    application_key: String,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    series: Vec<Series>,
}

#[derive(Deserialize)]
struct Series {
    #[serde(default)]
    pointlist: Vec<(f64, Option<f64>)>,
}

impl Datadog {
    pub fn new(
        address: &str,
        secret: &SecretData,
        headers: Vec<(String, String)>,
        insecure: bool,
    ) -> Result<Self, ProviderError> {
        Ok(Datadog {
            http: Http::new("datadog", address, headers, insecure)?,
            api_key: required(secret, "datadog", "datadog_api_key")?,
            application_key: required(secret, "datadog", "datadog_application_key")?,
        })
    }

    pub async fn query(
        &self,
        query: &str,
        interval: Duration,
        now: SystemTime,
    ) -> Result<f64, QueryError> {
        let (from, to) = window_ms(interval, now);
        let mut url = self.http.url("/api/v1/query")?;
        url.query_pairs_mut()
            .append_pair("from", &(from / 1000).to_string())
            .append_pair("to", &(to / 1000).to_string())
            .append_pair("query", query);
        let req = self
            .http
            .client
            .get(url)
            .header("DD-API-KEY", &self.api_key)
            .header("DD-APPLICATION-KEY", &self.application_key);
        let body = self.http.send("datadog", req).await?;
        parse_answer(&body, query)
    }
}

/// The first point of the first series, as Flagger reads it.
pub fn parse_answer(body: &str, query: &str) -> Result<f64, QueryError> {
    let a: Answer = serde_json::from_str(body).map_err(|e| parse_error("datadog", body, e))?;
    if a.status.as_deref() == Some("error") {
        return Err(QueryError::Error(format!(
            "datadog query failed: {}; query: {query}",
            a.error.unwrap_or_default()
        )));
    }
    let point = a
        .series
        .first()
        .and_then(|s| s.pointlist.first())
        .ok_or_else(|| QueryError::NoData(format!("datadog returned no points: {query}")))?;
    let v = point
        .1
        .ok_or_else(|| QueryError::NoData(format!("datadog point is null: {query}")))?;
    finite("datadog", query, v)
}
