//! Ctrl-C (SIGINT) during `serin run`: the run ends with exit code 2 and the processes serin
//! started are stopped.

mod local_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use local_support::*;

#[test]
fn interrupt_stops_the_started_services() {
    let dir = tempfile::tempdir().unwrap();
    // A long interval: the run is still analysing when it is interrupted.
    let canary = canary_file(dir.path(), "1m", 2, 20, 60);
    let mut child = Command::new(serin())
        .args(run_args(&canary, "embedded", 0.0, "hey -c 1 -q 5"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut backends = None;
    for line in lines.by_ref() {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        if v["event"] == "backends" {
            backends = Some((
                v["primary"].as_str().unwrap().to_owned(),
                v["canary"].as_str().unwrap().to_owned(),
            ));
        }
        // At once, before the first tick: serin must already be listening for the signal.
        if backends.is_some() {
            break;
        }
    }
    let (primary, canary) = backends.expect("a backends event");
    let alive = |url: &str| std::net::TcpStream::connect(url.trim_start_matches("http://")).is_ok();
    assert!(alive(&primary) && alive(&canary));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let start = Instant::now();
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "serin ignored SIGINT"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(code, Some(2));
    // The services serin started are gone (poll: the kernel closes their sockets as they exit).
    let start = Instant::now();
    while alive(&primary) || alive(&canary) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "services still listening after exit"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a process whose command line contains `needle` is alive (zombies do not count).
fn running(needle: &str) -> bool {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .any(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline)
                .replace('\0', " ")
                .contains(needle)
                && serin_testkit::support::is_alive(pid)
        })
}

#[test]
fn interrupt_stops_what_the_commands_started() {
    let dir = tempfile::tempdir().unwrap();
    let canary = canary_file(dir.path(), "1m", 2, 20, 60);
    // A command run through a shell that leaves a grandchild: only its process group reaches it.
    let marker = format!("{}.{}", 300, std::process::id());
    let mut args = run_args(&canary, "embedded", 0.0, "hey -c 1 -q 5");
    let primary = args.iter().position(|a| a == "--primary-cmd").unwrap() + 1;
    args[primary] = format!(
        "sh -c 'sleep {marker} & exec {} demo-app --port {{port}} --version v1'",
        serin()
    );
    let mut child = Command::new(serin())
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        if v["event"] == "backends" {
            break;
        }
    }
    assert!(
        running(&format!("sleep {marker}")),
        "the grandchild started"
    );
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    let start = Instant::now();
    while running(&format!("sleep {marker}")) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the command's grandchild outlived serin run"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
