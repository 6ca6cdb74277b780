//! `serin controller`: the operator.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use serin_controller::{Config, telemetry::Telemetry};

#[derive(clap::Args)]
pub struct Args {
    /// Path to a kubeconfig; in-cluster configuration (or $KUBECONFIG) when absent.
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<std::path::PathBuf>,
    /// Watch one namespace only; all namespaces when absent.
    #[arg(short = 'n', long, env = "SERIN_NAMESPACE")]
    namespace: Option<String>,
    /// Default Prometheus for builtin metrics and inline queries (a Canary's
    /// spec.metricsServer overrides it).
    #[arg(
        long,
        env = "SERIN_METRICS_SERVER",
        default_value = "http://prometheus:9090"
    )]
    metrics_server: String,
    /// Default traffic provider (a Canary's spec.provider overrides it): kubernetes,
    /// gatewayapi[:v1|:v1beta1], istio, linkerd, smi[:v1alpha2|:v1alpha3], osm, nginx, traefik
    /// or contour.
    #[arg(long, env = "SERIN_MESH_PROVIDER", default_value = "kubernetes", value_parser = mesh_provider)]
    mesh_provider: String,
    /// Labels tried in order to find a target's selector label.
    #[arg(
        long,
        env = "SERIN_SELECTOR_LABELS",
        default_value = "app,name,app.kubernetes.io/name",
        value_delimiter = ','
    )]
    selector_labels: Vec<String>,
    /// Cluster name shown in alerts.
    #[arg(long, env = "SERIN_CLUSTER_NAME", default_value = "")]
    cluster_name: String,
    /// Slack incoming-webhook URL for Canaries without analysis.alerts (global notifier).
    #[arg(long, env = "SERIN_SLACK_URL")]
    slack_url: Option<String>,
    /// Channel of the global Slack notifier.
    #[arg(long, env = "SERIN_SLACK_CHANNEL", default_value = "general")]
    slack_channel: String,
    /// User name of the global Slack notifier.
    #[arg(long, env = "SERIN_SLACK_USER", default_value = "flagger")]
    slack_user: String,
    /// MS Teams webhook URL for Canaries without analysis.alerts (global notifier).
    #[arg(long, env = "SERIN_MSTEAMS_URL")]
    msteams_url: Option<String>,
    /// Address of /metrics and /healthz.
    #[arg(long, env = "SERIN_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// Canaries reconciled at once.
    #[arg(long, env = "SERIN_CONCURRENCY", default_value_t = 4)]
    concurrency: u16,
    /// Run only while holding a Lease, so several replicas never act at once.
    #[arg(long, env = "SERIN_LEADER_ELECTION")]
    leader_election: bool,
    /// Namespace of the Lease (the controller's own namespace).
    #[arg(long, env = "SERIN_POD_NAMESPACE", default_value = "default")]
    leader_election_namespace: String,
    /// Name of the Lease.
    #[arg(
        long,
        env = "SERIN_LEADER_ELECTION_ID",
        default_value = "serin-leader-election"
    )]
    leader_election_id: String,
    /// This replica's identity in events and the Lease (the pod name).
    #[arg(long, env = "SERIN_POD_NAME")]
    identity: Option<String>,
    /// Largest answer read from a metric provider, Canary webhook or alert address; a larger one
    /// is an error naming this flag (the addresses are chosen by whoever writes the objects).
    #[arg(long, env = "SERIN_MAX_RESPONSE_BYTES", default_value_t = serin_providers::body::DEFAULT_MAX_RESPONSE_BYTES)]
    max_response_bytes: usize,
    #[command(flatten)]
    log: super::logging::LogArgs,
}

/// `--mesh-provider` is refused at start, with the fix, when serin does not drive it.
fn mesh_provider(name: &str) -> Result<String, String> {
    match serin_api::validate::traffic_provider_problem(name) {
        Some(problem) => Err(problem),
        None if name == "local" => Err("local is serin run's router, not a cluster's".into()),
        None => Ok(name.to_string()),
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    super::logging::init(&args.log)?;
    serin_providers::body::set_max_response_bytes(args.max_response_bytes);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let kube_config = match &args.kubeconfig {
            Some(path) => {
                let kc = kube::config::Kubeconfig::read_from(path)
                    .with_context(|| format!("--kubeconfig {}: cannot read it", path.display()))?;
                kube::Config::from_custom_kubeconfig(kc, &Default::default())
                    .await
                    .with_context(|| format!("--kubeconfig {}: invalid", path.display()))?
            }
            None => kube::Config::infer()
                .await
                .context("no Kubernetes configuration: pass --kubeconfig or run in a cluster")?,
        };
        let client = kube::Client::try_from(kube_config)?;
        let telemetry = Arc::new(Telemetry::new(&args.mesh_provider));
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("--listen {}: cannot bind", args.listen))?;
        tracing::info!(listen = %listener.local_addr()?, "serving /metrics and /healthz");
        let app = serin_controller::telemetry::router(telemetry.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let identity = args
            .identity
            .clone()
            .or_else(|| {
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .ok()
                    .map(|h| h.trim().to_string())
            })
            .unwrap_or_else(|| "serin-controller".into());
        let config = Config {
            namespace: args.namespace,
            mesh_provider: args.mesh_provider,
            metrics_server: args.metrics_server,
            selector_labels: args.selector_labels,
            cluster_name: args.cluster_name,
            instance: identity.clone(),
            concurrency: args.concurrency,
            slack_url: args.slack_url.filter(|u| !u.is_empty()),
            msteams_url: args.msteams_url.filter(|u| !u.is_empty()),
            slack_channel: args.slack_channel,
            slack_user: args.slack_user,
        };
        let shutdown = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        };
        if !args.leader_election {
            serin_controller::run(client, config, telemetry, shutdown).await?;
            return Ok(ExitCode::SUCCESS);
        }
        let lease = serin_controller::lease::LeaseConfig::new(
            &args.leader_election_namespace,
            &args.leader_election_id,
            &identity,
        );
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let mut stopped = false;
        let lead = async {
            let _ = serin_controller::run(client.clone(), config, telemetry, async {
                let _ = stop_rx.await;
            })
            .await;
        };
        tokio::select! {
            _ = serin_controller::lease::run_while_leading(client.clone(), lease, lead) => {}
            _ = shutdown => { stopped = true; let _ = stop_tx.send(()); }
        }
        if stopped {
            return Ok(ExitCode::SUCCESS);
        }
        // Like client-go: a replica that lost its Lease exits and is restarted as a follower.
        anyhow::bail!("lost the leader election lease {}", args.leader_election_id)
    })
}
