//! Splunk Observability (SignalFx): `GET {address}/v1/timeserieswindow?query=…&startMs=&endMs=`
//! with `X-SF-Token` (secret key `sf_token_key`). Flagger streams SignalFlow over a websocket;
//! serin keeps to this documented HTTP call, whose query is a time-series filter such as
//! `sf_metric:"errors" AND service:"podinfo"`.

use std::time::{Duration, SystemTime};

use serde::Deserialize;

use crate::QueryError;
use crate::metric::{Http, ProviderError, SecretData, finite, parse_error, required, window_ms};

pub const DEFAULT_ADDRESS: &str = "https://api.us1.signalfx.com";

#[derive(Clone, Debug)]
pub struct Splunk {
    http: Http,
    token: String,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    data: std::collections::BTreeMap<String, Vec<(f64, Option<f64>)>>,
    #[serde(default)]
    errors: Vec<serde_json::Value>,
}

impl Splunk {
    pub fn new(
        address: &str,
        secret: &SecretData,
        headers: Vec<(String, String)>,
        insecure: bool,
    ) -> Result<Self, ProviderError> {
        Ok(Splunk {
            http: Http::new("splunk", address, headers, insecure)?,
            token: required(secret, "splunk", "sf_token_key")?,
        })
    }

    pub async fn query(
        &self,
        query: &str,
        interval: Duration,
        now: SystemTime,
    ) -> Result<f64, QueryError> {
        let (from, to) = window_ms(interval, now);
        let mut url = self.http.url("/v1/timeserieswindow")?;
        url.query_pairs_mut()
            .append_pair("query", query.trim())
            .append_pair("startMs", &from.to_string())
            .append_pair("endMs", &to.to_string());
        let req = self.http.client.get(url).header("X-SF-Token", &self.token);
        let body = self.http.send("splunk", req).await?;
        parse_answer(&body, query)
    }
}

/// The last non-null point of the one time series.
pub fn parse_answer(body: &str, query: &str) -> Result<f64, QueryError> {
    let a: Answer = serde_json::from_str(body).map_err(|e| parse_error("splunk", body, e))?;
    if !a.errors.is_empty() {
        return Err(QueryError::Error(format!(
            "splunk query failed: {}; query: {query}",
            serde_json::Value::Array(a.errors)
        )));
    }
    let points = match a.data.len() {
        0 => {
            return Err(QueryError::NoData(format!(
                "splunk returned no series: {query}"
            )));
        }
        1 => a.data.into_values().next().unwrap_or_default(),
        n => {
            return Err(QueryError::Error(format!(
                "splunk returned {n} series, expected one: narrow the filter to one time series"
            )));
        }
    };
    let v = points
        .iter()
        .rev()
        .find_map(|(_, v)| *v)
        .ok_or_else(|| QueryError::NoData(format!("splunk series has no values: {query}")))?;
    finite("splunk", query, v)
}
