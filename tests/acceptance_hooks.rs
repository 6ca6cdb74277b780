//! Flagger's acceptance-hook commands (tests/fixtures/hooks/corpus.yaml) sent to `serin
//! loadtester` with the chart's default flags (no --allow-shell, no --allow-helm): native
//! commands run against a real nginx and agree with the real curl under `sh -c`; shell-only ones
//! are refused with the part named, and the refusals are logged.

mod loadtest_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use loadtest_support::{SERIN, http, wait_for};

#[derive(serde::Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct Case {
    #[serde(rename = "type")]
    kind: String,
    cmd: String,
    expect: String,
    #[serde(default)]
    part: Option<String>,
    #[serde(default)]
    sh: bool,
    #[serde(default)]
    log: Option<String>,
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn listening(port: u16) {
    wait_for(
        &format!("port {port} to listen"),
        Duration::from_secs(20),
        || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .ok()
                .map(|_| ())
        },
    );
}

fn nginx(dir: &Path) -> (Killed, String) {
    let port = free_port();
    let conf = std::fs::read_to_string("tests/fixtures/hooks/nginx.conf")
        .unwrap()
        .replace("{{dir}}", dir.to_str().unwrap())
        .replace("{{port}}", &port.to_string());
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let child = Command::new("nginx")
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&path)
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx is installed");
    listening(port);
    (Killed(child), format!("127.0.0.1:{port}"))
}

/// The loadtester with the chart's default arguments; its log goes to `log`.
fn loadtester(log: &PathBuf) -> (Killed, String) {
    let port = free_port();
    let child = Command::new(SERIN)
        .args([
            "loadtester",
            "--address",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--timeout=1h",
            // The chart logs JSON; the test reads the same events as text lines.
            "--log-format=text",
        ])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    listening(port);
    (Killed(child), format!("http://127.0.0.1:{port}/"))
}

fn real_sh(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", cmd])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

#[test]
fn flaggers_hook_commands_run_natively_or_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_nginx, upstream) = nginx(dir.path());
    let log = dir.path().join("loadtester.log");
    let (_svc, url) = loadtester(&log);
    let closed = format!("127.0.0.1:{}", free_port());
    let corpus: Vec<Case> = serde_saphyr::from_str(
        &std::fs::read_to_string("tests/fixtures/hooks/corpus.yaml").unwrap(),
    )
    .unwrap();
    assert!(corpus.len() >= 40, "{}", corpus.len());
    for case in &corpus {
        let cmd = case
            .cmd
            .replace("{{http}}", &upstream)
            .replace("{{closed}}", &closed);
        let payload = serde_json::json!({"name": "podinfo", "namespace": "test", "phase": "Progressing", "checksum": "x",
            "metadata": {"type": case.kind, "cmd": cmd}});
        let (status, body) = http("POST", &url, &payload.to_string());
        let want = match case.expect.as_str() {
            "pass" => 200,
            "fail" => 500,
            "accepted" => 202,
            _ => 400,
        };
        assert_eq!(status, want, "{case:?}: {body}");
        if let Some(part) = &case.part {
            assert!(body.contains(part.as_str()), "{case:?}: {body}");
        }
        if body.contains("needs a shell") {
            assert!(body.contains("--allow-shell (off in the chart)"), "{body}");
            let logged = body.trim_end().split_once(": ").unwrap().1.to_string();
            wait_for(
                &format!("the refusal of {cmd} in the log"),
                Duration::from_secs(10),
                || {
                    let text = std::fs::read_to_string(&log).unwrap();
                    text.lines()
                        .any(|l| l.contains("WARN") && l.contains("refused") && l.contains(&logged))
                        .then_some(())
                },
            );
        }
        if case.sh {
            assert_eq!(
                real_sh(&cmd),
                status == 200,
                "sh -c with the real curl disagrees on {cmd}: {body}"
            );
        }
        if let Some(line) = &case.log {
            wait_for(
                &format!("'{line}' for {cmd} in the log"),
                Duration::from_secs(20),
                || {
                    let text = std::fs::read_to_string(&log).unwrap();
                    text.lines()
                        .any(|l| l.contains(line.as_str()) && l.contains(&cmd))
                        .then_some(())
                },
            );
        }
    }
}
