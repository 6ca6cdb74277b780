//! `serin webhook`: the admission server (hold on Deployments, validation of flagger.app objects).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serin_webhook::{AppState, CanaryIndex, KubeCanaryIndex, MemoryCanaryIndex, ReloadingCert};

#[derive(clap::Args)]
pub struct Args {
    /// PEM certificate (chain) to serve; reloaded when the file changes.
    #[arg(long, env = "SERIN_TLS_CERT_FILE", requires = "tls_key_file")]
    tls_cert_file: Option<PathBuf>,
    /// PEM private key of --tls-cert-file; reloaded when the file changes.
    #[arg(long, env = "SERIN_TLS_KEY_FILE", requires = "tls_cert_file")]
    tls_key_file: Option<PathBuf>,
    /// Make a CA and a serving certificate at start and write the CA into the caBundle of the
    /// webhook configurations (no cert-manager needed).
    #[arg(long, conflicts_with_all = ["tls_cert_file", "tls_key_file"], requires = "service")]
    self_signed: bool,
    /// The webhook's Service as NAME.NAMESPACE: the names the serving certificate is made for.
    #[arg(long, env = "SERIN_SERVICE", value_name = "NAME.NAMESPACE")]
    service: Option<String>,
    /// Name of the Mutating- and ValidatingWebhookConfiguration whose caBundle --self-signed sets.
    #[arg(long, env = "SERIN_WEBHOOK_CONFIG_NAME", default_value = "serin")]
    webhook_config_name: String,
    /// HTTPS port.
    #[arg(long, env = "SERIN_PORT", default_value_t = 8443)]
    port: u16,
    /// Address to listen on.
    #[arg(long, env = "SERIN_ADDRESS", default_value = "0.0.0.0")]
    address: IpAddr,
    /// Kubeconfig file (default: in-cluster, then $KUBECONFIG or ~/.kube/config).
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Watch Canaries only in this namespace (namespaced installs).
    #[arg(short = 'n', long, env = "SERIN_NAMESPACE")]
    namespace: Option<String>,
    /// Serve without the Kubernetes API: no check that a workload has one Canary, no caBundle
    /// patch. For local use and benchmarks.
    #[arg(long, conflicts_with = "self_signed")]
    standalone: bool,
    /// How often the certificate files are checked for changes.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    cert_check_interval: Duration,
    /// Threads of the async runtime (default: one per core).
    #[arg(long, env = "SERIN_WORKER_THREADS", value_parser = clap::value_parser!(u16).range(1..))]
    worker_threads: Option<u16>,
    /// Connections served at once; more wait in the listen backlog until one closes. Keep it
    /// below the file descriptor limit (ulimit -n).
    #[arg(long, env = "SERIN_MAX_CONNECTIONS", default_value_t = 128,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    max_connections: u32,
    /// A client must finish the TLS handshake within this.
    #[arg(long, env = "SERIN_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = parse_timeout)]
    handshake_timeout: Duration,
    /// An HTTP/1.1 request's headers must arrive within this of their first byte.
    #[arg(long, env = "SERIN_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_timeout)]
    header_timeout: Duration,
    /// A request's body must arrive within this of its headers (408 otherwise).
    #[arg(long, env = "SERIN_BODY_TIMEOUT", default_value = "10s", value_parser = parse_timeout)]
    body_timeout: Duration,
    /// A connection with no request in progress for this long is closed.
    #[arg(long, env = "SERIN_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_timeout)]
    idle_timeout: Duration,
    /// Largest request body in bytes (413 beyond it); the API server's object limit is 3 MiB.
    #[arg(long, env = "SERIN_MAX_BODY_BYTES", default_value_t = serin_webhook::MAX_BODY_BYTES as u64,
          value_parser = clap::value_parser!(u64).range(1024..=1 << 30))]
    max_body_bytes: u64,
    /// Request body bytes held by all connections together (503 beyond it); bounds the memory
    /// of many clients each sending part of a large body. At least --max-body-bytes.
    #[arg(long, env = "SERIN_MAX_BUFFERED_BYTES", default_value_t = 32 << 20,
          value_parser = clap::value_parser!(u64).range(1024..=1 << 34))]
    max_buffered_bytes: u64,
    /// On SIGTERM, how long open connections get to finish their requests.
    #[arg(long, env = "SERIN_DRAIN_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    drain_timeout: Duration,
    #[command(flatten)]
    log: super::logging::LogArgs,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    serin_api::duration::parse(text).map_err(|e| e.to_string())
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        Duration::ZERO => Err("a timeout must be longer than 0s".into()),
        timeout => Ok(timeout),
    }
}

