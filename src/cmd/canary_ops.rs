//! `serin promote|abort|retry|approve|halt NAME`: commands to the controller written as
//! annotations on the Canary, so each one is recorded on the object (and in the API server's
//! audit log) like any other change.
//!
//! Promote, abort and approve are bound to the revision they are meant for: the target's
//! pod-template hash when the command runs (`<time>@<revision>`, `approved@<revision>`). The
//! engine acts on each token once, and ignores, with an event, one meant for another revision
//! (serin_analysis::commands). Halt is deliberately unbound: it holds whatever runs until
//! `serin approve` or the annotation is removed.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use serin_analysis::commands;
use serin_api::Canary;
use serin_api::labels::{ABORT_ANNOTATION, GATE_ANNOTATION, PROMOTE_ANNOTATION, RETRY_ANNOTATION};

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
    /// The annotation written and its value: `now` makes each request a new value, `revision`
    /// (the target's template hash, when readable) binds it to the release it is meant for.
    pub fn annotation(self, now: &str, revision: Option<&str>) -> (&'static str, String) {
        match self {
            Op::Promote => (PROMOTE_ANNOTATION, commands::token(now, revision)),
            Op::Abort => (ABORT_ANNOTATION, commands::token(now, revision)),
            Op::Retry => (RETRY_ANNOTATION, now.to_string()),
            Op::Approve => (GATE_ANNOTATION, commands::approval(revision)),
            Op::Halt => (GATE_ANNOTATION, commands::HALTED.to_string()),
        }
    }

    /// Whether the value carries the revision.
    fn bound(self) -> bool {
        matches!(self, Op::Promote | Op::Abort | Op::Approve)
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
        let api: Api<Canary> = Api::namespaced(client.clone(), &ns);
        let Some(canary) = api.get_opt(&args.name).await? else {
            eprintln!(
                "serin: Canary {ns}/{} not found (check the name and -n NAMESPACE)",
                args.name
            );
            return Ok(ExitCode::from(1));
        };
        let revision = if op.bound() {
            let r = super::wait::revision(&client, &ns, &canary).await;
            if r.is_none() {
                eprintln!(
                    "serin: cannot read target {} of {ns}/{}: the request is not bound to a revision and applies to whatever runs when the controller reads it",
                    canary.spec.target_ref.name, args.name
                );
            }
            r
        } else {
            None
        };
        let now = jiff::Timestamp::now().to_string();
        let (key, value) = op.annotation(&now, revision.as_deref());
        let patch = json!({"metadata": {"annotations": {key: value}}});
        api.patch(&args.name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .with_context(|| format!("annotating Canary {ns}/{}", args.name))?;
        println!("canary {ns}/{}: {} ({key}={value})", args.name, op.done());
        Ok(ExitCode::SUCCESS)
    })
}
