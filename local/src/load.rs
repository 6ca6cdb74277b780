//! Generated load for local runs: `--load 'hey -q 50 -c 2 [URL]'` runs the loadtester's engine
//! (`serin_loadtester`, hey's parser and goose) in a `serin loadtest-worker` child process.
//! What is local: the router as the default target, load that lasts until the analysis ends,
//! and stopping the child with the run.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serin_loadtester::{AttackError, AttackSpec, CancellationToken, Output, Snapshot, Stop};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Stands for the router in the parsed spec until the router's address is known.
const ROUTER: &str = "http://serin-router.invalid";
/// The `-n` prepended to every command: hey's default of 200 requests would end the load long
/// before the analysis, so without `-n`/`-z` of its own the load runs until it is stopped.
/// Go flags let a later `-n` win, so the user's `-n` still counts.
const UNTIL_STOPPED: u64 = u64::MAX;

/// A parsed `--load` command.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadCommand {
    /// The command as written (shown in progress).
    pub text: String,
    spec: AttackSpec,
    /// The URL is the router's (no URL, or a path on the router).
    on_router: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("--load {command:?}: {message}")]
pub struct LoadError {
    command: String,
    message: String,
}

fn bad(command: &str, message: impl Into<String>) -> LoadError {
    LoadError {
        command: command.to_owned(),
        message: message.into(),
    }
}

const EXAMPLE: &str = "e.g. --load 'hey -q 50 -c 2' (the router), 'hey -q 50 -c 2 /api' (a path on the router) or a full http:// URL";

impl LoadCommand {
    /// Parses `hey [flags] [URL]` with hey's flags (`serin loadtest -help` lists them; the
    /// leading `hey` is optional). Without a URL the load targets the router; a URL starting with
    /// `/` is a path on the router. `-D FILE` is read now.
    pub fn parse(command: &str) -> Result<Self, LoadError> {
        let words = shell_words::split(command).map_err(|e| {
            bad(
                command,
                format!("cannot split it into words ({e}); {EXAMPLE}"),
            )
        })?;
        let mut words = words.as_slice();
        match words.first() {
            None => return Err(bad(command, format!("empty; {EXAMPLE}"))),
            Some(first) if Path::new(first).file_name().is_some_and(|n| n == "hey") => {
                words = &words[1..]
            }
            Some(first) if first.starts_with('-') => {}
            Some(first) => {
                return Err(bad(
                    command,
                    format!(
                        "{first:?} is not hey: local mode runs hey's flags on serin's load engine; {EXAMPLE}"
                    ),
                ));
            }
        }
        let parse = |url: Option<&str>, words: &[String]| {
            let mut args = vec!["-n".to_owned(), UNTIL_STOPPED.to_string()];
            args.extend(words.iter().cloned());
            args.extend(url.map(str::to_owned));
            serin_loadtester::parse_hey_args(&args)
        };
        // hey takes one URL, after the flags: try the router as that URL, then the words as
        // written, then a last word `/path` as a path on the router.
        let on_router = parse(Some(&format!("{ROUTER}/")), words);
        let (parsed, on_router) = match (on_router, parse(None, words)) {
            (_, Ok(c)) => (c, false),
            (Ok(c), Err(_)) => (c, true),
            (Err(e_router), Err(e_written)) => match words.split_last() {
                Some((last, rest)) if last.starts_with('/') => {
                    match parse(Some(&format!("{ROUTER}{last}")), rest) {
                        Ok(c) => (c, true),
                        Err(e) => return Err(bad(command, e.to_string())),
                    }
                }
                _ => {
                    // Without a URL of the user's, the router's try has the relevant error.
                    let e = if e_written.to_string().starts_with("missing the target URL") {
                        e_router
                    } else {
                        e_written
                    };
                    return Err(bad(command, first_line(&e.to_string())));
                }
            },
        };
        if parsed.max_error_rate.is_some() || parsed.output != Output::Text {
            return Err(bad(
                command,
                "--max-error-rate and --output are serin loadtest's verdict flags; in a run the analysis judges the canary: drop them",
            ));
        }
        let mut spec = parsed.spec;
        if let Some(path) = &parsed.body_file {
            let body = std::fs::read_to_string(path).map_err(|e| {
                bad(
                    command,
                    format!("-D: cannot read the body file {path}: {e}"),
                )
            })?;
            spec.requests[0].body = Some(body);
        }
        Ok(LoadCommand {
            text: command.to_owned(),
            spec,
            on_router,
        })
    }

