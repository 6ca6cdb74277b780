//! `serin run` on the embedded router with demo apps and generated load.

mod local_support;

use std::time::Duration;

use local_support::*;

#[test]
fn healthy_canary_is_promoted_with_exact_shares() {
    let dir = tempfile::tempdir().unwrap();
    let canary = canary_file(dir.path(), "1s", 2, 20, 60);
    let out = run(
        &run_args(&canary, "embedded", 0.0, "hey -c 2 -q 50"),
        Duration::from_secs(90),
    );
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(out.done()["result"], "promoted");
    let weights: Vec<u64> = out
        .of("tick")
        .iter()
        .filter_map(|t| t["weight"].as_u64())
        .collect();
    for w in [20, 40, 60] {
        assert!(
            weights.contains(&w),
            "weight {w} never reached: {weights:?}"
        );
    }
    assert_eq!(out.failed_check_events(), 0, "{}", out.stdout);
    out.assert_shares(40);
}

#[test]
fn canary_failing_a_fifth_of_requests_is_rolled_back_after_threshold_checks() {
    let dir = tempfile::tempdir().unwrap();
    let canary = canary_file(dir.path(), "1s", 3, 20, 60);
    let out = run(
        &run_args(&canary, "embedded", 0.2, "hey -c 2 -q 50"),
        Duration::from_secs(90),
    );
    assert_eq!(out.code, 1, "{}", out.stdout);
    let done = out.done();
    assert_eq!(done["result"], "rolledBack");
    let msg = done["message"].as_str().unwrap();
    assert!(
        msg.contains("threshold reached 3") && msg.contains("request-success-rate"),
        "{msg}"
    );
    assert_eq!(out.max_failed_checks(), 3, "{}", out.stdout);
    assert_eq!(out.failing_ticks(), 3, "{}", out.stdout);
    // The failing metric's value is the injected error rate, measured by the router.
    let tick = out
        .of("tick")
        .into_iter()
        .rev()
        .find(|t| t["failedChecks"] == 3)
        .unwrap();
    let sr = tick["metrics"][0]["value"].as_f64().unwrap();
    assert!((sr - 80.0).abs() < 1.0, "success rate {sr}");
    // Traffic went back to the primary: the last weight is 0.
    assert_eq!(out.of("tick").last().unwrap()["weight"], 0);
    out.assert_shares(40);
}

#[test]
fn bad_input_names_the_flag_or_field() {
    let dir = tempfile::tempdir().unwrap();
    let canary = canary_file(dir.path(), "1s", 2, 20, 60);
    let mut args = run_args(&canary, "embedded", 0.0, "hey -q fast");
    let out = run(&args, Duration::from_secs(30));
    assert_eq!(out.code, 2);
    args = run_args(
        &dir.path().join("missing.yaml"),
        "embedded",
        0.0,
        "hey -q 1",
    );
    let out = run(&args, Duration::from_secs(30));
    assert_eq!(out.code, 2);
    let empty = dir.path().join("empty.yaml");
    std::fs::write(&empty, "kind: MetricTemplate\nmetadata: {name: x}\nspec: {provider: {type: prometheus}, query: up}\n").unwrap();
    let out = run(
        &run_args(&empty, "embedded", 0.0, "hey -q 1"),
        Duration::from_secs(30),
    );
    assert_eq!(out.code, 2);
}
