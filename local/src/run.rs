//! `serin run`: one canary analysis of local services (URLs, or commands serin starts) behind
//! the chosen router, with optional generated load.

use std::path::PathBuf;
use std::time::Duration;

use serin_api::{CanarySpec, MetricTemplate};
use serin_providers::prometheus::Prometheus;

use crate::load::{self, LoadCommand, LoadEnd};
use crate::process::{ProcessError, Service, wait_url};
use crate::progress::Reporter;
use crate::prometheus_server::PrometheusServer;
use crate::router::{AnyRouter, EmbeddedRouter, NginxRouter, RouterError, TraefikRouter};
use crate::session::Decider;
use crate::session::{Finished, Release, Session, SessionError};

/// Which router splits the traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouterKind {
    Embedded,
    Traefik,
    Nginx,
}

/// A backend: a URL serin does not own, or a command it starts (`{port}` substituted).
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    Url(String),
    Command(String),
}

pub struct RunOptions {
    pub name: String,
    pub namespace: String,
    pub spec: CanarySpec,
    pub templates: Vec<MetricTemplate>,
    pub primary: Target,
    pub canary: Target,
    /// Router address (`127.0.0.1:8080`).
    pub listen: String,
    pub router: RouterKind,
    pub metrics_server: Option<String>,
    /// `--load`: hey's flags, run by the loadtester engine against the router until the
    /// analysis ends (or until the command's own `-n`/`-z`).
    pub load: Option<LoadCommand>,
    /// The `serin` binary, whose hidden `loadtest-worker` subcommand runs the load.
    pub serin: PathBuf,
    /// Path probed for readiness of both backends.
    pub ready_path: String,
    pub ready_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(transparent)]
    Router(#[from] RouterError),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("--metrics-server: {0}")]
    MetricsServer(String),
    #[error("--listen {0:?}: write host:port, e.g. 127.0.0.1:8080")]
    Listen(String),
    #[error("--load: {0} (the run was stopped: its checks would measure no traffic)")]
    Load(String),
}

async fn backend(
    which: &str,
    target: &Target,
    ready_path: &str,
    within: Duration,
) -> Result<(String, Option<Service>), ProcessError> {
    match target {
        Target::Url(url) => {
            let url = url.trim_end_matches('/').to_owned();
            wait_url(which, &format!("{url}{ready_path}"), within).await?;
            Ok((url, None))
        }
        Target::Command(cmd) => {
            let mut s = Service::spawn(&format!("--{which}-cmd"), which, cmd)?;
            s.ready(ready_path, within).await?;
            Ok((s.url.clone(), Some(s)))
        }
    }
}

fn needs_prometheus(spec: &CanarySpec, router: RouterKind) -> bool {
    spec.metrics().iter().any(|m| {
        m.template_ref.is_some()
            || m.query.is_some()
            || (m.is_builtin() && router == RouterKind::Traefik)
    })
}

/// Runs the analysis to its end.
pub async fn run(
    opts: RunOptions,
    decider: Decider,
    reporter: &mut Reporter,
    stop: &mut (impl Future<Output = ()> + Unpin),
) -> Result<Finished, RunError> {
    let (primary_url, primary_proc) = backend(
        "primary",
        &opts.primary,
        &opts.ready_path,
        opts.ready_timeout,
    )
    .await?;
    let (canary_url, canary_proc) =
        backend("canary", &opts.canary, &opts.ready_path, opts.ready_timeout).await?;
    reporter.backends(&primary_url, &canary_url);
    let router = match opts.router {
        RouterKind::Embedded => {
            let addr = opts
                .listen
                .parse()
                .map_err(|_| RunError::Listen(opts.listen.clone()))?;
            AnyRouter::Embedded(EmbeddedRouter::start(addr, &primary_url, &canary_url).await?)
        }
        RouterKind::Nginx => AnyRouter::Nginx(Box::new(
            NginxRouter::start(&opts.listen, &primary_url, &canary_url).await?,
        )),
        RouterKind::Traefik => AnyRouter::Traefik(Box::new(
            TraefikRouter::start(
                &opts.listen,
                opts.spec.service_name(),
                &primary_url,
                &canary_url,
            )
            .await?,
        )),
    };
    let mut own_prometheus = None;
    let prometheus = match &opts.metrics_server {
        Some(url) => {
            Some(Prometheus::new(url).map_err(|e| RunError::MetricsServer(e.to_string()))?)
        }
        None if needs_prometheus(&opts.spec, opts.router) => {
            // The backends too, for templates on their own metrics (`job="canary"`).
            let host = |url: &str| {
                url.trim_start_matches("http://")
                    .trim_end_matches('/')
                    .to_owned()
            };
            let mut jobs = vec![
                ("primary", vec![host(&primary_url)]),
                ("canary", vec![host(&canary_url)]),
            ];
            if let AnyRouter::Traefik(t) = &router {
                jobs.push(("router", vec![t.metrics_target()]));
            }
            let server = PrometheusServer::start(&jobs).await?;
            let client =
                Prometheus::new(&server.url).map_err(|e| RunError::MetricsServer(e.to_string()))?;
            own_prometheus = Some(server);
            Some(client)
        }
        None => None,
    };
    let load = opts
        .load
        .as_ref()
        .map(|l| l.start(&opts.serin, &router.url()));
    let mut session = Session {
        router,
        prometheus,
        decider,
        max_ticks: 100_000,
    };
    let release = Release {
        name: opts.name.clone(),
        namespace: opts.namespace.clone(),
        spec: opts.spec.clone(),
        templates: opts.templates.clone(),
        canary_url,
        revision: "canary".into(),
        stable_revision: "primary".into(),
    };
    let result = {
        let mut until = std::pin::pin!(load::stop_or_failed(stop, load.as_ref()));
        session.run(&release, reporter, &mut until).await
    };
    // The load stops (its worker process gone) before the router it targets.
    let load_report = match load {
        Some(l) => Some(l.stop().await),
        None => None,
    };
    if let Some(r) = &load_report {
        reporter.load(r);
    }
    session.router.shutdown().await;
    if let Some(p) = own_prometheus {
        p.stop().await;
    }
    for s in [primary_proc, canary_proc].into_iter().flatten() {
        s.stop().await;
    }
    match (result, load_report.map(|r| r.end)) {
        (Err(SessionError::Interrupted), Some(LoadEnd::Failed(why))) => Err(RunError::Load(why)),
        (result, _) => Ok(result?),
    }
}
