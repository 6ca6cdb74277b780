//! The Prometheus provider: `GET {address}/api/v1/query?query=…`, as Flagger calls it.
//!
//! Differences from Flagger, on purpose: a result with several series is an error that names
//! them (Flagger silently keeps the last one), and errors carry Prometheus' own message.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::QueryError;

/// Credentials from the MetricTemplate's `secretRef` (keys `token`, or `username` + `password`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    Bearer(String),
    Basic { username: String, password: String },
}

impl Auth {
    /// Reads Flagger's secret keys; `None` when the secret has neither form.
    pub fn from_secret(data: &BTreeMap<String, Vec<u8>>) -> Option<Auth> {
        let text = |k: &str| {
            data.get(k)
                .map(|v| String::from_utf8_lossy(v).trim().to_string())
        };
        if let Some(token) = text("token").filter(|t| !t.is_empty()) {
            return Some(Auth::Bearer(token));
        }
        match (text("username"), text("password")) {
            (Some(username), Some(password)) => Some(Auth::Basic { username, password }),
            _ => None,
        }
    }
}

/// A Prometheus server.
#[derive(Clone, Debug)]
pub struct Prometheus {
    address: String,
    auth: Option<Auth>,
    headers: Vec<(String, String)>,
    http: reqwest::Client,
}

/// Flagger's query timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "metrics server address {0:?} is not an http(s) URL: write e.g. http://prometheus.monitoring:9090"
    )]
    Address(String),
    #[error("cannot build HTTP client: {0}")]
    Client(String),
}

impl Prometheus {
    pub fn new(address: &str) -> Result<Self, ConfigError> {
        Self::builder(address, None, Vec::new(), DEFAULT_TIMEOUT, false)
    }

