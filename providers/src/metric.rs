//! Metric providers by MetricTemplate `provider.type`: one enum built from the template's
//! provider block and its Secret, one `query` for all.
//!
//! Each provider window is 10 × the metric interval ending now, as in Flagger, so a query
//! written for Flagger returns the same number here.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serin_api::metric::MetricTemplateProvider;

use crate::QueryError;
use crate::cloudwatch::CloudWatch;
use crate::datadog::Datadog;
use crate::dynatrace::Dynatrace;
use crate::graphite::Graphite;
use crate::influxdb::InfluxDb;
use crate::loadtester::Loadtester;
use crate::newrelic::NewRelic;
use crate::prometheus::{Auth, DEFAULT_TIMEOUT, Prometheus};
use crate::splunk::Splunk;

/// Secret data of a MetricTemplate's `secretRef` (key → bytes).
pub type SecretData = BTreeMap<String, Vec<u8>>;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    #[error(
        "provider type {0:?} is not supported: use one of prometheus, datadog, newrelic, graphite, influxdb, dynatrace, cloudwatch, splunk, loadtester"
    )]
    UnknownType(String),
    #[error(
        "provider {provider}: secret key {key:?} is missing from secretRef: add it to the Secret"
    )]
    MissingSecret {
        provider: &'static str,
        key: &'static str,
    },
    #[error("provider {provider}: address is required: set spec.provider.address")]
    MissingAddress { provider: &'static str },
    #[error("provider {provider}: address {address:?} is not an http(s) URL")]
    BadAddress {
        provider: &'static str,
        address: String,
    },
    #[error("provider cloudwatch: spec.provider.region is required (e.g. us-east-1)")]
    MissingRegion,
    #[error("cannot build HTTP client: {0}")]
    Client(String),
}

/// A metric provider ready to query.
#[derive(Clone, Debug)]
pub enum MetricProvider {
    Prometheus(Prometheus),
    Datadog(Datadog),
    NewRelic(NewRelic),
    Graphite(Graphite),
    InfluxDb(InfluxDb),
    Dynatrace(Dynatrace),
    CloudWatch(CloudWatch),
    Splunk(Splunk),
    Loadtester(Loadtester),
}

/// What every HTTP provider shares: base address and a client.
#[derive(Clone, Debug)]
pub struct Http {
    pub address: String,
    pub client: reqwest::Client,
    pub headers: Vec<(String, String)>,
}

