//! `serin demo` with no arguments runs both releases to completion.

mod local_support;

use std::time::Duration;

use local_support::*;

#[test]
fn demo_promotes_v2_and_rolls_back_v3() {
    let out = run(
        &["demo".into(), "--interval".into(), "1s".into()],
        Duration::from_secs(90),
    );
    assert_eq!(out.code, 0, "{}", out.stdout);
    let done = out.of("done");
    assert_eq!(done.len(), 2, "{}", out.stdout);
    assert_eq!(done[0]["result"], "promoted");
    assert_eq!(done[1]["result"], "rolledBack");
    let reason = done[1]["message"].as_str().unwrap();
    assert!(
        reason.contains("threshold reached 2")
            && reason.contains("request-success-rate 80 < min 99"),
        "{reason}"
    );
    out.assert_shares(40);
}

#[test]
fn demo_rolls_back_a_slow_canary_on_latency() {
    let out = run(
        &[
            "demo".into(),
            "--interval".into(),
            "1s".into(),
            "--canary-error-rate".into(),
            "0".into(),
            "--canary-latency".into(),
            "800ms".into(),
        ],
        Duration::from_secs(90),
    );
    assert_eq!(out.code, 0, "{}", out.stdout);
    let done = out.of("done");
    assert_eq!(done[1]["result"], "rolledBack");
    assert!(
        done[1]["message"]
            .as_str()
            .unwrap()
            .contains("request-duration"),
        "{}",
        done[1]
    );
}

#[test]
fn demo_refuses_a_bad_error_rate() {
    let out = run(
        &["demo".into(), "--canary-error-rate".into(), "2".into()],
        Duration::from_secs(30),
    );
    assert_eq!(out.code, 2);
}
