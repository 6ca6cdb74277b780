//! The controller's errors.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("canary {0} has no namespace")]
    NoNamespace(String),
    #[error("target {kind}/{name} of canary {canary}: {message}")]
    Target {
        canary: String,
        kind: String,
        name: String,
        message: String,
    },
    #[error("router {provider}: {message}")]
    Router { provider: String, message: String },
    #[error("serialising: {0}")]
    Json(#[from] serde_json::Error),
}
