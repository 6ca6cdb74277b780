//! Calling Canary webhooks: Flagger's HTTP contract (reference/flagger.md §3.11) plus serin's
//! extra payload fields, which older receivers ignore.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The JSON body POSTed to a webhook: Flagger's `CanaryWebhookPayload` and serin's additions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookPayload {
    pub name: String,
    pub namespace: String,
    pub phase: String,
    /// Identifies a run (hash of the applied spec and tracked configs).
    #[serde(default)]
    pub checksum: String,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    // serin's additions.
    /// The webhook's type (`pre-rollout`, `rollout`, …).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// Template hash under analysis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Template hash of the stable version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_revision: Option<String>,
    /// Container images of the canary, by container name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_weight: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_checks: Option<i32>,
    /// Why the engine called the hook (e.g. the rollback reason for post-rollout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// How to call one webhook.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookCall {
    pub url: String,
    pub timeout: Duration,
    /// Extra attempts on connection errors, 5xx and 429 (Flagger's `retries`).
    pub retries: u32,
    /// `disableTLS`: do not verify the server's certificate.
    pub disable_tls: bool,
}

/// A webhook's answer that counts as a failure (Flagger: any status above 202, or no answer).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WebhookError {
    #[error("webhook {url} answered {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("webhook {url} unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("webhook url {0:?} is not an http(s) URL")]
    BadUrl(String),
}

/// Backoff between attempts: 100 ms doubling, at most 2 s (go-retryablehttp's shape, shorter
/// because a tick waits for it).
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << attempt.min(5))).min(Duration::from_secs(2))
}

/// POSTs the payload; `Ok(body)` when the status is ≤ 202.
pub async fn call(call: &WebhookCall, payload: &WebhookPayload) -> Result<String, WebhookError> {
    let url = url::Url::parse(&call.url).map_err(|_| WebhookError::BadUrl(call.url.clone()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(WebhookError::BadUrl(call.url.clone()));
    }
    let client = reqwest::Client::builder()
        .timeout(call.timeout)
        .tls_danger_accept_invalid_certs(call.disable_tls)
        .build()
        .map_err(|e| WebhookError::Unreachable {
            url: call.url.clone(),
            reason: e.to_string(),
        })?;
    let mut attempt = 0;
    loop {
        let result = client.post(url.clone()).json(payload).send().await;
        let retryable;
        let err = match result {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let body = match crate::body::read_text(resp).await {
                    Ok(body) => body,
                    // Not retried: the same address would answer the same size again.
                    Err(e @ crate::body::BodyError::TooLarge { .. }) => {
                        return Err(WebhookError::Unreachable {
                            url: call.url.clone(),
                            reason: e.to_string(),
                        });
                    }
                    Err(_) => String::new(),
                };
                if status <= 202 {
                    return Ok(body);
                }
                retryable = status >= 500 || status == 429;
                WebhookError::Status {
                    url: call.url.clone(),
                    status,
                    body: body.trim().chars().take(1000).collect(),
                }
            }
            Err(e) => {
                retryable = true;
                let mut reason = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    reason.push_str(": ");
                    reason.push_str(&s.to_string());
                    src = s.source();
                }
                WebhookError::Unreachable {
                    url: call.url.clone(),
                    reason,
                }
            }
        };
        if !retryable || attempt >= call.retries {
            return Err(err);
        }
        tokio_sleep(backoff(attempt)).await;
        attempt += 1;
    }
}

async fn tokio_sleep(d: Duration) {
    tokio::time::sleep(d).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_keeps_flagger_fields_and_names() {
        let p = WebhookPayload {
            name: "web".into(),
            namespace: "prod".into(),
            phase: "Progressing".into(),
            checksum: "abc".into(),
            metadata: [("cmd".to_string(), "hey".to_string())].into(),
            canary_weight: Some(10),
            ..Default::default()
        };
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["name"], "web");
        assert_eq!(v["metadata"]["cmd"], "hey");
        assert_eq!(v["canaryWeight"], 10);
        assert!(v.get("images").is_none());
        // A Flagger payload (no serin fields) parses.
        let flagger: WebhookPayload = serde_json::from_str(
            r#"{"name":"web","namespace":"prod","phase":"Progressing","checksum":"x","metadata":{"type":"cmd"}}"#,
        )
        .unwrap();
        assert_eq!(flagger.metadata["type"], "cmd");
    }

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(0), Duration::from_millis(100));
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(10), Duration::from_secs(2));
    }
}
