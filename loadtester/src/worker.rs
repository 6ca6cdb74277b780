//! The worker process: one attack per process, because goose's killswitch, ctrl-c handler and
//! logger are process-global. The job arrives as JSON on stdin (never argv, which goose could
//! read); results leave as marked lines on stdout, since goose prints its own lines there.

use std::io::{BufRead, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::closed::{self, Closed};
use crate::open::{self, Open};
use crate::request::{ClientError, Prepared, build_client};
use crate::spec::AttackSpec;
use crate::summary::{Recorder, Snapshot, Summary};

/// Line prefix of the cumulative counters, written about once a second.
pub const PROGRESS: &str = "serin-loadtest-progress ";
/// Line prefix of the final report.
pub const RESULT: &str = "serin-loadtest-result ";
/// Line prefix of a failure before or during the attack.
pub const FAILURE: &str = "serin-loadtest-error ";

/// Exit status of a worker whose parent closed its stdin (died) before the attack ended.
pub const EXIT_ORPHANED: i32 = 3;

/// What the worker sends back at the end.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkerReport {
    pub summary: Summary,
    pub snapshot: Snapshot,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("the attack needs at least one request")]
    NoRequests,
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("goose: {0}")]
    Goose(String),
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// Runs an attack in this process, calling `progress` about once a second.
/// Only call this in a process of its own (see the module doc); `crate::run_attack` does that.
pub fn run_in_this_process(
    spec: &AttackSpec,
    progress: impl Fn(&Snapshot) + Send + Sync + 'static,
) -> Result<WorkerReport, EngineError> {
    if spec.requests.is_empty() {
        return Err(EngineError::NoRequests);
    }
    // The parsers check these too; a job built another way must not reach a timer overflow.
    if let Some(q) = spec.qps_per_worker {
        crate::spec::check_rate("-q", q)?;
    }
    if let Some(r) = spec.rate {
        crate::spec::check_rate("--rate", r)?;
    }
    let prepared = spec
        .requests
        .iter()
        .map(Prepared::new)
        .collect::<Result<Vec<_>, _>>()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(EngineError::Runtime)?;
    rt.block_on(async move {
        let client = build_client(spec)?;
        let progress = Arc::new(progress);
        if spec.rate.is_some() {
            let state = Arc::new(Open {
                recorder: std::sync::Mutex::new(Recorder::new()),
                start: Instant::now(),
            });
            let ticker = {
                let (state, progress) = (state.clone(), progress.clone());
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        let snap = state
                            .recorder
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .snapshot();
                        progress(&snap);
                    }
                })
            };
            open::run(spec, client, prepared, state.clone()).await;
            ticker.abort();
            let elapsed = state.start.elapsed();
            let rec = state.recorder.lock().unwrap_or_else(|e| e.into_inner());
            Ok(WorkerReport {
                summary: rec.summary(elapsed),
                snapshot: rec.snapshot(),
            })
        } else {
            let closed = Closed::new(spec, client, prepared).map_err(EngineError::Runtime)?;
            let ticker = {
                let (closed, progress) = (closed.clone(), progress.clone());
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        progress(&closed.merged().snapshot());
                    }
                })
            };
            closed::run(closed.clone())
                .await
                .map_err(|e| EngineError::Goose(e.to_string()))?;
            ticker.abort();
            let elapsed = closed.elapsed();
            let rec = closed.merged();
            Ok(WorkerReport {
                summary: rec.summary(elapsed),
                snapshot: rec.snapshot(),
            })
        }
    })
}

/// The hidden `serin loadtest-worker` subcommand: the job as one JSON line on stdin, marked lines
/// on stdout; the worker exits as soon as stdin closes.
/// Returns false when the attack could not run (the reason is on stdout).
pub fn worker_main() -> bool {
    let mut stdin = std::io::stdin();
    let mut job = String::new();
    let spec: AttackSpec = match stdin
        .lock()
        .read_line(&mut job)
        .map_err(|e| e.to_string())
        .and_then(|_| serde_json::from_str(&job).map_err(|e| e.to_string()))
    {
        Ok(spec) => spec,
        Err(e) => {
            emit(FAILURE, &format!("bad job on stdin: {e}"));
            return false;
        }
    };
    // The parent keeps stdin open while it wants the attack; end of file means it is gone (even
    // killed with SIGKILL, which no handler sees), and an orphaned attack must not go on.
    std::thread::spawn(move || {
        let mut rest = [0u8; 64];
        while matches!(stdin.read(&mut rest), Ok(n) if n > 0) {}
        std::process::exit(EXIT_ORPHANED);
    });
    let progress =
        |snap: &Snapshot| emit(PROGRESS, &serde_json::to_string(snap).unwrap_or_default());
    match run_in_this_process(&spec, progress) {
        Ok(report) => {
            emit(RESULT, &serde_json::to_string(&report).unwrap_or_default());
            true
        }
        Err(e) => {
            emit(FAILURE, &e.to_string());
            false
        }
    }
}

fn emit(prefix: &str, payload: &str) {
    // One locked write per line, so goose's own prints cannot split it.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{prefix}{}", payload.replace('\n', " "));
    let _ = out.flush();
}
