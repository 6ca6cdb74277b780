//! `serin loadtester`: Flagger's loadtester HTTP API (`reference/flagger.md` §5) with hey
//! commands and goose scenarios run natively in worker processes, gates, results and metrics.

mod gates;
pub mod metrics;
pub mod task;
pub mod window;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

pub use gates::{Gate, Gates};
use metrics::{Metrics, RunLabels};
pub use regex::Regex;
pub use task::Allow;
use task::{Payload, Rejection, Task};
use window::History;

use crate::child::{AttackError, run_attack};
use crate::spec::AttackSpec;
use crate::summary::{Snapshot, Summary};

/// Payloads are small JSON documents; anything bigger is a mistake or an attack.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

pub struct Config {
    /// Only payloads whose namespace matches are run (403 otherwise).
    pub namespace_regexp: Option<regex::Regex>,
    /// Enables `bash` tasks and `cmd` tasks that are not hey (run through a shell).
    pub allow_shell: bool,
    /// Enables `helm`/`helmv3` tasks (`helm test` only) when a helm binary is on PATH.
    pub allow_helm: bool,
    /// Longest run of one task; it is killed after that.
    pub timeout: Duration,
    /// The `serin` executable, started as `serin loadtest-worker` for each attack.
    pub worker_exe: PathBuf,
    pub body_limit: usize,
}

/// The latest run of a canary, as served by `GET /results/{namespace}/{name}`.
#[derive(Clone, Debug, Serialize)]
pub struct RunRecord {
    pub namespace: String,
    pub name: String,
    /// The hey command, or `goose` for a scenario.
    pub command: String,
    /// `running`, `passed`, `failed` or `cancelled`.
    pub state: String,
    pub started_at: f64,
    pub finished_at: Option<f64>,
    pub max_error_rate: Option<f64>,
    /// Counters so far while running; the full summary once finished.
    pub progress: Option<Snapshot>,
    pub summary: Option<Summary>,
    pub error: Option<String>,
}

pub struct Service {
    config: Config,
    gates: Gates,
    metrics: Metrics,
    running: Mutex<HashMap<String, CancellationToken>>,
    results: Mutex<HashMap<(String, String), RunRecord>>,
    /// Every canary's recent runs, for windowed reads.
    history: Mutex<HashMap<(String, String), History>>,
    next_run: std::sync::atomic::AtomicU64,
    shutdown: CancellationToken,
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Service {
    pub fn new(config: Config) -> Arc<Self> {
        Arc::new(Service {
            config,
            gates: Gates::default(),
            metrics: Metrics::default(),
            running: Mutex::new(HashMap::new()),
            results: Mutex::new(HashMap::new()),
            history: Mutex::new(HashMap::new()),
            next_run: std::sync::atomic::AtomicU64::new(1),
            shutdown: CancellationToken::new(),
        })
    }

    /// Cancelling it stops the server and kills every running attack.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Keys of the tasks running now (for tests and logs).
    pub fn running(&self) -> Vec<String> {
        lock(&self.running).keys().cloned().collect()
    }
}

pub fn router(svc: Arc<Service>) -> Router {
    Router::new()
        .route("/", any(submit))
        .route("/healthz", any(|| async { "OK" }))
        .route("/metrics", get(metrics_text))
        .route("/gate/approve", any(|| async { "OK" }))
        .route(
            "/gate/halt",
            any(|| async { (StatusCode::FORBIDDEN, "Forbidden") }),
        )
        .route(
            "/gate/check",
            any(|s, b| gate(s, b, Gate::Promotion, GateOp::Check)),
        )
        .route(
            "/gate/open",
            any(|s, b| gate(s, b, Gate::Promotion, GateOp::Open)),
        )
        .route(
            "/gate/close",
            any(|s, b| gate(s, b, Gate::Promotion, GateOp::Close)),
        )
        .route(
            "/rollback/check",
            any(|s, b| gate(s, b, Gate::Rollback, GateOp::Check)),
        )
        .route(
            "/rollback/open",
            any(|s, b| gate(s, b, Gate::Rollback, GateOp::Open)),
        )
        .route(
            "/rollback/close",
            any(|s, b| gate(s, b, Gate::Rollback, GateOp::Close)),
        )
        .route("/results/{namespace}/{name}", get(results))
        .with_state(svc)
}

/// Serves until the service's shutdown token is cancelled, then kills the running attacks.
pub async fn serve(listener: tokio::net::TcpListener, svc: Arc<Service>) -> std::io::Result<()> {
    let token = svc.shutdown.clone();
    axum::serve(listener, router(svc))
        .with_graceful_shutdown(async move { token.cancelled().await })
        .await
}

fn reject(r: Rejection) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, format!("{}\n", r.message)).into_response()
}

