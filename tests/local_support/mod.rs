//! Helpers for the local-mode end-to-end tests: run the `serin` binary with a deadline and read
//! its JSON-lines progress.

#![allow(dead_code)]

use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn serin() -> String {
    env!("CARGO_BIN_EXE_serin").to_owned()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Fails with the install hint when a real component is missing (scripts/deps.sh installs it).
pub fn require(cmd: &str, install: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{cmd} is not installed: {install} (scripts/deps.sh does it)"
    );
}

pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub events: Vec<Value>,
}

/// Runs `serin args…` to completion (killed after `deadline`).
pub fn run(args: &[String], deadline: Duration) -> Outcome {
    let mut child = Command::new(serin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start serin");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let out = reader.join().unwrap_or_default();
            panic!("serin {args:?} did not finish within {deadline:?}; output so far:\n{out}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = reader.join().unwrap();
    let events = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    Outcome {
        code: status.code().unwrap_or(-1),
        stdout,
        events,
    }
}

impl Outcome {
    pub fn of(&self, kind: &str) -> Vec<&Value> {
        self.events.iter().filter(|e| e["event"] == kind).collect()
    }

    /// Every step's share of requests at the canary is within ±3 points of its weight.
    pub fn assert_shares(&self, min_requests: u64) {
        let steps = self.of("step");
        let mut checked = 0;
        for s in &steps {
            let weight = s["weight"].as_u64().unwrap();
            let p = s["primary"].as_u64().unwrap();
            let c = s["canaryRequests"].as_u64().unwrap();
            if weight == 0 {
                assert_eq!(c, 0, "requests reached the canary at weight 0: {s}");
                continue;
            }
            if p + c < min_requests {
                continue;
            }
            let share = c as f64 * 100.0 / (p + c) as f64;
            assert!(
                (share - weight as f64).abs() <= 3.0,
                "canary got {share:.1}% of requests at weight {weight}: {s}\n{}",
                self.stdout
            );
            checked += 1;
        }
        assert!(
            checked > 0,
            "no step with enough requests to check:\n{}",
            self.stdout
        );
    }

    pub fn done(&self) -> &Value {
        self.of("done")
            .last()
            .copied()
            .unwrap_or_else(|| panic!("no done event:\n{}", self.stdout))
    }

    /// The highest `failedChecks` any tick reported.
    pub fn max_failed_checks(&self) -> u64 {
        self.of("tick")
            .iter()
            .filter_map(|t| t["failedChecks"].as_u64())
            .max()
            .unwrap_or(0)
    }

    /// Ticks whose first metric failed its range.
    pub fn failing_ticks(&self) -> usize {
        self.of("tick")
            .iter()
            .filter(|t| t["metrics"][0]["outcome"] == "Fail")
            .count()
    }

    pub fn failed_check_events(&self) -> usize {
        self.events
            .iter()
            .filter(|e| e["event"] == "event" && e["reason"] == "CheckFailed")
            .count()
    }
}

/// Writes a Canary with the builtin metrics to a temp file.
pub fn canary_file(
    dir: &std::path::Path,
    interval: &str,
    threshold: u32,
    step: u32,
    max: u32,
) -> PathBuf {
    let path = dir.join("canary.yaml");
    std::fs::write(
        &path,
        format!(
            r#"apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: web
  namespace: test
spec:
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: web}}
  service: {{port: 80}}
  analysis:
    interval: {interval}
    threshold: {threshold}
    maxWeight: {max}
    stepWeight: {step}
    metrics:
      - name: request-success-rate
        interval: 10s
        thresholdRange: {{min: 99}}
      - name: request-duration
        interval: 10s
        thresholdRange: {{max: 500}}
"#
        ),
    )
    .unwrap();
    path
}

/// `serin run` arguments with demo apps as primary and canary.
pub fn run_args(
    canary: &std::path::Path,
    router: &str,
    canary_error_rate: f64,
    load: &str,
) -> Vec<String> {
    let s = serin();
    vec![
        "run".into(),
        "-f".into(),
        canary.display().to_string(),
        "--primary-cmd".into(),
        format!("{s} demo-app --port {{port}} --version v1"),
        "--canary-cmd".into(),
        format!("{s} demo-app --port {{port}} --version v2 --error-rate {canary_error_rate}"),
        "--router".into(),
        router.into(),
        "--listen".into(),
        format!("127.0.0.1:{}", free_port()),
        "--ready-path".into(),
        "/readyz".into(),
        "--load".into(),
        load.into(),
    ]
}
