//! `serin run --load 'hey …'` runs the loadtester engine (a `serin loadtest-worker` child
//! process) against the router: its traffic drives the analysis, it stops with the run (or at
//! the command's own `-n`), and bad `--load` input is refused before anything starts.

mod local_support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use local_support::*;
use serde_json::Value;
use serin_testkit::support::{children_of, is_alive};

/// Pids of the `loadtest-worker` children of `parent`.
fn workers_of(parent: u32) -> Vec<u32> {
    children_of(parent, "loadtest-worker")
}

/// A `serin run` whose JSON lines are collected while the test watches its processes.
struct Watched {
    child: Child,
    lines: Arc<Mutex<Vec<Value>>>,
    reader: std::thread::JoinHandle<()>,
}

impl Watched {
    fn start(args: &[String]) -> Self {
        let mut child = Command::new(serin())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    sink.lock().unwrap().push(v);
                }
            }
        });
        Watched {
            child,
            lines,
            reader,
        }
    }

    /// Polls until serin exits, calling `watch` on every round; returns the exit code and lines.
    fn wait(mut self, deadline: Duration, mut watch: impl FnMut(u32)) -> (i32, Vec<Value>) {
        let start = Instant::now();
        let pid = self.child.id();
        let code = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status.code().unwrap_or(-1);
            }
            watch(pid);
            if start.elapsed() > deadline {
                let _ = self.child.kill();
                panic!(
                    "serin run did not finish within {deadline:?}: {:?}",
                    self.lines.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.reader.join().unwrap();
        let lines = std::mem::take(&mut *self.lines.lock().unwrap());
        (code, lines)
    }
}

fn of<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines.iter().filter(|e| e["event"] == kind).collect()
}

