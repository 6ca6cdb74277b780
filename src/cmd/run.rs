use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use serin_api::{Canary, MetricTemplate};
use serin_local::load::LoadCommand;
use serin_local::progress::Reporter;
use serin_local::run::{self, RouterKind, RunOptions, Target};

#[derive(Clone, Copy, clap::ValueEnum)]
enum RouterArg {
    /// serin's own weighted proxy; builtin metrics measured by it.
    Embedded,
    /// A real Traefik (file provider); builtin metrics from Prometheus.
    Traefik,
    /// A real nginx (upstream weights, reloaded); builtin metrics from its access log.
    Nginx,
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("primary-src").required(true).args(["primary", "primary_cmd"])))]
#[command(group(clap::ArgGroup::new("canary-src").required(true).args(["canary", "canary_cmd"])))]
pub struct Args {
    /// Manifests: exactly one Canary, and the MetricTemplates it refers to (repeatable).
    #[arg(short = 'f', long = "file", required = true)]
    files: Vec<PathBuf>,
    /// URL of the running stable version.
    #[arg(long)]
    primary: Option<String>,
    /// Command that starts the stable version; `{port}` is replaced by a free port.
    #[arg(long)]
    primary_cmd: Option<String>,
    /// URL of the running new version.
    #[arg(long)]
    canary: Option<String>,
    /// Command that starts the new version; `{port}` is replaced by a free port.
    #[arg(long)]
    canary_cmd: Option<String>,
    /// Where the router listens; clients and --load send requests here.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Which router splits the traffic.
    #[arg(long, value_enum, default_value = "embedded")]
    router: RouterArg,
    /// Prometheus for MetricTemplates, inline queries and (with --router traefik) the builtin
    /// metrics; without it serin starts its own Prometheus scraping the router when needed.
    #[arg(long, env = "SERIN_METRICS_SERVER")]
    metrics_server: Option<String>,
    /// Load sent through the router by serin's load engine, with hey's flags: 'hey -q 10 -c 2'
    /// (no URL: the router; '/path': a path on the router). Without -n/-z it lasts until the
    /// analysis ends; with them it ends as hey would.
    #[arg(long)]
    load: Option<String>,
    /// Path probed (HTTP GET, any status below 500) to decide that a backend is ready.
    #[arg(long, default_value = "/")]
    ready_path: String,
    /// How long a backend may take to become ready.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    ready_timeout: Duration,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    serin_api::duration::parse(s).map_err(|e| format!("{e} (examples: 10s, 1m)"))
}

fn load_documents(files: &[PathBuf]) -> anyhow::Result<(Canary, Vec<MetricTemplate>)> {
    let mut canaries = Vec::new();
    let mut templates = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("{}: cannot read", file.display()))?;
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text)
            .map_err(|e| anyhow::anyhow!("{}: not valid YAML: {e}", file.display()))?;
        for (i, doc) in docs.into_iter().enumerate() {
            if doc.is_null() {
                continue;
            }
            let kind = doc.get("kind").and_then(|k| k.as_str()).unwrap_or("");
            let at = format!("{}:{}", file.display(), i + 1);
            match kind {
                "Canary" => canaries.push((
                    at.clone(),
                    serde_json::from_value::<Canary>(doc)
                        .map_err(|e| anyhow::anyhow!("{at}: Canary: {e}"))?,
                )),
                "MetricTemplate" => templates.push(
                    serde_json::from_value::<MetricTemplate>(doc)
                        .map_err(|e| anyhow::anyhow!("{at}: MetricTemplate: {e}"))?,
                ),
                other => bail!(
                    "{at}: kind {other:?} is not used by serin run: pass a Canary and MetricTemplates"
                ),
            }
        }
    }
    match canaries.len() {
        0 => bail!(
            "-f: no Canary found in {} file(s): pass the Canary manifest",
            files.len()
        ),
        1 => Ok((canaries.remove(0).1, templates)),
        _ => bail!(
            "-f: {} Canaries found ({}): serin run analyses one at a time",
            canaries.len(),
            canaries
                .iter()
                .map(|c| c.0.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (canary, templates) = load_documents(&args.files)?;
    if canary.spec.analysis().is_none() {
        bail!(
            "spec.analysis: the Canary has no analysis to run (add interval, threshold, stepWeight and metrics)"
        );
    }
    let target = |url: Option<String>, cmd: Option<String>| match (url, cmd) {
        (Some(u), _) => Target::Url(u),
        (None, Some(c)) => Target::Command(c),
        (None, None) => unreachable!("clap requires one of them"),
    };
    let load = args.load.as_deref().map(LoadCommand::parse).transpose()?;
    let serin = std::env::current_exe()
        .context("locating the serin binary, which runs --load's worker process")?;
    let opts = RunOptions {
        name: canary
            .metadata
            .name
            .clone()
            .unwrap_or_else(|| "canary".into()),
        namespace: canary
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        spec: canary.spec.clone(),
        templates,
        primary: target(args.primary, args.primary_cmd),
        canary: target(args.canary, args.canary_cmd),
        listen: args.listen,
        router: match args.router {
            RouterArg::Embedded => RouterKind::Embedded,
            RouterArg::Traefik => RouterKind::Traefik,
            RouterArg::Nginx => RouterKind::Nginx,
        },
        metrics_server: args.metrics_server,
        load,
        serin,
        ready_path: args.ready_path,
        ready_timeout: args.ready_timeout,
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let mut reporter = Reporter::stdout();
        let mut stop = Box::pin(super::demo::interrupted());
        let finished = run::run(
            opts,
            serin_local::default_decider(),
            &mut reporter,
            &mut stop,
        )
        .await?;
        Ok(if finished.promoted {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}
