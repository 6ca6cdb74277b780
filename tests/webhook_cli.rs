//! `serin webhook` as a process: flag errors name the flag, a server started from PEM files
//! answers a Deployment review over HTTPS (checked with curl trusting only that certificate), its
//! limits come from flags, and SIGTERM drains it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn serin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_serin"))
}

fn fails_with(args: &[&str], needle: &str) {
    let out = serin().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(stderr.contains(needle), "{args:?}: {stderr}");
}

#[test]
fn bad_flags_are_named() {
    fails_with(&["webhook", "--standalone"], "--tls-cert-file");
    fails_with(
        &[
            "webhook",
            "--tls-cert-file",
            "/nonexistent/tls.crt",
            "--standalone",
        ],
        "--tls-key-file",
    );
    fails_with(
        &[
            "webhook",
            "--tls-cert-file",
            "/nonexistent/tls.crt",
            "--tls-key-file",
            "/nonexistent/tls.key",
            "--standalone",
        ],
        "/nonexistent/tls.crt",
    );
    fails_with(&["webhook", "--self-signed"], "--service");
    fails_with(
        &[
            "webhook",
            "--self-signed",
            "--service",
            "serin",
            "--standalone",
        ],
        "--standalone",
    );
    fails_with(
        &[
            "webhook",
            "--tls-cert-file",
            "a",
            "--tls-key-file",
            "b",
            "--log-level",
            "loud=[",
        ],
        "--log-level",
    );
    let pems = ["--tls-cert-file", "a", "--tls-key-file", "b"];
    for (flag, value) in [
        ("--idle-timeout", "0s"),
        ("--header-timeout", "soon"),
        ("--max-connections", "0"),
        ("--max-body-bytes", "10"),
    ] {
        let mut args = vec!["webhook", flag, value];
        args.extend(pems);
        fails_with(&args, flag);
    }
}

#[test]
fn limits_have_env_mirrors_in_help() {
    let out = serin().args(["webhook", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for env in [
        "SERIN_MAX_CONNECTIONS",
        "SERIN_HANDSHAKE_TIMEOUT",
        "SERIN_HEADER_TIMEOUT",
        "SERIN_BODY_TIMEOUT",
        "SERIN_IDLE_TIMEOUT",
        "SERIN_MAX_BODY_BYTES",
        "SERIN_MAX_BUFFERED_BYTES",
        "SERIN_DRAIN_TIMEOUT",
    ] {
        assert!(help.contains(env), "{env} missing from:\n{help}");
    }
}

/// A self-signed certificate for 127.0.0.1 in `dir`: (cert, key).
fn certificate(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl is installed (scripts/deps.sh)");
    assert!(status.success());
    (cert, key)
}

#[test]
fn limits_from_env_and_sigterm_drains() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path());
    let mut child = Child(
        serin()
            .args([
                "webhook",
                "--standalone",
                "--address",
                "127.0.0.1",
                "--port",
                "0",
            ])
            .arg("--tls-cert-file")
            .arg(&cert)
            .arg("--tls-key-file")
            .arg(&key)
            .env("SERIN_HANDSHAKE_TIMEOUT", "200ms")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(child.0.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("serin webhook exited early").unwrap();
        if let Some(rest) = line.strip_prefix("serin webhook: serving https://") {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    // A client that never starts its handshake is closed by the server: read until EOF.
    let mut mute = std::net::TcpStream::connect(&addr).unwrap();
    // Only a guard against a hang; the close comes after 200 ms.
    mute.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(std::io::Read::read(&mut mute, &mut buf).unwrap(), 0);

    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.iter()
            .any(|l| l.contains("terminated, draining connections")),
        "{rest:?}"
    );
    assert!(child.0.wait().unwrap().success());
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serves_reviews_over_https_from_pem_files() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl is installed (scripts/deps.sh)");
    assert!(status.success());

    let mut child = Child(
        serin()
            .args([
                "webhook",
                "--standalone",
                "--address",
                "127.0.0.1",
                "--port",
                "0",
            ])
            .arg("--tls-cert-file")
            .arg(&cert)
            .arg("--tls-key-file")
            .arg(&key)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // The bound address is announced on stderr; reading it is the wait for readiness.
    let mut lines = BufReader::new(child.0.stderr.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("serin webhook exited early").unwrap();
        if let Some(rest) = line.strip_prefix("serin webhook: serving ") {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };

    let review = serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "cli-1", "operation": "UPDATE", "namespace": "prod", "name": "web",
                    "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                    "object": {"metadata": {"name": "web", "labels": {"serin.dev/canary": "web"},
                                            "annotations": {"serin.dev/stable-hash": "0000000000000000"}},
                               "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "web:2"}]}}}}}
    });
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--cacert"])
        .arg(&cert)
        .args(["-H", "content-type: application/json", "--data-binary"])
        .arg(review.to_string())
        .arg(format!("{url}/mutate"))
        .output()
        .expect("curl is installed (scripts/deps.sh)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["response"]["uid"], "cli-1");
    assert_eq!(answer["response"]["allowed"], true);
    assert_eq!(answer["response"]["patchType"], "JSONPatch");
    // base64 of [{"op":"add","path":"/spec/paused","value":true}]
    assert_eq!(
        answer["response"]["patch"],
        "W3sib3AiOiJhZGQiLCJwYXRoIjoiL3NwZWMvcGF1c2VkIiwidmFsdWUiOnRydWV9XQ=="
    );
    assert!(
        answer["response"]["warnings"][0]
            .as_str()
            .unwrap()
            .contains("held for canary analysis (canary prod/web)")
    );
}
