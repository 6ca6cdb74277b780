//! The Kubernetes client of `serin webhook`: from `--kubeconfig` or the usual inference
//! (in-cluster service account, then `$KUBECONFIG`/`~/.kube/config`).

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read kubeconfig {path}: {source}")]
    Kubeconfig {
        path: String,
        source: kube::config::KubeconfigError,
    },
    #[error(
        "no Kubernetes configuration found ({0}); pass --kubeconfig, run in a cluster, or pass --standalone to serve without the Kubernetes API"
    )]
    Infer(kube::config::InferConfigError),
    #[error("cannot build the Kubernetes client: {0}")]
    Client(kube::Error),
}

/// A client for `kubeconfig` when given, else for the inferred configuration.
pub async fn client(kubeconfig: Option<&Path>) -> Result<kube::Client, ClientError> {
    let config = match kubeconfig {
        Some(path) => {
            let fail = |source| ClientError::Kubeconfig {
                path: path.display().to_string(),
                source,
            };
            let file = kube::config::Kubeconfig::read_from(path).map_err(fail)?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(fail)?
        }
        None => kube::Config::infer().await.map_err(ClientError::Infer)?,
    };
    kube::Client::try_from(config).map_err(ClientError::Client)
}
