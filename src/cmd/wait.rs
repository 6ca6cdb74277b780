//! `serin wait NAME --for promoted|failed --timeout 10m`: blocks a pipeline until the current
//! revision of a Canary is promoted or has failed (Flagger #830). Exit 0 when the condition is
//! reached, 1 when the other outcome happens or the timeout passes.
//!
//! "Current" matters: right after `kubectl apply`, the Canary still shows the previous
//! rollout's `Succeeded`. So the target workload's pod-template hash is compared with the
//! status: promoted means `lastPromotedSpec` is that hash; failed means the analysis of that
//! hash failed.

use std::process::ExitCode;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::watcher;
use serin_api::{Canary, Phase};

use super::canary_ops::Target;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Outcome {
    Promoted,
    Failed,
}

#[derive(clap::Args)]
pub struct Args {
    /// The Canary's name.
    name: String,
    /// The outcome to wait for.
    #[arg(long = "for", value_enum)]
    for_: Outcome,
    /// Give up after this long (Go duration: 90s, 10m, 1h).
    #[arg(long, default_value = "10m", value_parser = parse_timeout)]
    timeout: Duration,
    #[command(flatten)]
    target: Target,
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    serin_api::duration::parse(s)
        .map_err(|e| format!("{e}: write a duration such as 90s, 10m or 1h"))
}

/// Where the current revision stands.
#[derive(Debug, PartialEq, Eq)]
pub enum State {
    Promoted,
    Failed(String),
    Pending(String),
}

/// Reads the state of revision `revision` (the target's template hash; `None` when the target
/// could not be read, then the phase alone decides).
pub fn state(canary: &Canary, revision: Option<&str>) -> State {
    let st = canary.status.clone().unwrap_or_default();
    let phase = st.phase;
    let phase_text = phase.map(|p| p.as_str()).unwrap_or("not started");
    let current = |spec: &Option<String>| match revision {
        Some(r) => spec.as_deref() == Some(r),
        None => true,
    };
    match phase {
        Some(Phase::Succeeded | Phase::Initialized) if current(&st.last_promoted_spec) => {
            State::Promoted
        }
        Some(Phase::Failed) if current(&st.last_applied_spec) => State::Failed(
            st.message
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| "analysis failed, rolled back".into()),
        ),
        _ => State::Pending(format!(
            "{phase_text}, weight {}%, failed checks {}",
            st.canary_weight, st.failed_checks
        )),
    }
}

pub(crate) async fn revision(client: &kube::Client, ns: &str, canary: &Canary) -> Option<String> {
    let r = &canary.spec.target_ref;
    let (group, version) = match r
        .api_version
        .as_deref()
        .unwrap_or("apps/v1")
        .split_once('/')
    {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), r.api_version.clone().unwrap_or_default()),
    };
    let kind = r.kind.clone().unwrap_or_else(|| "Deployment".into());
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(&group, &version, &kind));
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
    let obj = api.get_opt(&r.name).await.ok()??;
    let value = serde_json::to_value(&obj).ok()?;
    Some(serin_api::hash::workload_template_hash(&value))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let (client, ns) = args.target.connect().await?;
        let api: Api<Canary> = Api::namespaced(client.clone(), &ns);
        let who = format!("canary {ns}/{}", args.name);
        let mut found = false;
        let outcome = tokio::time::timeout(args.timeout, async {
            let config = watcher::Config::default().fields(&format!("metadata.name={}", args.name));
            let mut stream = watcher(api, config).boxed();
            let mut last = String::new();
            while let Some(event) = stream.next().await {
                let canary = match event {
                    Ok(watcher::Event::Apply(c) | watcher::Event::InitApply(c)) => {
                        found = true;
                        c
                    }
                    Ok(_) => continue,
                    Err(e) => {
                        eprintln!("serin: watch: {e} (retrying)");
                        continue;
                    }
                };
                let rev = revision(&client, &ns, &canary).await;
                match state(&canary, rev.as_deref()) {
                    State::Pending(now) => {
                        if now != last {
                            eprintln!("{who}: {now}");
                            last = now;
                        }
                    }
                    done => return done,
                }
            }
            State::Pending("the watch ended".into())
        })
        .await;
        let timeout = serin_api::duration::format(args.timeout);
        let wanted = match args.for_ {
            Outcome::Promoted => "promoted",
            Outcome::Failed => "failed",
        };
        let (reached, text) = match outcome {
            Ok(State::Promoted) => (args.for_ == Outcome::Promoted, format!("{who} promoted")),
            Ok(State::Failed(why)) => {
                (args.for_ == Outcome::Failed, format!("{who} failed: {why}"))
            }
            Ok(State::Pending(why)) => (false, format!("{who}: {why}")),
            Err(_) if !found => (
                false,
                format!("{who} not found after {timeout} (check the name and -n NAMESPACE)"),
            ),
            Err(_) => (
                false,
                format!("{who}: not {wanted} after {timeout} (--timeout)"),
            ),
        };
        if reached {
            println!("{text}");
            Ok(ExitCode::SUCCESS)
        } else {
            eprintln!("serin: {text}");
            Ok(ExitCode::from(1))
        }
    })
}