async fn read_payload(svc: &Service, body: Body) -> Result<Payload, Rejection> {
    let limit = svc.config.body_limit;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| Rejection {
        status: 413,
        message: format!("request body over {limit} bytes; send Flagger's webhook payload {{name, namespace, phase, checksum, metadata}}"),
    })?;
    serde_json::from_slice::<Payload>(&bytes).map_err(|e| Rejection {
        status: 400,
        message: format!("malformed payload: {e}; expected Flagger's webhook payload {{\"name\", \"namespace\", \"phase\", \"checksum\", \"metadata\"}} as JSON"),
    })
}

enum GateOp {
    Check,
    Open,
    Close,
}

async fn gate(State(svc): State<Arc<Service>>, body: Body, gate: Gate, op: GateOp) -> Response {
    let p = match read_payload(&svc, body).await {
        Ok(p) => p,
        Err(r) => return reject(r),
    };
    match op {
        GateOp::Check if svc.gates.is_open(gate, &p.name, &p.namespace) => {
            (StatusCode::OK, "Approved").into_response()
        }
        GateOp::Check => (StatusCode::FORBIDDEN, "Forbidden").into_response(),
        GateOp::Open | GateOp::Close => {
            let open = matches!(op, GateOp::Open);
            svc.gates.set(gate, &p.name, &p.namespace, open);
            tracing::info!(canary = %format!("{}.{}", p.name, p.namespace), ?gate, open, "gate set");
            (
                StatusCode::ACCEPTED,
                if open { "Gate opened" } else { "Gate closed" },
            )
                .into_response()
        }
    }
}

async fn metrics_text(State(svc): State<Arc<Service>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        svc.metrics.encode(),
    )
        .into_response()
}

/// `?window=1m` (a duration, or seconds) asks for the load of the last minute instead of the
/// latest run's record.
#[derive(serde::Deserialize)]
struct ResultsQuery {
    window: Option<String>,
}

async fn results(
    State(svc): State<Arc<Service>>,
    Path((namespace, name)): Path<(String, String)>,
    Query(q): Query<ResultsQuery>,
) -> Response {
    let Some(name) = svc.resolve(&namespace, &name) else {
        return (
            StatusCode::NOT_FOUND,
            format!("no load test has run for {name}.{namespace}\n"),
        )
            .into_response();
    };
    let key = (namespace.clone(), name.clone());
    let Some(window) = q.window else {
        return match lock(&svc.results).get(&key) {
            Some(r) => axum::Json(r.clone()).into_response(),
            None => (
                StatusCode::NOT_FOUND,
                format!("no load test has run for {name}.{namespace}\n"),
            )
                .into_response(),
        };
    };
    let secs = match parse_window(&window) {
        Ok(s) => s,
        Err(message) => return (StatusCode::BAD_REQUEST, message).into_response(),
    };
    let canary = format!("{namespace}/{name}");
    let w = lock(&svc.history)
        .get(&key)
        .map(|h| h.window(&canary, now_unix(), secs))
        .unwrap_or_default();
    axum::Json(w).into_response()
}

/// A window is a duration (`1m`, `30s`) or a number of seconds, up to the retention.
fn parse_window(text: &str) -> Result<f64, String> {
    let secs = match text.parse::<f64>() {
        Ok(s) => s,
        Err(_) => serin_api::duration::parse(text)
            .map(|d| d.as_secs_f64())
            .map_err(|e| {
                format!("window: expected a duration like 1m or 30s, got '{text}' ({e})\n")
            })?,
    };
    if !(secs > 0.0 && secs <= window::RETENTION_SECS) {
        return Err(format!(
            "window: {text} is out of range: give more than 0 and at most {}s (runs are kept that long)\n",
            window::RETENTION_SECS
        ));
    }
    Ok(secs)
}

impl Service {
    /// The canary name whose results answer `name`: the Canary itself, or, when nothing ran under
    /// that name, the Canary of a `<name>-canary` workload (what `{{ target }}` renders to), so a
    /// query written either way reads the runs its rollout hook started.
    fn resolve(&self, namespace: &str, name: &str) -> Option<String> {
        let results = lock(&self.results);
        let known = |n: &str| results.contains_key(&(namespace.to_string(), n.to_string()));
        if known(name) {
            return Some(name.to_string());
        }
        name.strip_suffix("-canary")
            .filter(|base| known(base))
            .map(str::to_string)
    }
}