    /// Load until the run stops it (no `-n`/`-z` of the command's own).
    pub fn until_stopped(&self) -> bool {
        self.spec.stop == Stop::Requests(UNTIL_STOPPED)
    }

    /// The attack against the router at `router_url` (`http://host:port`).
    pub fn attack(&self, router_url: &str) -> AttackSpec {
        let mut spec = self.spec.clone();
        if self.on_router {
            for r in &mut spec.requests {
                if let Some(path) = r.url.strip_prefix(ROUTER) {
                    r.url = format!("{}{path}", router_url.trim_end_matches('/'));
                }
            }
        }
        spec
    }

    /// Starts the attack in a child process of `serin` (the binary with the hidden
    /// `loadtest-worker` subcommand).
    pub fn start(&self, serin: &Path, router_url: &str) -> LoadRun {
        let spec = self.attack(router_url);
        let serin: PathBuf = serin.to_owned();
        let cancel = CancellationToken::new();
        let last = Arc::new(Mutex::new(Snapshot::default()));
        let (ended_tx, ended) = watch::channel(None);
        let task = {
            let (cancel, last) = (cancel.clone(), last.clone());
            tokio::spawn(async move {
                let result = serin_loadtester::run_attack(&serin, &spec, cancel, |s| {
                    *last.lock().unwrap_or_else(|p| p.into_inner()) = s.clone();
                })
                .await;
                let end = match result {
                    Ok(_) => LoadEnd::Finished,
                    Err(AttackError::Cancelled) => LoadEnd::Stopped,
                    Err(e) => LoadEnd::Failed(e.to_string()),
                };
                let _ = ended_tx.send(Some(end));
            })
        };
        LoadRun {
            command: self.text.clone(),
            _stop_on_drop: cancel.clone().drop_guard(),
            cancel,
            last,
            ended,
            task,
        }
    }
}

