//! `serin loadtester`: the load-test service speaking Flagger's loadtester API.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use serin_loadtester::service::{self, Config, DEFAULT_BODY_LIMIT, Regex, Service};

#[derive(clap::Args)]
pub struct Args {
    /// Port to listen on (all interfaces).
    #[arg(long, default_value_t = 8080, env = "SERIN_LOADTESTER_PORT")]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0", env = "SERIN_LOADTESTER_ADDRESS")]
    address: String,
    /// Only run tasks whose payload namespace matches this regular expression (403 otherwise).
    #[arg(long, env = "SERIN_LOADTESTER_NAMESPACE_REGEXP")]
    namespace_regexp: Option<String>,
    /// Run `bash` tasks and `cmd` tasks that are not hey, through a shell. Off by default:
    /// anyone who can reach the service could run commands.
    #[arg(long, env = "SERIN_LOADTESTER_ALLOW_SHELL")]
    allow_shell: bool,
    /// Run `helm`/`helmv3` tasks (`helm test` only, without a shell) when a helm binary is on
    /// PATH. Off by default: the tests run with the loadtester's service account.
    #[arg(long, env = "SERIN_LOADTESTER_ALLOW_HELM")]
    allow_helm: bool,
    /// Longest run of one task (Go duration); it is killed after that.
    #[arg(long, default_value = "1h", env = "SERIN_LOADTESTER_TIMEOUT")]
    timeout: String,
    #[command(flatten)]
    log: super::logging::LogArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    super::logging::init(&args.log)?;
    let timeout: Duration = serin_api::duration::parse(&args.timeout).map_err(|e| {
        anyhow::anyhow!(
            "--timeout: expected a duration like 1h or 30m, got '{}' ({e})",
            args.timeout
        )
    })?;
    if timeout.is_zero() {
        anyhow::bail!("--timeout: must be greater than 0");
    }
    let namespace_regexp =
        match &args.namespace_regexp {
            Some(re) if !re.is_empty() => Some(Regex::new(re).map_err(|e| {
                anyhow::anyhow!("--namespace-regexp: not a regular expression: {e}")
            })?),
            _ => None,
        };
    let worker_exe = std::env::current_exe()
        .context("cannot find the serin executable to run load-test workers")?;
    let svc = Service::new(Config {
        namespace_regexp,
        allow_shell: args.allow_shell,
        allow_helm: args.allow_helm,
        timeout,
        worker_exe,
        body_limit: DEFAULT_BODY_LIMIT,
    });
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let addr = format!("{}:{}", args.address, args.port);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("--port: cannot listen on {addr}"))?;
        tracing::info!(address = %listener.local_addr()?, allow_shell = args.allow_shell, allow_helm = args.allow_helm, "serin loadtester listening");
        let token = svc.shutdown_token();
        tokio::spawn(async move {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            tracing::info!("shutting down: running load tests are stopped");
            token.cancel();
        });
        service::serve(listener, svc).await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