async fn submit(State(svc): State<Arc<Service>>, body: Body) -> Response {
    let p = match read_payload(&svc, body).await {
        Ok(p) => p,
        Err(r) => return reject(r),
    };
    if let Some(re) = &svc.config.namespace_regexp
        && !re.is_match(&p.namespace)
    {
        return reject(Rejection {
            status: 403,
            message: format!(
                "namespace '{}' does not match --namespace-regexp '{}'",
                p.namespace,
                re.as_str()
            ),
        });
    }
    let allow = Allow {
        shell: svc.config.allow_shell,
        helm: svc.config.allow_helm,
    };
    let task = match p.task_for(allow) {
        Ok(t) => t,
        Err(r) => return reject(r),
    };
    match task {
        Task::Attack {
            spec,
            key,
            label,
            wait,
            max_error_rate,
        } => attack(svc, p, spec, key, label, wait, max_error_rate).await,
        Task::Shell { command, sync } => shell(svc, p, command, sync).await,
        Task::Native {
            native,
            command,
            sync,
        } => {
            let run = async move {
                let out = native.run().await;
                if out.ok() {
                    Ok(out.output)
                } else {
                    Err(out.to_string())
                }
            };
            finish(svc, p, command, sync, run).await
        }
        Task::Helm { args, command } => {
            let mut helm = tokio::process::Command::new("helm");
            helm.args(&args);
            finish(svc, p, format!("helm {command}"), true, output_of(helm)).await
        }
    }
}

async fn attack(
    svc: Arc<Service>,
    p: Payload,
    spec: AttackSpec,
    key: String,
    command: String,
    wait: bool,
    max: Option<f64>,
) -> Response {
    if wait {
        let token = svc.shutdown.child_token();
        let record = run_one(&svc, &p, &spec, &command, max, token).await;
        let status = match record.state.as_str() {
            "passed" => StatusCode::OK,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        return (status, axum::Json(record)).into_response();
    }
    let token = {
        let mut running = lock(&svc.running);
        if running.contains_key(&key) {
            tracing::info!(%key, "command skipped: already running");
            return (
                StatusCode::ACCEPTED,
                format!(
                    "command skipped: the same command is already running for {}.{}\n",
                    p.name, p.namespace
                ),
            )
                .into_response();
        }
        let token = svc.shutdown.child_token();
        running.insert(key.clone(), token.clone());
        token
    };
    let svc2 = svc.clone();
    tokio::spawn(async move {
        let record = run_one(&svc2, &p, &spec, &command, max, token).await;
        lock(&svc2.running).remove(&key);
        tracing::info!(canary = %format!("{}.{}", p.name, p.namespace), state = %record.state, error = ?record.error, "load test ended");
    });
    (StatusCode::ACCEPTED, "task accepted\n").into_response()
}

/// Runs one attack to its end (or timeout/shutdown), keeping results and metrics current.
async fn run_one(
    svc: &Arc<Service>,
    p: &Payload,
    spec: &AttackSpec,
    command: &str,
    max: Option<f64>,
    token: CancellationToken,
) -> RunRecord {
    let id = (p.namespace.clone(), p.name.clone());
    let started_at = now_unix();
    let mut record = RunRecord {
        namespace: p.namespace.clone(),
        name: p.name.clone(),
        command: command.to_string(),
        state: "running".into(),
        started_at,
        finished_at: None,
        max_error_rate: max,
        progress: None,
        summary: None,
        error: None,
    };
    lock(&svc.results).insert(id.clone(), record.clone());
    let run = svc
        .next_run
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    lock(&svc.history)
        .entry(id.clone())
        .or_default()
        .start(run, started_at);
    let target = url::Url::parse(&spec.requests[0].url)
        .map(|u| u[..url::Position::BeforePath].to_string())
        .unwrap_or_default();
    let labels = RunLabels {
        namespace: p.namespace.clone(),
        canary: p.name.clone(),
        target,
    };
    let mut prev = Snapshot::default();
    let timer = {
        let (token, timeout) = (token.clone(), svc.config.timeout);
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            token.cancel();
        })
    };
    let outcome = run_attack(&svc.config.worker_exe, spec, token, |snap| {
        svc.metrics.add_delta(&labels, &prev, snap);
        prev = snap.clone();
        if let Some(h) = lock(&svc.history).get_mut(&id) {
            h.progress(run, now_unix(), snap);
        }
        if let Some(r) = lock(&svc.results).get_mut(&id)
            && r.started_at == started_at
        {
            r.progress = Some(snap.clone());
        }
    })
    .await;
    let timed_out = timer.is_finished();
    timer.abort();
    record.finished_at = Some(now_unix());
    if let Some(h) = lock(&svc.history).get_mut(&id) {
        h.finish(run, record.finished_at.unwrap_or_default(), &prev);
    }
    record.progress = Some(prev);
    match outcome {
        Ok(report) => {
            // Without maxErrorRate any finished run passes, but one that sent nothing never does.
            let error = report.summary.verdict_error(max.unwrap_or(1.0));
            record.state = if error.is_none() { "passed" } else { "failed" }.into();
            record.error = error;
            record.summary = Some(report.summary);
        }
        Err(AttackError::Cancelled) => {
            record.state = "cancelled".into();
            record.error = Some(if timed_out {
                format!(
                    "killed after --timeout {}",
                    serin_api::duration::format(svc.config.timeout)
                )
            } else {
                "cancelled: the service is shutting down".into()
            });
        }
        Err(e) => {
            record.state = "failed".into();
            record.error = Some(e.to_string());
        }
    }
    svc.metrics.run_ended(&p.namespace, &p.name, &record.state);
    lock(&svc.results).insert(id, record.clone());
    record
}

