//! Running an attack in a child process of the `serin` binary, with cancellation.

use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use crate::spec::AttackSpec;
use crate::summary::Snapshot;
use crate::worker::{FAILURE, PROGRESS, RESULT, WorkerReport};

/// The hidden subcommand of the `serin` binary that runs one attack.
pub const WORKER_SUBCOMMAND: &str = "loadtest-worker";

#[derive(Debug, thiserror::Error)]
pub enum AttackError {
    #[error("cannot start the load-test worker {exe}: {source}")]
    Spawn { exe: String, source: std::io::Error },
    #[error("the load test failed: {0}")]
    Worker(String),
    #[error("the load test was cancelled")]
    Cancelled,
}

/// Runs `spec` in a child process `exe loadtest-worker`, reporting cumulative counters to
/// `progress` about once a second. Cancelling `cancel` kills the child at once (its traffic
/// stops) and returns [`AttackError::Cancelled`].
pub async fn run_attack(
    exe: &Path,
    spec: &AttackSpec,
    cancel: CancellationToken,
    mut progress: impl FnMut(&Snapshot),
) -> Result<WorkerReport, AttackError> {
    let job = serde_json::to_vec(spec).map_err(|e| AttackError::Worker(e.to_string()))?;
    let mut child = Command::new(exe)
        .arg(WORKER_SUBCOMMAND)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| AttackError::Spawn {
            exe: exe.display().to_string(),
            source,
        })?;
    // The job is one line; stdin then stays open until this function returns, because the
    // worker stops when it closes (so it dies with this process, however this process dies).
    let mut stdin = child.stdin.take();
    if let Some(stdin) = stdin.as_mut() {
        // A write error means the child died; its exit below says why.
        let _ = stdin.write_all(&job).await;
        let _ = stdin.write_all(b"\n").await;
        let _ = stdin.flush().await;
    }
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    // Keep the last lines of stderr for the error message; reading it also keeps the pipe from filling.
    let stderr_tail = tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        let mut tail = VecDeque::new();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::debug!(target: "serin_loadtester::worker", "{line}");
            if tail.len() == 5 {
                tail.pop_front();
            }
            tail.push_back(line);
        }
        Vec::from(tail).join("\n")
    });

    let mut lines = BufReader::new(stdout).lines();
    let mut report = None;
    let mut failure = None;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                return Err(AttackError::Cancelled);
            }
            line = lines.next_line() => match line {
                Ok(Some(line)) => {
                    if let Some(json) = line.strip_prefix(PROGRESS) {
                        if let Ok(snap) = serde_json::from_str::<Snapshot>(json) {
                            progress(&snap);
                        }
                    } else if let Some(json) = line.strip_prefix(RESULT) {
                        report = serde_json::from_str::<WorkerReport>(json).ok();
                    } else if let Some(msg) = line.strip_prefix(FAILURE) {
                        failure = Some(msg.to_string());
                    }
                }
                _ => break,
            }
        }
    }
    let status = tokio::select! {
        _ = cancel.cancelled() => {
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err(AttackError::Cancelled);
        }
        status = child.wait() => status,
    };
    if let Some(report) = report {
        progress(&report.snapshot);
        return Ok(report);
    }
    let tail = stderr_tail.await.unwrap_or_default();
    Err(AttackError::Worker(match (failure, status) {
        (Some(msg), _) => msg,
        (None, Ok(s)) => format!(
            "the worker exited ({s}) without a result{}",
            if tail.is_empty() {
                String::new()
            } else {
                format!(": {tail}")
            }
        ),
        (None, Err(e)) => format!("cannot wait for the worker: {e}"),
    }))
}
