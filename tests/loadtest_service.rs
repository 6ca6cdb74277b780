//! `serin loadtester`: Flagger's loadtester API, with the generated traffic counted at a real server.

mod loadtest_support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use loadtest_support::{CountingServer, SERIN, http, settled, wait_for};
use serde_json::json;

struct Service {
    child: Child,
    base: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(extra: &[&str]) -> Service {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(SERIN)
        .args([
            "loadtester",
            "--address",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let svc = Service {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    wait_for(
        "the loadtester to answer /healthz",
        Duration::from_secs(20),
        || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .ok()
                .map(|_| ())
        },
    );
    assert_eq!(http("GET", &format!("{}/healthz", svc.base), "").0, 200);
    svc
}

impl Service {
    fn post(&self, path: &str, body: serde_json::Value) -> (u16, String) {
        http("POST", &format!("{}{path}", self.base), &body.to_string())
    }
    fn results(&self, ns: &str, name: &str) -> Option<serde_json::Value> {
        let (code, body) = http("GET", &format!("{}/results/{ns}/{name}", self.base), "");
        (code == 200).then(|| serde_json::from_str(&body).unwrap())
    }
}

fn payload(name: &str, metadata: serde_json::Value) -> serde_json::Value {
    json!({"name": name, "namespace": "test", "phase": "Progressing", "checksum": "abc", "metadata": metadata})
}

#[test]
fn seed_command_runs_natively_once_per_canary_and_reports() {
    let server = CountingServer::start();
    let svc = start(&[]);
    // Flagger's seed webhook, with a short -z.
    let cmd = format!("hey -z 2s -q 10 -c 2 {}", server.url("/seed"));
    let (code, body) = svc.post("/", payload("web", json!({"type": "cmd", "cmd": cmd})));
    assert_eq!(code, 202, "{body}");
    wait_for("traffic at the server", Duration::from_secs(20), || {
        (server.count("/seed") > 0).then_some(())
    });
    // Flagger re-posts every interval: the identical command is not started twice while it runs.
    let (code, body) = svc.post("/", payload("web", json!({"cmd": cmd})));
    assert_eq!(code, 202);
    assert!(body.contains("already running"), "{body}");
    let done = wait_for("the run's result", Duration::from_secs(30), || {
        svc.results("test", "web")
            .filter(|r| r["state"] != "running")
    });
    assert_eq!(done["state"], "passed", "{done}");
    let at_server = settled(Duration::from_secs(10), Duration::from_millis(500), || {
        server.count("/seed")
    });
    assert!(
        (38..=42).contains(&at_server),
        "20 req/s for 2 s, counted {at_server}"
    );
    assert_eq!(done["summary"]["requests"], at_server);
    assert_eq!(done["command"], cmd);
    // The same traffic is in /metrics for a MetricTemplate to score.
    let (_, metrics) = http("GET", &format!("{}/metrics", svc.base), "");
    let line = format!(
        "serin_loadtester_requests_total{{namespace=\"test\",canary=\"web\",target=\"http://{}\",code=\"200\"}} {at_server}",
        server.addr
    );
    assert!(metrics.contains(&line), "missing {line} in\n{metrics}");
    assert!(
        metrics.contains("serin_loadtester_request_duration_seconds_bucket"),
        "{metrics}"
    );
    // Another canary with the same command is a different task.
    let (code, body) = svc.post(
        "/",
        payload(
            "other",
            json!({"cmd": format!("hey -n 4 -c 2 {}", server.url("/other"))}),
        ),
    );
    assert_eq!(code, 202, "{body}");
    wait_for(
        "the other canary's traffic",
        Duration::from_secs(20),
        || (server.count("/other") == 4).then_some(()),
    );
}

#[test]
fn synchronous_mode_answers_with_the_verdict() {
    let server = CountingServer::start();
    let svc = start(&[]);
    let ok = payload(
        "sync",
        json!({"cmd": format!("hey -n 10 -c 2 {}", server.url("/ok")), "wait": "true", "maxErrorRate": "1%"}),
    );
    let (code, body) = svc.post("/", ok);
    assert_eq!(code, 200, "{body}");
    let r: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(r["summary"]["requests"], 10);
    assert_eq!(server.count("/ok"), 10);
    let bad = payload(
        "sync",
        json!({"cmd": format!("hey -n 10 -c 2 {}", server.url("/fail")), "wait": "true", "maxErrorRate": "1%"}),
    );
    let (code, body) = svc.post("/", bad);
    assert_eq!(code, 500, "{body}");
    let r: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(r["state"], "failed");
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("exceeds maxErrorRate"),
        "{r}"
    );
    assert_eq!(r["summary"]["status_codes"]["503"], 10);
}

#[test]
fn goose_scenario_from_metadata() {
    let server = CountingServer::start();
    let svc = start(&[]);
    let scenario = "- path: /a\n  weight: 3\n- method: POST\n  path: /b\n  body: '{\"x\":1}'\n  expectStatus: 200\n";
    let meta = json!({"type": "goose", "host": format!("http://{}", server.addr), "users": "2", "totalRequests": "40",
        "scenario": scenario, "wait": "true"});
    let (code, body) = svc.post("/", payload("scn", meta));
    assert_eq!(code, 200, "{body}");
    assert_eq!(server.count("/a") + server.count("/b"), 40);
    let a = server.count("/a");
    assert!(
        (27..=33).contains(&a),
        "weights 3:1 over 40 requests, /a got {a}"
    );
}

#[test]
fn killing_a_run_stops_its_traffic() {
    let server = CountingServer::start();
    // --timeout kills a task that runs longer: the worker process dies and the traffic stops.
    let svc = start(&["--timeout", "2s"]);
    let (code, _) = svc.post(
        "/",
        payload(
            "long",
            json!({"cmd": format!("hey -z 1m -c 2 -q 50 {}", server.url("/long"))}),
        ),
    );
    assert_eq!(code, 202);
    let r = wait_for("the run to be killed", Duration::from_secs(30), || {
        svc.results("test", "long")
            .filter(|r| r["state"] != "running")
    });
    assert_eq!(r["state"], "cancelled", "{r}");
    assert!(r["error"].as_str().unwrap().contains("--timeout 2s"), "{r}");
    let stopped = settled(Duration::from_secs(10), Duration::from_millis(500), || {
        server.count("/long")
    });
    assert!(stopped > 0);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        server.count("/long"),
        stopped,
        "traffic went on after the kill"
    );
}

#[test]
fn gates_behave_like_flaggers() {
    let svc = start(&[]);
    let p = payload("gated", json!({}));
    for (kind, _) in [("gate", ()), ("rollback", ())] {
        assert_eq!(
            svc.post(&format!("/{kind}/check"), p.clone()).0,
            403,
            "{kind} closed by default"
        );
        assert_eq!(svc.post(&format!("/{kind}/open"), p.clone()).0, 202);
        assert_eq!(svc.post(&format!("/{kind}/check"), p.clone()).0, 200);
        assert_eq!(
            svc.post(
                &format!("/{kind}/check"),
                payload("someone-else", json!({}))
            )
            .0,
            403
        );
        assert_eq!(svc.post(&format!("/{kind}/close"), p.clone()).0, 202);
        assert_eq!(svc.post(&format!("/{kind}/check"), p.clone()).0, 403);
    }
    assert_eq!(svc.post("/gate/approve", p.clone()).0, 200);
    assert_eq!(svc.post("/gate/halt", p.clone()).0, 403);
    // Opening the promotion gate does not open the rollback gate.
    svc.post("/gate/open", p.clone());
    assert_eq!(svc.post("/rollback/check", p).0, 403);
}

#[test]
fn bad_input_gets_a_4xx_that_says_what_to_fix() {
    let svc = start(&["--namespace-regexp", "^(test|staging)$"]);
    let post_raw = |body: &str| http("POST", &format!("{}/", svc.base), body);
    let (code, msg) = post_raw("{not json");
    assert_eq!(code, 400);
    assert!(msg.contains("malformed payload"), "{msg}");
    let (code, msg) = post_raw(r#"{"namespace":"test"}"#);
    assert_eq!(code, 400);
    assert!(msg.contains("name"), "{msg}");
    for (meta, want) in [
        (json!({}), "metadata not found"),
        (
            json!({"type": "ngrinder"}),
            "'ngrinder' is not run by serin",
        ),
        (json!({"type": "jmeter"}), "'jmeter' is not supported"),
        (
            json!({"cmd": "hey -q x http://127.0.0.1:1/"}),
            "-q: expected a number, got 'x'",
        ),
        (json!({"cmd": "hey -z 1m"}), "missing the target URL"),
        (json!({"type": "bash", "cmd": "echo hi"}), "--allow-shell"),
        (
            json!({"cmd": "curl -s http://127.0.0.1:1/ | sh"}),
            "`sh` (a program piped to that is not grep) needs a shell",
        ),
        (json!({"type": "cmd"}), "metadata.cmd is missing"),
    ] {
        let (code, msg) = svc.post("/", payload("web", meta.clone()));
        assert_eq!(code, 400, "{meta}: {msg}");
        assert!(msg.contains(want), "{meta}: {msg}");
    }
    let outside =
        json!({"name": "web", "namespace": "prod", "metadata": {"cmd": "hey http://127.0.0.1:1/"}});
    let (code, msg) = svc.post("/", outside);
    assert_eq!(code, 403);
    assert!(msg.contains("--namespace-regexp"), "{msg}");
    let huge = format!(
        r#"{{"name":"web","namespace":"test","metadata":{{"cmd":"{}"}}}}"#,
        "x".repeat(100_000)
    );
    let (code, msg) = post_raw(&huge);
    assert_eq!(code, 413);
    assert!(msg.contains("over 65536 bytes"), "{msg}");
    assert_eq!(
        http("GET", &format!("{}/results/test/never", svc.base), "").0,
        404
    );
    // Still serving after all of that.
    assert_eq!(http("GET", &format!("{}/healthz", svc.base), "").0, 200);
}

#[test]
fn shell_tasks_run_only_with_the_opt_in() {
    let svc = start(&["--allow-shell"]);
    let (code, body) = svc.post(
        "/",
        payload("sh", json!({"type": "bash", "cmd": "echo from-bash"})),
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("from-bash"), "{body}");
    let (code, _) = svc.post("/", payload("sh", json!({"type": "bash", "cmd": "exit 3"})));
    assert_eq!(code, 500);
}

#[test]
fn a_running_run_is_scored_over_the_window_asked_for() {
    let server = CountingServer::start();
    let svc = start(&[]);
    let window = |name: &str, w: &str| -> serde_json::Value {
        let (code, body) = http(
            "GET",
            &format!("{}/results/test/{name}?window={w}", svc.base),
            "",
        );
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    };
    // Every request fails (/fail… answers 503), 20 req/s, far longer than the test.
    let cmd = format!("hey -z 10m -q 10 -c 2 {}", server.url("/fail-all"));
    let (code, body) = svc.post("/", payload("web", json!({"cmd": cmd})));
    assert_eq!(code, 202, "{body}");
    let fresh = window("web", "1h");
    assert_eq!(fresh["complete"], false, "{fresh}");
    assert!(
        fresh["message"]
            .as_str()
            .unwrap()
            .contains("first 3600s window"),
        "{fresh}"
    );
    // A 2 s window is covered once the run is 1 s old (the per-second tolerance).
    let w = wait_for(
        "a covered 2s window with requests",
        Duration::from_secs(30),
        || {
            Some(window("web", "2s"))
                .filter(|w| w["complete"] == true && w["requests"].as_u64() > Some(0))
        },
    );
    assert_eq!(w["running"], 1);
    assert_eq!(w["error_rate"], 1.0, "every request to /fail… fails: {w}");
    assert_eq!(w["requests"], w["status_codes"]["503"]);
    // The run is still going: the latest record has no summary, the window has figures.
    assert_eq!(svc.results("test", "web").unwrap()["state"], "running");
    // `{{ target }}` renders to web-canary: the same runs answer.
    assert_eq!(window("web-canary", "2s")["canary"], "test/web");
    let (code, _) = http(
        "GET",
        &format!("{}/results/test/web?window=2h", svc.base),
        "",
    );
    assert_eq!(code, 400);
    let (code, _) = http(
        "GET",
        &format!("{}/results/test/other?window=1m", svc.base),
        "",
    );
    assert_eq!(code, 404);
}