/// `bash` (synchronous) and non-hey `cmd` (background) tasks, only with `--allow-shell`.
async fn shell(svc: Arc<Service>, p: Payload, command: String, sync: bool) -> Response {
    let mut sh = tokio::process::Command::new(if sync { "bash" } else { "sh" });
    sh.arg("-c").arg(&command);
    finish(svc, p, command, sync, output_of(sh)).await
}

/// A child process's stdout when it succeeds; its status and combined output when not.
async fn output_of(mut cmd: tokio::process::Command) -> Result<String, String> {
    match cmd.kill_on_drop(true).output().await {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).into_owned()),
        Ok(o) => Err(format!(
            "{}: {}{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )),
        Err(e) => Err(format!("cannot start the command: {e}")),
    }
}

/// Runs a command task under the service's timeout and shutdown: synchronous tasks answer 200
/// with the output or 500 with the failure (Flagger's `bash`); background ones answer 202, are
/// not started twice for the same canary and command, and log their result (Flagger's `cmd`).
async fn finish(
    svc: Arc<Service>,
    p: Payload,
    command: String,
    sync: bool,
    run: impl std::future::Future<Output = Result<String, String>> + Send + 'static,
) -> Response {
    let canary = format!("{}.{}", p.name, p.namespace);
    let (timeout, shutdown) = (svc.config.timeout, svc.shutdown.clone());
    let bounded = async move {
        tokio::select! {
            out = tokio::time::timeout(timeout, run) => out.unwrap_or_else(|_| Err(format!("killed after --timeout {}", serin_api::duration::format(timeout)))),
            _ = shutdown.cancelled() => Err("cancelled: the service is shutting down".into()),
        }
    };
    if sync {
        let result = bounded.await;
        log_result(&canary, &command, &result);
        return match result {
            Ok(out) => (StatusCode::OK, out).into_response(),
            Err(e) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("command {command} failed: {e}\n"),
            )
                .into_response(),
        };
    }
    let key = format!("{canary} {command}");
    {
        let mut running = lock(&svc.running);
        if running.contains_key(&key) {
            tracing::info!(%key, "command skipped: already running");
            return (
                StatusCode::ACCEPTED,
                "command skipped: the same command is already running\n",
            )
                .into_response();
        }
        running.insert(key.clone(), svc.shutdown.child_token());
    }
    tokio::spawn(async move {
        let result = bounded.await;
        lock(&svc.running).remove(&key);
        log_result(&canary, &command, &result);
    });
    (StatusCode::ACCEPTED, "task accepted\n").into_response()
}

/// Flagger logs a command's output (`logCmdOutput`); failures are warnings.
fn log_result(canary: &str, command: &str, result: &Result<String, String>) {
    match result {
        Ok(out) => tracing::info!(%canary, %command, output = %out.trim_end(), "command finished"),
        Err(e) => tracing::warn!(%canary, %command, error = %e.trim_end(), "command failed"),
    }
}