#[test]
fn load_engine_drives_a_promotion_and_its_worker_stops_with_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let canary = canary_file(dir.path(), "1s", 2, 20, 60);
    let run = Watched::start(&run_args(&canary, "embedded", 0.0, "hey -q 50 -c 2"));
    let mut seen = Vec::new();
    let (code, lines) = run.wait(Duration::from_secs(90), |pid| {
        for w in workers_of(pid) {
            if !seen.contains(&w) {
                seen.push(w);
            }
        }
    });
    assert_eq!(code, 0, "{lines:?}");
    assert_eq!(of(&lines, "done")[0]["result"], "promoted");
    // The canary backend's count, measured by the router, grows at every step of the analysis.
    let steps = of(&lines, "step");
    let at_canary: Vec<(u64, u64)> = steps
        .iter()
        .filter(|s| s["weight"].as_u64().unwrap() > 0)
        .map(|s| {
            (
                s["weight"].as_u64().unwrap(),
                s["canaryRequests"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(at_canary.len() >= 3, "{steps:?}");
    for (weight, n) in &at_canary {
        assert!(*n > 0, "no request reached the canary at weight {weight}");
    }
    let load = of(&lines, "load");
    assert_eq!(load.len(), 1, "{lines:?}");
    assert_eq!(load[0]["end"], "stopped", "{}", load[0]);
    assert!(load[0]["requests"].as_u64().unwrap() > 100, "{}", load[0]);
    // One worker process, and it is gone now that serin has exited.
    assert_eq!(seen.len(), 1, "worker pids {seen:?}");
    assert!(
        !is_alive(seen[0]),
        "loadtest-worker {} outlived serin run",
        seen[0]
    );
}

#[test]
fn with_n_the_load_ends_as_hey_would_while_the_analysis_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    // Four failed checks before a rollback: the analysis outlasts the 60 requests by seconds
    // (after them the canary has no data, which fails checks).
    let canary = canary_file(dir.path(), "1s", 4, 20, 40);
    let run = Watched::start(&run_args(&canary, "embedded", 0.0, "hey -n 60 -c 2 -q 50"));
    let (mut seen, mut ended_before_serin) = (None, false);
    let (code, lines) = run.wait(Duration::from_secs(90), |pid| {
        let workers = workers_of(pid);
        if let Some(w) = workers.first() {
            seen = Some(*w);
        } else if seen.is_some() && !ended_before_serin {
            ended_before_serin = true;
        }
    });
    assert!(code == 0 || code == 1, "exit {code}: {lines:?}");
    assert!(seen.is_some(), "no loadtest-worker seen");
    assert!(
        ended_before_serin,
        "the worker of -n 60 ran until serin exited"
    );
    let load = of(&lines, "load");
    assert_eq!(load[0]["end"], "finished", "{}", load[0]);
    assert_eq!(load[0]["requests"], 60, "{}", load[0]);
    let counted: u64 = of(&lines, "step")
        .iter()
        .map(|s| s["primary"].as_u64().unwrap() + s["canaryRequests"].as_u64().unwrap())
        .sum();
    assert!(counted <= 60, "the router counted {counted} requests");
}

#[test]
fn bad_load_input_exits_2_naming_load_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let canary = canary_file(dir.path(), "1s", 2, 20, 60);
    for (load, expect) in [
        ("hey -x 1 -c 2", "unknown flag -x"),
        ("hey -c 2 -qq 5", "did you mean -q?"),
        ("hey -c 2 -n", "-n: missing value"),
        ("hey -c 2 ftp://127.0.0.1/", "only http and https"),
        (
            "wrk -c 2 -d 10s http://127.0.0.1:8080/",
            "\"wrk\" is not hey",
        ),
    ] {
        let out = Command::new(serin())
            .args(run_args(&canary, "embedded", 0.0, load))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{load}: {err}");
        assert!(
            err.contains("--load") && err.contains(expect),
            "{load}: {err}"
        );
        // Refused before anything started: no progress at all.
        assert!(out.stdout.is_empty(), "{load}: {:?}", out.stdout);
    }
    let out = Command::new(serin())
        .args(run_args(&canary, "embedded", 0.0, "wrk -c 2"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("hey -q 50 -c 2"), "the fix is shown: {err}");
}

#[test]
fn sigterm_ends_the_run_and_its_worker() {
    let dir = tempfile::tempdir().unwrap();
    // A long interval: the run is still analysing when it is terminated.
    let canary = canary_file(dir.path(), "1m", 2, 20, 60);
    let run = Watched::start(&run_args(&canary, "embedded", 0.0, "hey -q 20 -c 1"));
    let mut worker = None;
    let (code, lines) = run.wait(Duration::from_secs(60), |pid| {
        if worker.is_none()
            && let Some(w) = workers_of(pid).first()
        {
            worker = Some(*w);
            let sent = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .unwrap();
            assert!(sent.success());
        }
    });
    let worker = worker.expect("no loadtest-worker seen");
    assert_eq!(code, 2, "{lines:?}");
    assert!(!is_alive(worker), "loadtest-worker {worker} outlived serin");
    assert_eq!(of(&lines, "load")[0]["end"], "stopped", "{lines:?}");
}

#[test]
fn sigkill_of_serin_takes_its_worker_and_apps_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let canary = canary_file(dir.path(), "1m", 2, 20, 60);
    let run = Watched::start(&run_args(&canary, "embedded", 0.0, "hey -q 20 -c 1"));
    let mut children = Vec::new();
    let (code, _) = run.wait(Duration::from_secs(60), |pid| {
        if children.is_empty() {
            let workers = workers_of(pid);
            let apps = children_of(pid, "demo-app");
            if workers.len() == 1 && apps.len() == 2 {
                children = [workers, apps].concat();
                // No handler runs on SIGKILL: only the kernel and the closed pipe can stop them.
                let sent = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status()
                    .unwrap();
                assert!(sent.success());
            }
        }
    });
    assert_eq!(code, -1, "killed by a signal");
    assert_eq!(children.len(), 3, "the worker and both demo apps were seen");
    let deadline = Instant::now() + Duration::from_secs(10);
    while children.iter().any(|&c| is_alive(c)) {
        assert!(
            Instant::now() < deadline,
            "outlived serin: {:?}",
            children
                .iter()
                .filter(|&&c| is_alive(c))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
