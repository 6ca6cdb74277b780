//! Local services started by serin: commands with `{port}` substituted, readiness by HTTP GET,
//! stopped when serin stops (kill on drop, so also on Ctrl-C and on errors).

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// Why a service cannot be started or never became ready.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("{flag}: {reason}")]
    Command { flag: String, reason: String },
    #[error(
        "{what} did not become ready at {url} within {secs}s: {last} (check the command and that it listens on {{port}})"
    )]
    NotReady {
        what: String,
        url: String,
        secs: u64,
        last: String,
    },
    #[error("{what} exited before it became ready ({status})")]
    Exited { what: String, status: String },
    #[error("no free local port: {0}")]
    Port(std::io::Error),
}

/// A free TCP port on 127.0.0.1 (bound then released: another process could take it in
/// between, which is acceptable for local runs and tests).
pub fn free_port() -> Result<u16, ProcessError> {
    let l = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .map_err(ProcessError::Port)?;
    l.local_addr().map(|a| a.port()).map_err(ProcessError::Port)
}

/// A child process that is killed when dropped.
pub struct Service {
    pub what: String,
    pub url: String,
    child: Child,
}

impl Service {
    /// Starts `command` (split like a shell would, but run without one) with `{port}`
    /// replaced by a free port; `flag` names the option in errors (`--canary-cmd`).
    pub fn spawn(flag: &str, what: &str, command: &str) -> Result<Self, ProcessError> {
        let port = free_port()?;
        let line = command.replace("{port}", &port.to_string());
        let words = shell_words::split(&line).map_err(|e| ProcessError::Command {
            flag: flag.into(),
            reason: format!("cannot split {command:?} into words: {e}"),
        })?;
        let Some((program, args)) = words.split_first() else {
            return Err(ProcessError::Command {
                flag: flag.into(),
                reason: "the command is empty".into(),
            });
        };
        Self::spawn_argv(flag, what, program, args, port)
    }

    /// Starts `program args…` that will listen on `port`.
    pub fn spawn_argv(
        flag: &str,
        what: &str,
        program: &str,
        args: &[String],
        port: u16,
    ) -> Result<Self, ProcessError> {
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            // Its own process group, so stopping it stops what it started too (`sh -c 'npm
            // start'` leaves node behind when only sh is killed).
            .process_group(0);
        die_with_parent(&mut command, libc::SIGKILL);
        let child = command.spawn().map_err(|e| ProcessError::Command {
            flag: flag.into(),
            reason: format!("cannot start {program:?}: {e}"),
        })?;
        Ok(Self {
            what: what.into(),
            url: format!("http://127.0.0.1:{port}"),
            child,
        })
    }

    /// Waits until `GET url` answers (any status below 500) or the deadline passes.
    pub async fn ready(&mut self, path: &str, within: Duration) -> Result<(), ProcessError> {
        let url = format!("{}{}", self.url, path);
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(ProcessError::Exited {
                    what: self.what.clone(),
                    status: status.to_string(),
                });
            }
            let last = match wait_http(&url).await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(ProcessError::NotReady {
                    what: self.what.clone(),
                    url,
                    secs: within.as_secs(),
                    last,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the process and its group, and waits for it.
    pub async fn stop(mut self) {
        self.kill_group();
        let _ = self.child.kill().await;
    }

    /// SIGKILL to the service's process group: the command and everything it started.
    fn kill_group(&self) {
        if let Some(pid) = self.child.id().and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: kill has no memory effects; the group is the child's own (process_group(0)).
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill_group();
    }
}

/// One readiness probe: `Ok` when the URL answers with a status below 500.
pub async fn wait_http(url: &str) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    match client.get(url).send().await {
        Ok(r) if r.status().as_u16() < 500 => Ok(()),
        Ok(r) => Err(format!("HTTP {}", r.status())),
        Err(e) => Err(e.to_string()),
    }
}

/// Waits until `url` answers, for services serin does not own (`--primary URL`).
pub async fn wait_url(what: &str, url: &str, within: Duration) -> Result<(), ProcessError> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match wait_http(url).await {
            Ok(()) => return Ok(()),
            Err(last) if tokio::time::Instant::now() >= deadline => {
                return Err(ProcessError::NotReady {
                    what: what.into(),
                    url: url.into(),
                    secs: within.as_secs(),
                    last,
                });
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Asks Linux to send `signal` to the child when serin dies, even by SIGKILL (no handler of ours
/// runs then, so `kill_on_drop` cannot). The signal follows the thread that spawned the child;
/// serin spawns from the runtime's worker threads, which live as long as serin.
#[cfg(target_os = "linux")]
pub(crate) fn die_with_parent(command: &mut Command, signal: libc::c_int) {
    let serin = std::process::id();
    // SAFETY: prctl and getppid are async-signal-safe, nothing allocates, and only the child
    // being set up is touched.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, signal) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            // serin died between fork and prctl: the signal will never come.
            if libc::getppid() as u32 != serin {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn die_with_parent(_: &mut Command, _: i32) {}