    /// A client with credentials, extra headers (MetricTemplate `provider.headers`), a timeout and
    /// optionally no TLS verification (`insecureSkipVerify`).
    pub fn builder(
        address: &str,
        auth: Option<Auth>,
        headers: Vec<(String, String)>,
        timeout: Duration,
        insecure_skip_verify: bool,
    ) -> Result<Self, ConfigError> {
        let parsed = url::Url::parse(address).map_err(|_| ConfigError::Address(address.into()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ConfigError::Address(address.into()));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .tls_danger_accept_invalid_certs(insecure_skip_verify)
            .build()
            .map_err(|e| ConfigError::Client(e.to_string()))?;
        Ok(Self {
            address: address.trim_end_matches('/').to_string(),
            auth,
            headers,
            http,
        })
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// Runs an instant query that must yield one number.
    pub async fn query(&self, query: &str) -> Result<f64, QueryError> {
        let (status, body, query) = self.fetch(query).await?;
        parse_answer(status, &body, &query)
    }

    /// Runs an instant query for a histogram, `sum by (le) (…)`: each series' `le` label and
    /// value (the statistical judge's latency buckets). No series is an empty list.
    pub async fn query_buckets(&self, query: &str) -> Result<Vec<(f64, f64)>, QueryError> {
        let (status, body, query) = self.fetch(query).await?;
        parse_buckets(status, &body, &query)
    }

    /// GETs `/api/v1/query`; returns the HTTP status, the body and the query as sent.
    async fn fetch(&self, query: &str) -> Result<(u16, String, String), QueryError> {
        // Flagger collapses whitespace so multi-line YAML queries stay readable in logs.
        let query = query.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut url = url::Url::parse(&format!("{}/api/v1/query", self.address))
            .map_err(|e| QueryError::Error(format!("prometheus address {}: {e}", self.address)))?;
        url.query_pairs_mut().append_pair("query", &query);
        let mut req = self.http.get(url);
        match &self.auth {
            Some(Auth::Bearer(t)) => req = req.bearer_auth(t),
            Some(Auth::Basic { username, password }) => {
                req = req.basic_auth(username, Some(password))
            }
            None => {}
        }
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        let (status, body) = crate::metric::exchange("prometheus", &self.address, req).await?;
        Ok((status, body, query))
    }

    /// Flagger's availability check: `vector(1)` must answer 1.
    pub async fn is_online(&self) -> Result<(), QueryError> {
        match self.query("vector(1)").await? {
            1.0 => Ok(()),
            v => Err(QueryError::Error(format!(
                "prometheus {} answered {v} to vector(1)",
                self.address
            ))),
        }
    }
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    result_type: String,
    result: serde_json::Value,
}

/// The `data` of a successful `/api/v1/query` answer; Prometheus' own error otherwise.
fn success_data(status: u16, body: &str, query: &str) -> Result<Data, QueryError> {
    let answer: Answer = serde_json::from_str(body).map_err(|_| {
        let snippet: String = body.chars().take(200).collect();
        QueryError::Error(format!(
            "prometheus answered HTTP {status} with a body that is not its API JSON: {snippet:?}"
        ))
    })?;
    if answer.status != "success" {
        return Err(QueryError::Error(format!(
            "prometheus query failed (HTTP {status}, {}): {}; query: {query}",
            answer.error_type.unwrap_or_default(),
            answer.error.unwrap_or_default()
        )));
    }
    let data = answer
        .data
        .ok_or_else(|| QueryError::Error("prometheus answer has no data".into()))?;
    Ok(data)
}

/// Interprets a `/api/v1/query` answer (exposed for tests of edge cases).
pub fn parse_answer(status: u16, body: &str, query: &str) -> Result<f64, QueryError> {
    let data = success_data(status, body, query)?;
    let value = match data.result_type.as_str() {
        "scalar" => sample_value(&data.result)?,
        "vector" => {
            let series = data.result.as_array().cloned().unwrap_or_default();
            match series.len() {
                0 => {
                    return Err(QueryError::NoData(format!(
                        "query returned no series: {query}"
                    )));
                }
                1 => sample_value(&series[0]["value"])?,
                n => {
                    let names: Vec<String> = series
                        .iter()
                        .take(5)
                        .map(|s| s["metric"].to_string())
                        .collect();
                    return Err(QueryError::Error(format!(
                        "query returned {n} series, expected one: {}{}; aggregate it (e.g. sum(...)) so it yields a single value",
                        names.join(", "),
                        if n > 5 { ", …" } else { "" }
                    )));
                }
            }
        }
        other => {
            return Err(QueryError::Error(format!(
                "query returned a {other}, expected one number (an instant vector with one series or a scalar)"
            )));
        }
    };
    if value.is_nan() {
        return Err(QueryError::NoData(format!(
            "query returned NaN (no requests in the window?): {query}"
        )));
    }
    Ok(value)
}

/// Interprets an answer to a `sum by (le) (…)` query: (le, value) per series, sorted by `le`.
pub fn parse_buckets(status: u16, body: &str, query: &str) -> Result<Vec<(f64, f64)>, QueryError> {
    let data = success_data(status, body, query)?;
    if data.result_type != "vector" {
        return Err(QueryError::Error(format!(
            "query returned a {}, expected histogram buckets (sum by (le) (…)): {query}",
            data.result_type
        )));
    }
    let mut out = Vec::new();
    for series in data.result.as_array().into_iter().flatten() {
        let le = series["metric"]["le"]
            .as_str()
            .and_then(|le| le.parse::<f64>().ok())
            .ok_or_else(|| {
                QueryError::Error(format!(
                    "series {} has no numeric le label: aggregate with sum by (le) (…): {query}",
                    series["metric"]
                ))
            })?;
        out.push((le, sample_value(&series["value"])?));
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(out)
}

fn sample_value(sample: &serde_json::Value) -> Result<f64, QueryError> {
    sample
        .get(1)
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse::<f64>().ok())
        .ok_or_else(|| QueryError::Error(format!("malformed sample {sample}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(series: &str) -> String {
        format!(r#"{{"status":"success","data":{{"resultType":"vector","result":[{series}]}}}}"#)
    }

    #[test]
    fn buckets_are_read_by_le_in_order() {
        let body = vector(
            r#"{"metric":{"le":"+Inf"},"value":[1,"100"]},{"metric":{"le":"0.25"},"value":[1,"90.5"]},{"metric":{"le":"0.1"},"value":[1,"40"]}"#,
        );
        assert_eq!(
            parse_buckets(200, &body, "q"),
            Ok(vec![(0.1, 40.0), (0.25, 90.5), (f64::INFINITY, 100.0)])
        );
        assert_eq!(parse_buckets(200, &vector(""), "q"), Ok(vec![]));
        let no_le = vector(r#"{"metric":{"pod":"a"},"value":[1,"1"]}"#);
        let err = parse_buckets(200, &no_le, "q").unwrap_err().to_string();
        assert!(err.contains("sum by (le)"), "{err}");
    }

    #[test]
    fn one_series_is_a_value() {
        let body = vector(r#"{"metric":{},"value":[1700000000.1,"99.5"]}"#);
        assert_eq!(parse_answer(200, &body, "q"), Ok(99.5));
    }

    #[test]
    fn empty_and_nan_are_no_data() {
        assert!(
            parse_answer(200, &vector(""), "q")
                .unwrap_err()
                .is_no_data()
        );
        let nan = vector(r#"{"metric":{},"value":[1,"NaN"]}"#);
        assert!(parse_answer(200, &nan, "q").unwrap_err().is_no_data());
    }

    #[test]
    fn several_series_are_an_error_naming_them() {
        let body = vector(
            r#"{"metric":{"pod":"a"},"value":[1,"1"]},{"metric":{"pod":"b"},"value":[1,"2"]}"#,
        );
        let err = parse_answer(200, &body, "q").unwrap_err();
        assert!(!err.is_no_data());
        let text = err.to_string();
        assert!(
            text.contains(r#""pod":"a""#) && text.contains(r#""pod":"b""#),
            "{text}"
        );
    }

    #[test]
    fn query_errors_keep_prometheus_message() {
        let body = r#"{"status":"error","errorType":"bad_data","error":"parse error at char 4"}"#;
        let text = parse_answer(400, body, "sum(").unwrap_err().to_string();
        assert!(
            text.contains("parse error at char 4") && text.contains("bad_data"),
            "{text}"
        );
        assert!(
            !parse_answer(502, "<html>bad gateway</html>", "q")
                .unwrap_err()
                .is_no_data()
        );
    }

    #[test]
    fn matrix_is_an_error() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(
            parse_answer(200, body, "q")
                .unwrap_err()
                .to_string()
                .contains("matrix")
        );
    }

    #[test]
    fn secret_forms() {
        let mut d = BTreeMap::new();
        d.insert("username".to_string(), b"u".to_vec());
        d.insert("password".to_string(), b"p".to_vec());
        assert_eq!(
            Auth::from_secret(&d),
            Some(Auth::Basic {
                username: "u".into(),
                password: "p".into()
            })
        );
        d.insert("token".to_string(), b"t\n".to_vec());
        assert_eq!(Auth::from_secret(&d), Some(Auth::Bearer("t".into())));
    }
}
