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
