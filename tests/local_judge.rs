//! `serin run` on the embedded router with the statistical judge: the primary fails 2% of its
//! requests, the canary 6% (3x); the judge, fed the router's own counts per backend, rolls the
//! canary back and says why (the ratio, the evidence against its bar). Three-second intervals at
//! ~400 req/s give evidence far above the bar (about 5e5 against 4000 when measured), on the
//! embedded router and on a real nginx.

mod local_support;

use std::time::Duration;

use local_support::*;

#[test]
fn judge_rolls_back_a_canary_with_three_times_the_primarys_errors() {
    three_times_the_errors("embedded");
}

/// The same on a real nginx: the counts per backend come from its access log.
#[test]
fn judge_on_nginx_rolls_back_three_times_the_errors() {
    require("nginx", "apt-get install nginx");
    three_times_the_errors("nginx");
}

fn three_times_the_errors(router: &str) {
    let dir = tempfile::tempdir().unwrap();
    let canary = dir.path().join("canary.yaml");
    std::fs::write(
        &canary,
        r#"apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: web
  namespace: test
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  service: {port: 80}
  analysis:
    interval: 3s
    threshold: 1
    maxWeight: 60
    stepWeight: 20
    metrics:
      - name: request-success-rate
        interval: 3s
        judge: {type: sequential, alpha: 0.01, minEffect: 1.5}
"#,
    )
    .unwrap();
    let mut args = run_args(&canary, router, 0.06, "hey -c 4 -q 100");
    // The primary is not perfect either: the judge compares, it does not need a fixed range.
    let primary = args.iter().position(|a| a == "--primary-cmd").unwrap() + 1;
    args[primary] = format!(
        "{} demo-app --port {{port}} --version v1 --error-rate 0.02",
        serin()
    );
    let out = run(&args, Duration::from_secs(120));
    assert_eq!(out.code, 1, "{}", out.stdout);
    let done = out.done();
    assert_eq!(done["result"], "rolledBack", "{}", out.stdout);
    let msg = done["message"].as_str().unwrap();
    eprintln!("rollback reason: {msg}");
    assert!(msg.contains("request-success-rate: error ratio "), "{msg}");
    assert!(msg.contains("evidence ") && msg.contains(" ≥ "), "{msg}");
    assert!(msg.contains("rolling back"), "{msg}");
    // The ratio the judge estimated is near the injected 3x.
    let ratio: f64 = msg
        .split("error ratio ")
        .nth(1)
        .and_then(|r| r.split('x').next())
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no ratio in {msg}"));
    assert!((2.0..=4.5).contains(&ratio), "ratio {ratio} in {msg}");
    // Counts per side are in the reason, from the router (both sides served requests).
    assert!(
        msg.contains("(canary ") && msg.contains(", primary "),
        "{msg}"
    );
    // Traffic went back to the primary.
    assert_eq!(
        out.of("tick").last().unwrap()["weight"],
        0,
        "{}",
        out.stdout
    );
}

#[test]
fn judge_rolls_back_a_slower_canary_on_the_routers_latencies() {
    let dir = tempfile::tempdir().unwrap();
    let canary = dir.path().join("canary.yaml");
    std::fs::write(
        &canary,
        r#"apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: web
  namespace: test
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  service: {port: 80}
  analysis:
    interval: 2s
    threshold: 1
    maxWeight: 60
    stepWeight: 20
    metrics:
      - name: request-duration
        interval: 2s
        judge: {type: sequential, alpha: 0.01, latencyQuantile: 0.99}
"#,
    )
    .unwrap();
    let mut args = run_args(&canary, "embedded", 0.0, "hey -c 4 -q 100");
    // Every canary request waits 50 ms more than the primary's.
    let canary_cmd = args.iter().position(|a| a == "--canary-cmd").unwrap() + 1;
    args[canary_cmd] = format!(
        "{} demo-app --port {{port}} --version v2 --latency 50ms",
        serin()
    );
    let out = run(&args, Duration::from_secs(120));
    assert_eq!(out.code, 1, "{}", out.stdout);
    let done = out.done();
    assert_eq!(done["result"], "rolledBack", "{}", out.stdout);
    let msg = done["message"].as_str().unwrap();
    eprintln!("rollback reason: {msg}");
    assert!(
        msg.contains("request-duration: slow-request ratio ")
            && msg.contains(" ≥ ")
            && msg.contains("rolling back"),
        "{msg}"
    );
}
