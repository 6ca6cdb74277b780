//! Alert targets of an AlertProvider: slack, msteams, discord, rocket, gchat and serin's generic
//! JSON `webhook`. Each builds its service's payload from one [`Alert`] and POSTs it.
//!
//! Which alerts a provider receives (its severity) is decided by the engine; a notifier sends
//! what it is given.

mod gchat;
mod msteams;
mod slack;
mod webhook;

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use serin_api::alert::AlertProviderSpec;

use crate::metric::{SecretData, error_chain, secret_text};

/// How bad the news is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warn,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warn => "warn",
            Severity::Error => "error",
        }
    }
}

/// One message about one Canary.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Alert {
    pub name: String,
    pub namespace: String,
    pub cluster: String,
    pub severity: Severity,
    pub message: String,
    /// The engine's reason code, e.g. `RollbackThreshold`.
    pub reason: String,
    /// One line per check behind the decision (failed metrics and webhooks).
    pub checks: Vec<String>,
    pub revision: String,
    pub images: Vec<String>,
}

impl Alert {
    /// `name.namespace`, the title every chat payload uses (as Flagger's).
    pub fn title(&self) -> String {
        format!("{}.{}", self.name, self.namespace)
    }

    /// Label/value pairs shown under the message.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if !self.cluster.is_empty() {
            out.push(("Cluster", self.cluster.clone()));
        }
        out.push(("Reason", self.reason.clone()));
        if !self.checks.is_empty() {
            out.push(("Checks", self.checks.join("\n")));
        }
        if !self.revision.is_empty() {
            out.push(("Revision", self.revision.clone()));
        }
        if !self.images.is_empty() {
            out.push(("Images", self.images.join(", ")));
        }
        out
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error(
        "alert provider type {0:?} is not supported: use slack, msteams, discord, rocket, gchat or webhook"
    )]
    UnknownType(String),
    #[error(
        "alert provider has no address: set spec.address or the `address` key of its secretRef"
    )]
    MissingAddress,
    #[error("alert provider address {0:?} is not an http(s) URL")]
    BadAddress(String),
    #[error("alert provider proxy {0:?} is not a valid proxy URL: {1}")]
    BadProxy(String, String),
    #[error("cannot build HTTP client: {0}")]
    Client(String),
    #[error("{kind} {address} unreachable: {message}")]
    Unreachable {
        kind: &'static str,
        address: String,
        message: String,
    },
    #[error("{kind} answered HTTP {status}: {body}")]
    Status {
        kind: &'static str,
        status: u16,
        body: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Slack,
    MsTeams,
    Discord,
    Rocket,
    GChat,
    Webhook,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "slack" => Kind::Slack,
            "msteams" => Kind::MsTeams,
            "discord" => Kind::Discord,
            "rocket" => Kind::Rocket,
            "gchat" => Kind::GChat,
            "webhook" => Kind::Webhook,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Slack => "slack",
            Kind::MsTeams => "msteams",
            Kind::Discord => "discord",
            Kind::Rocket => "rocket",
            Kind::GChat => "gchat",
            Kind::Webhook => "webhook",
        }
    }
}

/// Flagger's notifier timeout.
const TIMEOUT: Duration = Duration::from_secs(15);

/// A configured alert target.
#[derive(Clone, Debug)]
pub struct Notifier {
    kind: Kind,
    address: String,
    channel: String,
    username: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Notifier {
    pub fn new(
        kind: Kind,
        address: &str,
        channel: &str,
        username: &str,
        proxy: Option<&str>,
        token: Option<String>,
    ) -> Result<Self, AlertError> {
        let mut address = address.trim().to_string();
        if address.is_empty() {
            return Err(AlertError::MissingAddress);
        }
        match url::Url::parse(&address) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => return Err(AlertError::BadAddress(address)),
        }
        // Discord takes Slack's payload on its `/slack` endpoint.
        if kind == Kind::Discord && !address.trim_end_matches('/').ends_with("/slack") {
            address = format!("{}/slack", address.trim_end_matches('/'));
        }
        let mut builder = reqwest::Client::builder().timeout(TIMEOUT);
        if let Some(p) = proxy.filter(|p| !p.is_empty()) {
            let proxy = reqwest::Proxy::all(p)
                .map_err(|e| AlertError::BadProxy(p.into(), e.to_string()))?;
            builder = builder.proxy(proxy);
        }
        let http = builder
            .build()
            .map_err(|e| AlertError::Client(e.to_string()))?;
        Ok(Notifier {
            kind,
            address,
            channel: channel.to_string(),
            username: username.to_string(),
            token,
            http,
        })
    }

    /// From an AlertProvider and its Secret (keys `address`, which wins over `spec.address`,
    /// and optional `token`).
    pub fn from_spec(spec: &AlertProviderSpec, secret: &SecretData) -> Result<Self, AlertError> {
        let kind =
            Kind::parse(&spec.type_).ok_or_else(|| AlertError::UnknownType(spec.type_.clone()))?;
        let address = secret_text(secret, "address")
            .or_else(|| spec.address.clone())
            .unwrap_or_default();
        Notifier::new(
            kind,
            &address,
            spec.channel(),
            spec.username(),
            spec.proxy.as_deref(),
            secret_text(secret, "token"),
        )
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// The JSON body this target receives for `alert`.
    pub fn payload(&self, alert: &Alert) -> Value {
        match self.kind {
            Kind::Slack | Kind::Discord | Kind::Rocket => {
                slack::payload(alert, &self.channel, &self.username)
            }
            Kind::MsTeams => msteams::payload(alert),
            Kind::GChat => gchat::payload(alert),
            Kind::Webhook => webhook::payload(alert),
        }
    }

    pub async fn send(&self, alert: &Alert) -> Result<(), AlertError> {
        let mut req = self.http.post(&self.address).json(&self.payload(alert));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| AlertError::Unreachable {
            kind: self.kind.as_str(),
            address: self.address.clone(),
            message: error_chain(&e),
        })?;
        let status = resp.status();
        if !status.is_success() {
            let body = crate::body::read_text(resp)
                .await
                .unwrap_or_else(|e| e.to_string());
            return Err(AlertError::Status {
                kind: self.kind.as_str(),
                status: status.as_u16(),
                body: body.chars().take(300).collect(),
            });
        }
        Ok(())
    }
}