impl Http {
    pub fn new(
        provider: &'static str,
        address: &str,
        headers: Vec<(String, String)>,
        insecure_skip_verify: bool,
    ) -> Result<Self, ProviderError> {
        let parsed = url::Url::parse(address).map_err(|_| ProviderError::BadAddress {
            provider,
            address: address.into(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ProviderError::BadAddress {
                provider,
                address: address.into(),
            });
        }
        let client = reqwest::Client::builder()
            .timeout(DEFAULT_TIMEOUT)
            .tls_danger_accept_invalid_certs(insecure_skip_verify)
            .build()
            .map_err(|e| ProviderError::Client(e.to_string()))?;
        Ok(Http {
            address: address.trim_end_matches('/').to_string(),
            client,
            headers,
        })
    }

    pub fn url(&self, path: &str) -> Result<url::Url, QueryError> {
        url::Url::parse(&format!("{}{path}", self.address))
            .map_err(|e| QueryError::Error(format!("address {}: {e}", self.address)))
    }

    /// Sends, and returns the body of a 2xx answer; anything else is an error with the body.
    pub async fn send(
        &self,
        provider: &str,
        mut req: reqwest::RequestBuilder,
    ) -> Result<String, QueryError> {
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        let (status, body) = exchange(provider, &self.address, req).await?;
        if !(200..300).contains(&status) {
            let snippet: String = body.chars().take(300).collect();
            return Err(QueryError::Error(format!(
                "{provider} answered HTTP {}: {}",
                status,
                snippet.trim()
            )));
        }
        Ok(body)
    }
}

/// Sends `req` to `provider` at `address`; the HTTP status and the body, whatever the status
/// (Prometheus explains a bad query in a 4xx body). Not reachable or not readable is an error.
pub(crate) async fn exchange(
    provider: &str,
    address: &str,
    req: reqwest::RequestBuilder,
) -> Result<(u16, String), QueryError> {
    let resp = req.send().await.map_err(|e| {
        QueryError::Error(format!(
            "{provider} {address} unreachable: {}",
            error_chain(&e)
        ))
    })?;
    let status = resp.status().as_u16();
    let body = crate::body::read_text(resp)
        .await
        .map_err(|e| QueryError::Error(format!("{provider} {address}: {e}")))?;
    Ok((status, body))
}

pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// A secret value, trimmed (Secrets written with `echo` end in a newline).
pub fn secret_text(data: &SecretData, key: &str) -> Option<String> {
    data.get(key)
        .map(|v| String::from_utf8_lossy(v).trim().to_string())
        .filter(|v| !v.is_empty())
}

pub(crate) fn required(
    data: &SecretData,
    provider: &'static str,
    key: &'static str,
) -> Result<String, ProviderError> {
    secret_text(data, key).ok_or(ProviderError::MissingSecret { provider, key })
}

/// JSON that is not what the provider documents.
pub(crate) fn parse_error(provider: &str, body: &str, e: impl std::fmt::Display) -> QueryError {
    let snippet: String = body.chars().take(200).collect();
    QueryError::Error(format!(
        "{provider} answered something that is not its API JSON ({e}): {snippet:?}"
    ))
}

/// `(from, to)` of the query window in Unix milliseconds: 10 × interval ending now.
pub fn window_ms(interval: Duration, now: SystemTime) -> (i64, i64) {
    let to = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    (to - (interval.as_millis() as i64).saturating_mul(10), to)
}

/// A value that is a number, or no data when NaN.
pub(crate) fn finite(provider: &str, query: &str, v: f64) -> Result<f64, QueryError> {
    if v.is_nan() {
        Err(QueryError::NoData(format!(
            "{provider} returned NaN: {query}"
        )))
    } else {
        Ok(v)
    }
}

impl MetricProvider {
    /// Builds the provider of a MetricTemplate. `default_address` is the controller's metrics
    /// server (used by prometheus when the template names none).
    pub fn new(
        p: &MetricTemplateProvider,
        secret: &SecretData,
        default_address: &str,
    ) -> Result<Self, ProviderError> {
        let headers: Vec<(String, String)> = p
            .headers
            .iter()
            .flatten()
            .flat_map(|(k, vs)| vs.iter().map(move |v| (k.clone(), v.clone())))
            .collect();
        let insecure = p.insecure_skip_verify.unwrap_or(false);
        let address = p.address.as_deref().filter(|a| !a.is_empty());
        let need =
            |provider: &'static str| address.ok_or(ProviderError::MissingAddress { provider });
        Ok(match p.type_.as_str() {
            "prometheus" | "" => {
                let address = address.unwrap_or(default_address);
                MetricProvider::Prometheus(
                    Prometheus::builder(
                        address,
                        Auth::from_secret(secret),
                        headers,
                        DEFAULT_TIMEOUT,
                        insecure,
                    )
                    .map_err(|_| ProviderError::BadAddress {
                        provider: "prometheus",
                        address: address.into(),
                    })?,
                )
            }
            "datadog" => MetricProvider::Datadog(Datadog::new(
                address.unwrap_or(crate::datadog::DEFAULT_ADDRESS),
                secret,
                headers,
                insecure,
            )?),
            "newrelic" => MetricProvider::NewRelic(NewRelic::new(
                address.unwrap_or(crate::newrelic::DEFAULT_ADDRESS),
                secret,
                headers,
                insecure,
            )?),
            "graphite" => MetricProvider::Graphite(Graphite::new(
                need("graphite")?,
                secret,
                headers,
                insecure,
            )?),
            "influxdb" => MetricProvider::InfluxDb(InfluxDb::new(
                need("influxdb")?,
                secret,
                headers,
                insecure,
            )?),
            "dynatrace" => MetricProvider::Dynatrace(Dynatrace::new(
                need("dynatrace")?,
                secret,
                headers,
                insecure,
            )?),
            "cloudwatch" => {
                let region = p
                    .region
                    .as_deref()
                    .filter(|r| !r.is_empty())
                    .ok_or(ProviderError::MissingRegion)?;
                MetricProvider::CloudWatch(CloudWatch::new(
                    region, address, secret, headers, insecure,
                )?)
            }
            "splunk" => MetricProvider::Splunk(Splunk::new(
                address.unwrap_or(crate::splunk::DEFAULT_ADDRESS),
                secret,
                headers,
                insecure,
            )?),
            "loadtester" => {
                MetricProvider::Loadtester(Loadtester::new(need("loadtester")?, headers, insecure)?)
            }
            other => return Err(ProviderError::UnknownType(other.to_string())),
        })
    }

    /// Runs a rendered query over the window of `interval` (the metric's interval).
    pub async fn query(&self, query: &str, interval: Duration) -> Result<f64, QueryError> {
        let now = SystemTime::now();
        match self {
            MetricProvider::Prometheus(p) => p.query(query).await,
            MetricProvider::Datadog(p) => p.query(query, interval, now).await,
            MetricProvider::NewRelic(p) => p.query(query).await,
            MetricProvider::Graphite(p) => p.query(query).await,
            MetricProvider::InfluxDb(p) => p.query(query).await,
            MetricProvider::Dynatrace(p) => p.query(query, interval, now).await,
            MetricProvider::CloudWatch(p) => p.query(query, interval, now).await,
            MetricProvider::Splunk(p) => p.query(query, interval, now).await,
            MetricProvider::Loadtester(p) => p.query(query, interval).await,
        }
    }
}
