//! CloudWatch: `GetMetricData` over the JSON 1.0 protocol, signed with AWS Signature V4.
//!
//! The query is the JSON array of `MetricDataQuery` Flagger takes; the window is 10 × interval
//! and the value is the first value of the first result, as in Flagger. Credentials come from
//! the secret keys `aws_access_key_id`, `aws_secret_access_key` (and optional
//! `aws_session_token`), else from the same `AWS_*` environment variables. Signing uses
//! aws-lc-rs' HMAC-SHA256 and SHA-256 (already in the build for TLS).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::{digest, hmac};
use serde_json::{Value, json};

use crate::QueryError;
use crate::metric::{Http, ProviderError, SecretData, finite, parse_error, secret_text, window_ms};

const TARGET: &str = "GraniteServiceVersion20100801.GetMetricData";
const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

#[derive(Clone, Debug)]
pub struct CloudWatch {
    http: Http,
    region: String,
    credentials: Credentials,
}

impl CloudWatch {
    pub fn new(
        region: &str,
        address: Option<&str>,
        secret: &SecretData,
        headers: Vec<(String, String)>,
        insecure: bool,
    ) -> Result<Self, ProviderError> {
        let default = format!("https://monitoring.{region}.amazonaws.com");
        let from_env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let credentials = match (
            secret_text(secret, "aws_access_key_id"),
            secret_text(secret, "aws_secret_access_key"),
        ) {
            (Some(a), Some(s)) => Credentials {
                access_key_id: a,
                secret_access_key: s,
                session_token: secret_text(secret, "aws_session_token"),
            },
            _ => match (
                from_env("AWS_ACCESS_KEY_ID"),
                from_env("AWS_SECRET_ACCESS_KEY"),
            ) {
                (Some(a), Some(s)) => Credentials {
                    access_key_id: a,
                    secret_access_key: s,
                    session_token: from_env("AWS_SESSION_TOKEN"),
                },
                _ => {
                    return Err(ProviderError::MissingSecret {
                        provider: "cloudwatch",
                        key: "aws_access_key_id",
                    });
                }
            },
        };
        Ok(CloudWatch {
            http: Http::new("cloudwatch", address.unwrap_or(&default), headers, insecure)?,
            region: region.to_string(),
            credentials,
        })
    }

    pub async fn query(
        &self,
        query: &str,
        interval: Duration,
        now: SystemTime,
    ) -> Result<f64, QueryError> {
        let queries: Value = serde_json::from_str(query).map_err(|e| {
            QueryError::Error(format!(
                "cloudwatch query must be a JSON array of MetricDataQuery: {e}"
            ))
        })?;
        if !queries.is_array() {
            return Err(QueryError::Error(
                "cloudwatch query must be a JSON array of MetricDataQuery".into(),
            ));
        }
        let (from, to) = window_ms(interval, now);
        let body = json!({
            "MetricDataQueries": queries,
            "StartTime": from / 1000,
            "EndTime": to / 1000,
            "MaxDatapoints": 20,
        })
        .to_string();
        let url = self.http.url("/")?;
        let host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_string(),
        };
        let signed = sign(&SignInput {
            credentials: &self.credentials,
            region: &self.region,
            service: "monitoring",
            host: &host,
            target: TARGET,
            body: &body,
            now,
        });
        let mut req = self
            .http
            .client
            .post(url)
            .header("Content-Type", CONTENT_TYPE)
            .header("X-Amz-Target", TARGET)
            .header("X-Amz-Date", &signed.amz_date)
            .header("Authorization", &signed.authorization)
            .body(body);
        if let Some(t) = &self.credentials.session_token {
            req = req.header("X-Amz-Security-Token", t);
        }
        let answer = self.http.send("cloudwatch", req).await?;
        parse_answer(&answer, query)
    }
}

/// First value of the first `MetricDataResults` entry.
pub fn parse_answer(body: &str, query: &str) -> Result<f64, QueryError> {
    let a: Value = serde_json::from_str(body).map_err(|e| parse_error("cloudwatch", body, e))?;
    let result = a
        .get("MetricDataResults")
        .and_then(Value::as_array)
        .and_then(|r| r.first())
        .ok_or_else(|| QueryError::NoData(format!("cloudwatch returned no results: {query}")))?;
    let v = result
        .get("Values")
        .and_then(Value::as_array)
        .and_then(|v| v.first())
        .and_then(Value::as_f64)
        .ok_or_else(|| QueryError::NoData(format!("cloudwatch result has no values: {query}")))?;
    finite("cloudwatch", query, v)
}

pub struct SignInput<'a> {
    pub credentials: &'a Credentials,
    pub region: &'a str,
    pub service: &'a str,
    pub host: &'a str,
    pub target: &'a str,
    pub body: &'a str,
    pub now: SystemTime,
}

pub struct Signed {
    pub amz_date: String,
    pub authorization: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
        .as_ref()
        .to_vec()
}

/// The SigV4 signing key for a day, region and service.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k = hmac_sha256(&k, region.as_bytes());
    let k = hmac_sha256(&k, service.as_bytes());
    hmac_sha256(&k, b"aws4_request")
}

/// Signs a POST to `/` with the JSON protocol's headers.
pub fn sign(input: &SignInput) -> Signed {
    let secs = input
        .now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let ts = jiff::Timestamp::from_second(secs).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let amz_date = ts.strftime("%Y%m%dT%H%M%SZ").to_string();
    let date = &amz_date[..8];
    let mut headers = vec![
        ("content-type", CONTENT_TYPE.to_string()),
        ("host", input.host.to_string()),
        ("x-amz-date", amz_date.clone()),
        ("x-amz-target", input.target.to_string()),
    ];
    if let Some(t) = &input.credentials.session_token {
        headers.push(("x-amz-security-token", t.clone()));
    }
    headers.sort();
    let canonical_headers: String = headers
        .iter()
        .map(|(k, v)| format!("{k}:{}\n", v.trim()))
        .collect();
    let signed_headers = headers
        .iter()
        .map(|(k, _)| *k)
        .collect::<Vec<_>>()
        .join(";");
    let canonical = format!(
        "POST\n/\n\n{canonical_headers}\n{signed_headers}\n{}",
        sha256_hex(input.body.as_bytes())
    );
    let scope = format!("{date}/{}/{}/aws4_request", input.region, input.service);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let key = signing_key(
        &input.credentials.secret_access_key,
        date,
        input.region,
        input.service,
    );
    let signature = hex(&hmac_sha256(&key, to_sign.as_bytes()));
    Signed {
        authorization: format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            input.credentials.access_key_id
        ),
        amz_date,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The derived-key example of AWS' "Examples of how to derive a signing key" page.
    #[test]
    fn signing_key_matches_the_aws_example() {
        let key = signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20120215",
            "us-east-1",
            "iam",
        );
        assert_eq!(
            hex(&key),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }
}
