//! `serin promote|abort|retry|approve|halt NAME`: requests to the controller written as
//! annotations on the Canary, so each one is recorded on the object (and in the API server's
//! audit log) like any other change.
//!
//! The controller acts on `serin.dev/retry` today. `serin.dev/promote`, `serin.dev/abort` and
//! `serin.dev/gate` are written for the controller to act on; until the engine reads them they
//! have no effect (README, "Operating canaries").

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use serin_api::Canary;
use serin_api::labels::RETRY_ANNOTATION;

/// Annotation asking to skip the remaining analysis and promote the current revision.
pub const PROMOTE_ANNOTATION: &str = "serin.dev/promote";
/// Annotation asking to stop the analysis and roll back now.
pub const ABORT_ANNOTATION: &str = "serin.dev/abort";
/// Annotation opening (`approved`) or closing (`halted`) the Canary's manual gates.
pub const GATE_ANNOTATION: &str = "serin.dev/gate";

/// Where the Canaries are: the kubeconfig and namespace flags shared by the CLI commands.
#[derive(clap::Args, Clone, Debug)]
pub struct Target {
    /// Path to a kubeconfig; $KUBECONFIG, ~/.kube/config or in-cluster configuration when absent.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Namespace; the kubeconfig context's namespace (or `default`) when absent.
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
}

impl Target {
    /// A client and the namespace to use.
    pub async fn connect(&self) -> anyhow::Result<(kube::Client, String)> {
        let config = match &self.kubeconfig {
            Some(path) => {
                let kc = kube::config::Kubeconfig::read_from(path)
                    .with_context(|| format!("--kubeconfig {}: cannot read it", path.display()))?;
                kube::Config::from_custom_kubeconfig(kc, &Default::default())
                    .await
                    .with_context(|| format!("--kubeconfig {}: invalid", path.display()))?
            }
            None => kube::Config::infer().await.context(
                "no Kubernetes configuration: pass --kubeconfig, set KUBECONFIG or run in a cluster",
            )?,
        };
        let namespace = self
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        Ok((kube::Client::try_from(config)?, namespace))
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// The Canary's name.
    name: String,
    #[command(flatten)]
    target: Target,
}

#[derive(Clone, Copy, Debug)]
pub enum Op {
    Promote,
    Abort,
    Retry,
    Approve,
    Halt,
}

impl Op {
    /// The annotation written and its value (`now` makes each request a new value).
    fn annotation(self, now: &str) -> (&'static str, String) {
        match self {
            Op::Promote => (PROMOTE_ANNOTATION, now.to_string()),
            Op::Abort => (ABORT_ANNOTATION, now.to_string()),
            Op::Retry => (RETRY_ANNOTATION, now.to_string()),
            Op::Approve => (GATE_ANNOTATION, "approved".to_string()),
            Op::Halt => (GATE_ANNOTATION, "halted".to_string()),
        }
    }

    fn done(self) -> &'static str {
        match self {
            Op::Promote => "promotion requested",
            Op::Abort => "abort requested",
            Op::Retry => "retry requested",
            Op::Approve => "gates approved",
            Op::Halt => "gates halted",
        }
    }
}

pub fn run(op: Op, args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let (client, ns) = args.target.connect().await?;
        let api: Api<Canary> = Api::namespaced(client, &ns);
        if api.get_opt(&args.name).await?.is_none() {
            eprintln!(
                "serin: Canary {ns}/{} not found (check the name and -n NAMESPACE)",
                args.name
            );
            return Ok(ExitCode::from(1));
        }
        let now = jiff::Timestamp::now().to_string();
        let (key, value) = op.annotation(&now);
        let patch = json!({"metadata": {"annotations": {key: value}}});
        api.patch(&args.name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .with_context(|| format!("annotating Canary {ns}/{}", args.name))?;
        println!("canary {ns}/{}: {} ({key}={value})", args.name, op.done());
        Ok(ExitCode::SUCCESS)
    })
}
