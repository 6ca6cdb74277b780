//! `serin loadtest` against a real HTTP server that counts what it receives.

mod loadtest_support;

use std::process::Command;

use loadtest_support::{CountingServer, SERIN};
use serin_testkit::support::{children_of, is_alive};

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
    // As hey 0.1.4 measured: ticks one period in, 0.1 … 1.9 s, and the one at 2 s that a
    // worker back before -z waits for: 20 per worker.
    assert_eq!(server.count("/q"), 40);
    assert_eq!(json(&out)["requests"], 40);
}

#[test]
fn q_pacing_is_heys_for_periods_that_do_not_divide_z() {
    // hey 0.1.4 against a local server: -q 3 -c 2 -z 2s sends 12 (the 6th tick is at 1.999998 s
    // and its request ends after -z), -q 7 -c 3 -z 1.5s 33, -q 1 -c 2 -z 1s 2.
    for (q, c, z, want) in [
        ("3", "2", "2s", 12),
        ("7", "3", "1500ms", 33),
        ("1", "2", "1s", 2),
    ] {
        let server = CountingServer::start();
        let (code, out, err) = loadtest(&[
            "-q",
            q,
            "-c",
            c,
            "-z",
            z,
            "--output",
            "json",
            &server.url("/p"),
        ]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(server.count("/p"), want, "-q {q} -c {c} -z {z}");
        assert_eq!(json(&out)["requests"], want);
    }
}

#[test]
fn absurd_rates_are_refused_and_nothing_sent_never_passes() {
    let (code, _, err) = loadtest(&["-q", "1e-300", "-z", "1s", "http://127.0.0.1:1/"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("-q: 1e-300 requests per second is out of range"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let server = CountingServer::start();
    // A first tick 1000 s in: -z 1s ends the run before it.
    let (code, _, err) = loadtest(&[
        "-q",
        "0.001",
        "-c",
        "1",
        "-z",
        "1s",
        "--max-error-rate",
        "5%",
        &server.url("/none"),
    ]);
    assert_eq!(server.count("/none"), 0);
    assert_eq!(code, 1, "a run that sent nothing fails its verdict: {err}");
    assert!(err.contains("no request was sent"), "{err}");
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

/// A server that answers `/from` with a redirect to `/to` (200), counting what reaches `/to`,
/// and never answers `/silent`; keep-alive, one thread per connection.
fn redirecting_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use std::io::{BufRead, BufReader, Write};
    use std::sync::atomic::{AtomicU64, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let reached = std::sync::Arc::new(AtomicU64::new(0));
    let counter = reached.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let counter = counter.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut out = stream;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split(' ').nth(1).unwrap_or("").to_string();
                    // Requests carry no body here: skip the headers.
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        if h == "\r\n" {
                            break;
                        }
                    }
                    let reply = match path.as_str() {
                        "/from" => {
                            "HTTP/1.1 302 Found\r\nLocation: /to\r\nContent-Length: 0\r\n\r\n"
                        }
                        "/to" => {
                            counter.fetch_add(1, Ordering::SeqCst);
                            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
                        }
                        // Hold the connection open without an answer.
                        _ => {
                            let mut rest = String::new();
                            let _ = reader.read_line(&mut rest);
                            return;
                        }
                    };
                    if out.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, reached)
}

#[test]
fn redirects_are_followed_unless_disabled() {
    let (addr, reached) = redirecting_server();
    let url = format!("http://{addr}/from");
    let (code, out, err) = loadtest(&["-n", "6", "-c", "2", "--output", "json", &url]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["status_codes"]["200"], 6, "{out}");
    assert_eq!(reached.load(std::sync::atomic::Ordering::SeqCst), 6);
    let (code, out, err) = loadtest(&[
        "-n",
        "6",
        "-c",
        "2",
        "-disable-redirects",
        "--output",
        "json",
        &url,
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["status_codes"]["302"], 6, "{out}");
    assert_eq!(reached.load(std::sync::atomic::Ordering::SeqCst), 6);
}

#[test]
fn a_silent_target_times_out_per_request() {
    let (addr, _) = redirecting_server();
    let (code, out, err) = loadtest(&[
        "-n",
        "2",
        "-c",
        "1",
        "-t",
        "1",
        "--output",
        "json",
        &format!("http://{addr}/silent"),
    ]);
    assert_eq!(code, 0, "{err}");
    let s = json(&out);
    assert_eq!(s["requests"], 2);
    assert_eq!(s["failed"], 2);
    assert_eq!(s["errors"]["timeout: no response within 1s"], 2, "{out}");
    let p50 = s["latency_us"]["p50"].as_f64().unwrap_or_default();
    assert!(
        (1_000_000.0..1_500_000.0).contains(&p50),
        "latency up to the timeout: {out}"
    );
}

#[test]
fn the_worker_dies_with_a_killed_parent() {
    let server = CountingServer::start();
    let mut parent = Command::new(SERIN)
        .args(["loadtest", "-z", "60s", "-c", "2", "-q", "20"])
        .arg(server.url("/orphan"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let worker = loadtest_support::wait_for(
        "the worker and its first requests",
        std::time::Duration::from_secs(30),
        || {
            let w = children_of(parent.id(), "loadtest-worker");
            (w.len() == 1 && server.count("/orphan") > 0).then(|| w[0])
        },
    );
    // SIGKILL: no handler in the parent runs, only the closed stdin pipe tells the worker.
    parent.kill().unwrap();
    parent.wait().unwrap();
    loadtest_support::wait_for(
        "the orphaned worker to exit",
        std::time::Duration::from_secs(10),
        || (!is_alive(worker)).then_some(()),
    );
}