/// Resolves when `stop` does (Ctrl-C) or the load fails: what ends a run early.
pub async fn stop_or_failed(stop: &mut (impl Future<Output = ()> + Unpin), load: Option<&LoadRun>) {
    match load {
        Some(load) => tokio::select! {
            _ = &mut *stop => {}
            _ = load.failed() => {}
        },
        None => (&mut *stop).await,
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_owned()
}

/// How the load ended.
#[derive(Clone, Debug, PartialEq)]
pub enum LoadEnd {
    /// The command's `-n`/`-z` was reached.
    Finished,
    /// The run ended first and stopped it.
    Stopped,
    /// The worker could not start or failed.
    Failed(String),
}

/// What the load sent, by the worker's last count (reported about once a second, exact when
/// the command finished by itself).
#[derive(Clone, Debug, PartialEq)]
pub struct LoadReport {
    pub command: String,
    pub requests: u64,
    /// Requests without a response or with a status ≥ 500.
    pub failed: u64,
    pub end: LoadEnd,
}

/// A running load; [`LoadRun::stop`] ends it and waits until the worker process is gone.
pub struct LoadRun {
    command: String,
    cancel: CancellationToken,
    /// A run that ends on an error path drops its load: the worker is killed then too.
    _stop_on_drop: tokio_util::sync::DropGuard,
    last: Arc<Mutex<Snapshot>>,
    ended: watch::Receiver<Option<LoadEnd>>,
    task: JoinHandle<()>,
}

impl LoadRun {
    /// Resolves with the reason when the load failed (never when it finished or was stopped).
    pub async fn failed(&self) -> String {
        let mut ended = self.ended.clone();
        match ended
            .wait_for(|e| matches!(e, Some(LoadEnd::Failed(_))))
            .await
        {
            Ok(e) => match &*e {
                Some(LoadEnd::Failed(m)) => m.clone(),
                _ => unreachable!("wait_for returned a failure"),
            },
            // The task ended without a failure: never resolve.
            Err(_) => std::future::pending().await,
        }
    }

    /// Stops the worker (if still running) and reports what it sent.
    pub async fn stop(self) -> LoadReport {
        self.cancel.cancel();
        let _ = self.task.await;
        let end = self.ended.borrow().clone().unwrap_or(LoadEnd::Stopped);
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner()).clone();
        LoadReport {
            command: self.command,
            requests: last.requests,
            failed: last.failed,
            end,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn url(c: &LoadCommand) -> String {
        c.attack("http://127.0.0.1:8080").requests[0].url.clone()
    }

    #[test]
    fn without_a_url_the_router_until_stopped() {
        let c = LoadCommand::parse("hey -q 50 -c 2").unwrap();
        assert_eq!(url(&c), "http://127.0.0.1:8080/");
        assert!(c.until_stopped());
        let spec = c.attack("http://127.0.0.1:8080");
        assert_eq!(spec.concurrency, 2);
        assert_eq!(spec.qps_per_worker, Some(50.0));
        // Without the program name too.
        assert_eq!(
            url(&LoadCommand::parse("-c 2").unwrap()),
            "http://127.0.0.1:8080/"
        );
    }

    #[test]
    fn a_path_is_on_the_router_and_a_url_is_kept() {
        let c = LoadCommand::parse("hey -c 2 -H 'x-canary: insider' /api/info?x=1").unwrap();
        assert_eq!(url(&c), "http://127.0.0.1:8080/api/info?x=1");
        let h = &c.attack("http://h:1").requests[0].headers;
        assert!(h.contains(&("x-canary".into(), "insider".into())), "{h:?}");
        let c = LoadCommand::parse("/usr/bin/hey -c 2 http://127.0.0.1:9/x").unwrap();
        assert_eq!(url(&c), "http://127.0.0.1:9/x");
    }

    #[test]
    fn n_and_z_end_the_load_as_hey_would() {
        let c = LoadCommand::parse("hey -n 40 -c 2").unwrap();
        assert!(!c.until_stopped());
        assert_eq!(c.attack("http://h:1").stop, Stop::Requests(40));
        let c = LoadCommand::parse("hey -z 3s -c 2 /x").unwrap();
        assert_eq!(
            c.attack("http://h:1").stop,
            Stop::Duration(Duration::from_secs(3))
        );
    }

    #[test]
    fn a_body_file_is_read_and_a_missing_one_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("body.json");
        std::fs::write(&path, "{\"a\":1}").unwrap();
        let c = LoadCommand::parse(&format!("hey -m POST -D {}", path.display())).unwrap();
        let r = &c.attack("http://h:1").requests[0];
        assert_eq!(r.body.as_deref(), Some("{\"a\":1}"));
        assert_eq!(r.url, "http://h:1/");
        let e = LoadCommand::parse("hey -D /nonexistent/body")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--load") && e.contains("-D"), "{e}");
    }

    #[test]
    fn bad_input_names_load_and_the_fix() {
        let msg = |s: &str| LoadCommand::parse(s).unwrap_err().to_string();
        for (cmd, expect) in [
            ("hey -q fast", "-q: expected a number"),
            ("hey -x 1", "unknown flag -x"),
            ("hey -cc 2", "did you mean -c?"),
            ("hey -z soon", "-z: expected a duration"),
            ("hey -c 2 -n", "-n: missing value"),
            ("hey -c 2 ftp://x/", "only http and https"),
            ("hey -c 2 127.0.0.1:8080", "is not a URL"),
            ("hey -c 2 http://x/ http://y/", "one URL expected"),
            ("wrk -c 2 http://x/", "\"wrk\" is not hey"),
            ("", "empty"),
            ("hey 'unclosed", "cannot split"),
            ("hey --max-error-rate 5% -c 2", "drop them"),
        ] {
            let m = msg(cmd);
            assert!(m.starts_with("--load "), "{cmd}: {m}");
            assert!(m.contains(expect), "{cmd}: {m}");
        }
        // The fix is named where the error is not a single flag's.
        assert!(msg("wrk -c 2").contains("hey -q 50 -c 2"));
    }
    #[tokio::test]
    async fn a_worker_that_cannot_run_is_a_failure_with_its_reason() {
        let c = LoadCommand::parse("hey -c 1 -q 1").unwrap();
        let run = c.start(Path::new("/nonexistent/serin"), "http://127.0.0.1:9");
        let reason = run.failed().await;
        assert!(
            reason.contains("cannot start the load-test worker"),
            "{reason}"
        );
        let report = run.stop().await;
        assert_eq!(report.end, LoadEnd::Failed(reason));
        assert_eq!(report.requests, 0);
        // A program that is not serin exits without a result.
        let run = c.start(Path::new("/bin/true"), "http://127.0.0.1:9");
        let reason = run.failed().await;
        assert!(reason.contains("without a result"), "{reason}");
    }
}