impl Args {
    fn limits(&self) -> serin_webhook::Limits {
        serin_webhook::Limits {
            max_connections: self.max_connections as usize,
            handshake_timeout: self.handshake_timeout,
            header_timeout: self.header_timeout,
            body_timeout: self.body_timeout,
            idle_timeout: self.idle_timeout,
            // At most 1 GiB (the flag's range), so it fits any usize serin builds for.
            max_body_bytes: usize::try_from(self.max_body_bytes).unwrap_or(usize::MAX),
            max_buffered_bytes: usize::try_from(self.max_buffered_bytes).unwrap_or(usize::MAX),
            drain_timeout: self.drain_timeout,
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    super::logging::init(&args.log)?;
    if args.max_buffered_bytes < args.max_body_bytes {
        bail!(
            "--max-buffered-bytes {} is below --max-body-bytes {}: a body of the largest size could never be read",
            args.max_buffered_bytes,
            args.max_body_bytes
        );
    }
    if args.tls_cert_file.is_none() && !args.self_signed {
        bail!(
            "no serving certificate: pass --tls-cert-file and --tls-key-file, or --self-signed --service NAME.NAMESPACE"
        );
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.worker_threads {
        runtime.worker_threads(usize::from(threads));
    }
    runtime
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<ExitCode> {
    let client = if args.standalone {
        None
    } else {
        Some(serin_webhook::cluster::client(args.kubeconfig.as_deref()).await?)
    };

    let cert = match (&args.tls_cert_file, &args.tls_key_file) {
        (Some(cert_file), Some(key_file)) => {
            let cert = ReloadingCert::from_files(cert_file, key_file)?;
            tokio::spawn(cert.clone().watch(args.cert_check_interval));
            cert
        }
        _ => {
            let service = args.service.as_deref().unwrap_or_default();
            let Some((name, namespace)) = service
                .split_once('.')
                .filter(|(n, ns)| !n.is_empty() && !ns.is_empty() && !ns.contains('.'))
            else {
                bail!("--service {service:?}: expected NAME.NAMESPACE, e.g. serin-webhook.serin");
            };
            let made = serin_webhook::selfsigned::generate(serin_webhook::selfsigned::dns_names(
                name, namespace,
            ))?;
            if let Some(client) = &client {
                let report = serin_webhook::selfsigned::patch_ca_bundle(
                    client.clone(),
                    &args.webhook_config_name,
                    &made.ca_pem,
                )
                .await?;
                tracing::info!(
                    config = %args.webhook_config_name,
                    mutating_webhooks = ?report.mutating,
                    validating_webhooks = ?report.validating,
                    "caBundle set"
                );
            }
            ReloadingCert::from_pem(&made.cert_pem, &made.key_pem)?
        }
    };

    let index: Arc<dyn CanaryIndex> = match client {
        Some(client) => {
            let (index, drive) = KubeCanaryIndex::watch(client, args.namespace.as_deref());
            tokio::spawn(drive);
            index
        }
        None => {
            tracing::warn!("--standalone: a second Canary on one workload is not detected");
            Arc::new(MemoryCanaryIndex::new())
        }
    };

    let addr = SocketAddr::new(args.address, args.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (--address/--port)"))?;
    let state = AppState::with_limits(index, args.limits());
    eprintln!(
        "serin webhook: serving https://{} (/mutate, /validate, /healthz, /readyz, /metrics)",
        listener.local_addr()?
    );
    // Installed before serving, so a signal sent as soon as the address is announced is caught.
    let stop = stop_signal()?;
    let drain = args.drain_timeout;
    let stop = async move {
        let signal = stop.await;
        eprintln!("serin webhook: {signal}, draining connections (up to {drain:?})");
    };
    serin_webhook::serve_tls(listener, cert.server_config()?, state, stop)
        .await
        .context("serving failed")?;
    eprintln!("serin webhook: stopped");
    Ok(ExitCode::SUCCESS)
}

/// Completes with the name of the signal on SIGINT or SIGTERM.
fn stop_signal() -> anyhow::Result<impl std::future::Future<Output = &'static str>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
        let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => "interrupted",
                _ = terminate.recv() => "terminated",
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            "interrupted"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn flag_defaults_are_the_library_defaults() {
        let cli = Cli::try_parse_from(["webhook"]).unwrap();
        assert_eq!(cli.args.limits(), serin_webhook::Limits::default());
    }
}
