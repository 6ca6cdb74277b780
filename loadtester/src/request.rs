//! The HTTP client an attack uses (hey's transport options) and sending one request.

use std::time::Instant;

use reqwest::{Client, Method, RequestBuilder};

use crate::spec::{AttackSpec, RequestSpec};
use crate::summary::Outcome;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot build the HTTP client: {0}")]
    Build(#[from] reqwest::Error),
    #[error("-m: '{0}' is not an HTTP method")]
    Method(String),
}

/// A request ready to clone per send.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub method: Method,
    pub spec: RequestSpec,
}

impl Prepared {
    pub fn new(spec: &RequestSpec) -> Result<Self, ClientError> {
        let method = Method::from_bytes(spec.method.as_bytes())
            .map_err(|_| ClientError::Method(spec.method.clone()))?;
        Ok(Prepared {
            method,
            spec: spec.clone(),
        })
    }

    pub fn builder(&self, client: &Client, keepalive: bool) -> RequestBuilder {
        let mut rb = client.request(self.method.clone(), &self.spec.url);
        for (k, v) in &self.spec.headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        if !keepalive {
            rb = rb.header("Connection", "close");
        }
        if let Some(body) = &self.spec.body {
            rb = rb.body(body.clone());
        }
        rb
    }

    /// Classifies a response; the body has been read in full by the caller.
    pub fn outcome(&self, status: u16) -> Outcome {
        let failed = match self.spec.expect_status {
            Some(want) => status != want,
            None => status >= 500,
        };
        Outcome::Response { status, failed }
    }
}

/// One client for the whole attack, configured like hey's transport.
pub fn build_client(spec: &AttackSpec) -> Result<Client, ClientError> {
    let mut b = Client::builder()
        .user_agent(concat!("serin-loadtest/", env!("CARGO_PKG_VERSION")))
        // hey never verifies certificates (InsecureSkipVerify); test targets use self-signed ones.
        .tls_danger_accept_invalid_certs(true)
        .pool_max_idle_per_host(spec.concurrency.min(10_000) as usize);
    if let Some(t) = spec.timeout {
        b = b.timeout(t);
    }
    if spec.disable_keepalive {
        b = b.pool_max_idle_per_host(0);
    }
    if spec.disable_compression {
        b = b.no_gzip();
    }
    if spec.disable_redirects {
        b = b.redirect(reqwest::redirect::Policy::none());
    }
    let plain = spec.requests.iter().all(|r| r.url.starts_with("http://"));
    b = if spec.http2 {
        if plain { b.http2_prior_knowledge() } else { b }
    } else {
        b.http1_only()
    };
    Ok(b.build()?)
}

/// Sends one request, reads the body, and says how it ended and how long it took from `start`.
pub async fn send(
    rb: RequestBuilder,
    prepared: &Prepared,
    start: Instant,
) -> (std::time::Duration, Outcome) {
    let outcome = match rb.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            match resp.bytes().await {
                Ok(_) => prepared.outcome(status),
                Err(e) => Outcome::Error(error_kind(&e)),
            }
        }
        Err(e) => Outcome::Error(error_kind(&e)),
    };
    (start.elapsed(), outcome)
}

/// A short, stable reason for a failed request (the key of the error distribution).
pub fn error_kind(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection error"
    } else if e.is_redirect() {
        "redirect error"
    } else if e.is_body() || e.is_decode() {
        "error reading the response body"
    } else {
        "request error"
    };
    // The innermost cause says what happened (connection refused, reset…) without the URL noise.
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    format!("{kind}: {source}")
}
