//! `serin demo`: two releases in a row on the embedded router with generated load — a healthy
//! v2 promoted, then a faulty v3 rolled back — with the demo app (this very binary) as the
//! primary and the canaries.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serin_api::CanarySpec;

use crate::load::{self, LoadCommand, LoadEnd, LoadRun};
use crate::process::{ProcessError, Service};
use crate::progress::Reporter;
use crate::router::{AnyRouter, EmbeddedRouter, RouterError};
use crate::session::Decider;
use crate::session::{Finished, Release, Session, SessionError};

/// The demo's knobs.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// The `serin` binary, started as `serin demo-app`.
    pub serin: PathBuf,
    pub listen: SocketAddr,
    pub interval: Duration,
    /// Faults of the second canary (v3).
    pub canary_error_rate: f64,
    pub canary_latency: Duration,
    /// Requests per second sent through the router.
    pub rps: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(transparent)]
    Router(#[from] RouterError),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("--canary-error-rate must be between 0 and 1, got {0}")]
    ErrorRate(f64),
    #[error("the demo's load: {0}")]
    Load(String),
    #[error("demo canary: {0}")]
    Spec(String),
}

/// The Canary the demo analyses (shown in the README): 10% steps to 50%, two failed checks
/// roll back, the builtin metrics measured by the embedded router.
pub fn demo_canary(interval: Duration) -> Result<CanarySpec, DemoError> {
    let interval = serin_api::duration::format(interval);
    let spec = serde_json::json!({
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
        "service": {"port": 9898},
        "analysis": {
            "interval": interval,
            "threshold": 2,
            "maxWeight": 50,
            "stepWeight": 10,
            "metrics": [
                {"name": "request-success-rate", "interval": "10s", "thresholdRange": {"min": 99}},
                {"name": "request-duration", "interval": "10s", "thresholdRange": {"max": 500}}
            ]
        }
    });
    serde_json::from_value(spec).map_err(|e| DemoError::Spec(e.to_string()))
}

async fn demo_app(
    serin: &std::path::Path,
    version: &str,
    error_rate: f64,
    latency: Duration,
) -> Result<Service, ProcessError> {
    let port = crate::process::free_port()?;
    let args: Vec<String> = vec![
        "demo-app".into(),
        "--port".into(),
        port.to_string(),
        "--version".into(),
        version.into(),
        "--error-rate".into(),
        error_rate.to_string(),
        "--latency".into(),
        serin_api::duration::format(latency),
    ];
    let mut s = Service::spawn_argv(
        "demo",
        &format!("demo app {version}"),
        &serin.to_string_lossy(),
        &args,
        port,
    )?;
    s.ready("/readyz", Duration::from_secs(20)).await?;
    Ok(s)
}

/// Runs the demo; returns the two outcomes (v2, v3).
pub async fn run(
    opts: &DemoOptions,
    decider: Decider,
    reporter: &mut Reporter,
    stop: &mut (impl Future<Output = ()> + Unpin),
) -> Result<(Finished, Finished), DemoError> {
    if !(0.0..=1.0).contains(&opts.canary_error_rate) {
        return Err(DemoError::ErrorRate(opts.canary_error_rate));
    }
    let spec = demo_canary(opts.interval)?;
    let v1 = demo_app(&opts.serin, "v1", 0.0, Duration::ZERO).await?;
    let router = EmbeddedRouter::start(opts.listen, &v1.url, &v1.url).await?;
    let mut session = Session {
        router: AnyRouter::Embedded(router),
        prometheus: None,
        decider,
        max_ticks: 1000,
    };
    // The same engine as `serin run --load` (a `serin loadtest-worker` child): hey's closed
    // model, four workers sharing the requested rate.
    let workers = 4u32;
    let load = LoadCommand::parse(&format!(
        "hey -c {workers} -q {}",
        (f64::from(opts.rps) / f64::from(workers)).max(0.1)
    ))
    .map_err(|e| DemoError::Spec(e.to_string()))?
    .start(&opts.serin, &session.router.url());

    let v2 = demo_app(&opts.serin, "v2", 0.0, Duration::ZERO).await?;
    let release = |stable: &str, revision: &str, url: &str| Release {
        name: "podinfo".into(),
        namespace: "demo".into(),
        spec: spec.clone(),
        templates: Vec::new(),
        canary_url: url.into(),
        revision: revision.into(),
        stable_revision: stable.into(),
    };
    let first = {
        let mut until = std::pin::pin!(load::stop_or_failed(stop, Some(&load)));
        session
            .run(&release("v1", "v2", &v2.url), reporter, &mut until)
            .await
    };
    let first = match first {
        Ok(f) => f,
        Err(e) => return Err(stop_all(load, session, [Some(v1), Some(v2)], e).await),
    };
    // v2 serves as the primary now (promoted) or v1 still does (rolled back).
    let (stable, retired) = if first.promoted { (v2, v1) } else { (v1, v2) };
    let stable_label = if first.promoted { "v2" } else { "v1" };
    retired.stop().await;
    let v3 = demo_app(
        &opts.serin,
        "v3",
        opts.canary_error_rate,
        opts.canary_latency,
    )
    .await?;
    let second = {
        let mut until = std::pin::pin!(load::stop_or_failed(stop, Some(&load)));
        session
            .run(&release(stable_label, "v3", &v3.url), reporter, &mut until)
            .await
    };
    let report = load.stop().await;
    reporter.load(&report);
    session.router.shutdown().await;
    v3.stop().await;
    stable.stop().await;
    match (second, report.end) {
        (Err(SessionError::Interrupted), LoadEnd::Failed(why)) => Err(DemoError::Load(why)),
        (second, _) => Ok((first, second?)),
    }
}

/// Ends the demo after a failed first release: load, router and apps stopped.
async fn stop_all(
    load: LoadRun,
    session: Session,
    apps: [Option<Service>; 2],
    error: SessionError,
) -> DemoError {
    let report = load.stop().await;
    session.router.shutdown().await;
    for app in apps.into_iter().flatten() {
        app.stop().await;
    }
    match (error, report.end) {
        (SessionError::Interrupted, LoadEnd::Failed(why)) => DemoError::Load(why),
        (error, _) => error.into(),
    }
}
