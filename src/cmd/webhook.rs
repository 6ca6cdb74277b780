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
    /// Threads answering reviews (default: one per core). Each serves the connections handed to
    /// it from handshake to close; accepting, the Canary watch and certificate reloads run on
    /// one more thread of their own.
    #[arg(long, env = "SERIN_WORKER_THREADS", value_parser = clap::value_parser!(u16).range(1..))]
    worker_threads: Option<u16>,
    /// Log level (error, warn, info, debug, trace) or a tracing filter.
    #[arg(long, env = "SERIN_LOG_LEVEL", default_value = "info")]
    log_level: String,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    serin_api::duration::parse(text).map_err(|e| e.to_string())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level).with_context(|| {
        format!(
            "--log-level {:?}: use error, warn, info, debug or trace",
            args.log_level
        )
    })?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    if args.tls_cert_file.is_none() && !args.self_signed {
        bail!(
            "no serving certificate: pass --tls-cert-file and --tls-key-file, or --self-signed --service NAME.NAMESPACE"
        );
    }
    tokio::runtime::Builder::new_current_thread()
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

    let threads = args.worker_threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, usize::from),
        usize::from,
    );
    let addr = SocketAddr::new(args.address, args.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (--address/--port)"))?;
    let app = serin_webhook::router(AppState::new(index));
    eprintln!(
        "serin webhook: serving https://{} (/mutate, /validate, /healthz, /readyz, /metrics)",
        listener.local_addr()?
    );
    tokio::select! {
        result = serin_webhook::serve_tls(listener, cert.server_config()?, app, threads) => {
            result.context("serving failed")?;
        }
        _ = tokio::signal::ctrl_c() => eprintln!("serin webhook: interrupted, stopping"),
        _ = terminate() => eprintln!("serin webhook: terminated, stopping"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn terminate() {
    #[cfg(unix)]
    {
        if let Ok(mut signal) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            signal.recv().await;
            return;
        }
    }
    std::future::pending::<()>().await
}
