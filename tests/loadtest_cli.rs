//! `serin loadtest` against a real HTTP server that counts what it receives.

mod loadtest_support;

use std::process::Command;

use loadtest_support::{CountingServer, SERIN};

fn loadtest(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(SERIN)
        .arg("loadtest")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[test]
fn n_is_an_exact_count() {
    let server = CountingServer::start();
    let (code, out, err) = loadtest(&[
        "-n",
        "103",
        "-c",
        "4",
        "--output",
        "json",
        &server.url("/n"),
    ]);
    assert_eq!(code, 0, "{err}");
    let s = json(&out);
    assert_eq!(s["requests"], 103);
    assert_eq!(s["status_codes"]["200"], 103);
    assert_eq!(s["failed"], 0);
    // Every request counted by the summary reached the server, and no more.
    assert_eq!(server.count("/n"), 103);
}

#[test]
fn q_is_per_worker_like_hey() {
    let server = CountingServer::start();
    let (code, out, err) = loadtest(&[
        "-q",
        "10",
        "-c",
        "2",
        "-z",
        "2s",
        "--output",
        "json",
        &server.url("/q"),
    ]);
    assert_eq!(code, 0, "{err}");
    // -q 10 per worker × 2 workers × 2 s = 40 requests (ticks at 0, 0.1 … 1.9 s per worker).
    let at_server = server.count("/q");
    assert!((38..=42).contains(&at_server), "server counted {at_server}");
    assert_eq!(json(&out)["requests"], at_server);
}

#[test]
fn rate_is_an_open_model_total() {
    let server = CountingServer::start();
    let (code, out, err) = loadtest(&[
        "--rate",
        "100",
        "-z",
        "2s",
        "--output",
        "json",
        &server.url("/r"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(server.count("/r"), 200, "due times 0, 10 ms … 1990 ms");
    assert_eq!(json(&out)["requests"], 200);
}

#[test]
fn request_shape_follows_the_flags() {
    let server = CountingServer::start();
    let (code, _, err) = loadtest(&[
        "-n",
        "1",
        "-c",
        "1",
        "-m",
        "put",
        "-d",
        "hello",
        "-T",
        "application/json",
        "-H",
        "X-Test: yes",
        "-a",
        "u:p",
        "-A",
        "text/plain",
        "-host",
        "web.example",
        &server.url("/shape"),
    ]);
    assert_eq!(code, 0, "{err}");
    let seen = server.last().unwrap();
    assert_eq!(seen.method, "PUT");
    assert_eq!(seen.body, "hello");
    assert_eq!(seen.headers["content-type"], "application/json");
    assert_eq!(seen.headers["x-test"], "yes");
    assert_eq!(seen.headers["authorization"], "Basic dTpw");
    assert_eq!(seen.headers["accept"], "text/plain");
    assert_eq!(seen.headers["host"], "web.example");
}

#[test]
fn body_from_file() {
    let server = CountingServer::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("body.json");
    std::fs::write(&path, "{\"a\":1}").unwrap();
    let (code, _, err) = loadtest(&[
        "-n",
        "1",
        "-c",
        "1",
        "-m",
        "POST",
        "-D",
        path.to_str().unwrap(),
        &server.url("/d"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(server.last().unwrap().body, "{\"a\":1}");
    let (code, _, err) = loadtest(&[
        "-n",
        "1",
        "-c",
        "1",
        "-D",
        "/nonexistent/body",
        &server.url("/d"),
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("-D: cannot read the body file /nonexistent/body"),
        "{err}"
    );
}

#[test]
fn failures_count_and_max_error_rate_decides_the_exit() {
    let server = CountingServer::start();
    let (code, out, _) = loadtest(&[
        "-n",
        "20",
        "-c",
        "2",
        "--output",
        "json",
        &server.url("/fail"),
    ]);
    assert_eq!(code, 0, "without --max-error-rate the exit is 0, like hey");
    let s = json(&out);
    assert_eq!(s["failed"], 20);
    assert_eq!(s["status_codes"]["503"], 20);
    let (code, out, err) = loadtest(&[
        "-n",
        "20",
        "-c",
        "2",
        "--max-error-rate",
        "5%",
        &server.url("/fail"),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("exceeds --max-error-rate 5.00%"), "{err}");
    assert!(out.contains("[503]\t20 responses"), "{out}");
    let (code, _, _) = loadtest(&[
        "-n",
        "20",
        "-c",
        "2",
        "--max-error-rate",
        "0",
        &server.url("/ok"),
    ]);
    assert_eq!(code, 0);
}

#[test]
fn unreachable_target_is_all_errors_not_a_crash() {
    // A port nothing listens on: bind, read the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, out, err) = loadtest(&[
        "-n",
        "10",
        "-c",
        "2",
        "--output",
        "json",
        &format!("http://127.0.0.1:{port}/"),
    ]);
    assert_eq!(code, 0, "{err}");
    let s = json(&out);
    assert_eq!(s["requests"], 10);
    assert_eq!(s["failed"], 10);
    let errors = s["errors"].as_object().unwrap();
    assert!(
        errors.keys().any(|k| k.starts_with("connection error")),
        "{errors:?}"
    );
}

#[test]
fn bad_flags_name_the_flag() {
    for (args, want) in [
        (
            vec!["-q", "x", "http://127.0.0.1:1/"],
            "-q: expected a number, got 'x'",
        ),
        (
            vec!["-z", "soon", "http://127.0.0.1:1/"],
            "-z: expected a duration",
        ),
        (
            vec!["-n", "2", "-c", "5", "http://127.0.0.1:1/"],
            "-n cannot be less than -c",
        ),
        (vec!["-bogus", "http://127.0.0.1:1/"], "unknown flag -bogus"),
        (vec!["-n", "5"], "missing the target URL"),
    ] {
        let (code, _, err) = loadtest(&args);
        assert_eq!(code, 2, "{args:?}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let (code, out, _) = loadtest(&["-help"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("-disable-keepalive") && out.contains("--rate"),
        "{out}"
    );
}
