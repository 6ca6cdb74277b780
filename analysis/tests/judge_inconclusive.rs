//! The judge's policy for too little traffic, on the virtual clock: it holds the last weight for
//! `holdIntervals`, then promotes or pauses for a person as `onInconclusive` says — whatever
//! `noDataPolicy` is, and never by rolling back.

use serin_analysis::sim::{
    MetricScript, Scenario, Scripted, Simulation, Verdict, Window, simulate,
};
use serin_analysis::{Action, ReasonCode, Sample};
use serin_api::CanarySpec;

const MINUTE: u64 = 60_000;

/// 10% steps to 50%, 1-minute intervals, threshold 1, default noDataPolicy (no data fails).
fn canary(judge: serde_json::Value) -> CanarySpec {
    serde_json::from_value(serde_json::json!({
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "service": {"port": 80},
        "analysis": {"interval": "1m", "threshold": 1, "stepWeight": 10, "maxWeight": 50,
                     "metrics": [{"name": "request-success-rate", "interval": "1m", "judge": judge}]}
    }))
    .unwrap()
}

fn counts(canary: f64, canary_failed: f64, primary: f64, primary_failed: f64) -> Scripted {
    let s = |count, failures| Sample {
        count,
        failures,
        values: vec![],
    };
    Scripted::Counts {
        canary: s(canary, canary_failed),
        primary: s(primary, primary_failed),
    }
}

fn script(from_ms: u64, result: Scripted) -> MetricScript {
    MetricScript {
        name: "request-success-rate".into(),
        window: Window {
            from_ms,
            to_ms: None,
        },
        result,
    }
}

fn run(spec: &CanarySpec, metrics: Vec<MetricScript>, minutes: u64) -> Simulation {
    let scenario = Scenario {
        metrics,
        duration_ms: minutes * MINUTE,
        ..Default::default()
    };
    simulate("prod", "web", spec, &scenario)
}

fn messages(s: &Simulation) -> Vec<&String> {
    s.timeline.iter().flat_map(|e| &e.messages).collect()
}

fn halted_alerts(s: &Simulation) -> usize {
    s.timeline
        .iter()
        .flat_map(|e| &e.actions)
        .filter(
            |a| matches!(a, Action::SendAlert { reason, .. } if reason.code == ReasonCode::Halted),
        )
        .count()
}

/// A quiet service: 10 requests per side per minute, nothing failing — no test could catch
/// 1.5x on that.
fn thin() -> Scripted {
    counts(10.0, 0.0, 10.0, 0.0)
}

#[test]
fn thin_traffic_holds_then_pauses_for_a_person_without_rolling_back() {
    let spec = canary(serde_json::json!({"holdIntervals": 3}));
    let s = run(&spec, vec![script(0, thin())], 40);
    assert_eq!(s.verdict, Verdict::Undecided, "{:#?}", s.timeline);
    let last = s.timeline.last().unwrap();
    assert_eq!(last.weight, 50, "stays at the last weight");
    assert_eq!(last.failed_checks, 0, "holding is never a failed check");
    assert_eq!(s.status.no_data_checks, 0, "nor a no-data check");
    let said = messages(&s);
    for n in 1..=3 {
        let hold = format!("holding at the current weight for more data ({n}/3)");
        assert_eq!(
            said.iter().filter(|m| m.contains(&hold)).count(),
            1,
            "{said:#?}"
        );
    }
    let paused = said
        .iter()
        .filter(|m| m.contains("inconclusive, pausing for a person"))
        .count();
    assert!(paused > 20, "pauses at every later look: {said:#?}");
    assert!(said.iter().all(|m| !m.contains("Rolling back")));
    assert_eq!(halted_alerts(&s), 1, "one alert when the pause begins");
}

#[test]
fn thin_traffic_promotes_after_the_hold_when_configured() {
    let spec = canary(serde_json::json!({"holdIntervals": 2, "onInconclusive": "promote"}));
    let s = run(&spec, vec![script(0, thin())], 40);
    assert_eq!(s.verdict, Verdict::Promoted, "{:#?}", s.timeline);
    let said = messages(&s);
    // Promoted after the 5 planned looks and 2 held ones, not before.
    let held: Vec<&String> = said
        .iter()
        .copied()
        .filter(|m| m.contains("holding at the current weight"))
        .collect();
    assert_eq!(held.len(), 2, "{said:#?}");
}

#[test]
fn traffic_arriving_during_the_hold_decides() {
    let spec = canary(serde_json::json!({"holdIntervals": 10}));
    // Thin until minute 8, then a busy hour on both sides.
    let busy_healthy = counts(5_000.0, 50.0, 5_000.0, 50.0);
    let s = run(
        &spec,
        vec![script(0, thin()), script(8 * MINUTE, busy_healthy)],
        40,
    );
    assert_eq!(s.verdict, Verdict::Promoted, "{:#?}", s.timeline);
    let said = messages(&s);
    assert!(
        said.iter()
            .any(|m| m.contains("holding at the current weight"))
    );
    // Held while the traffic could not show 1.5x, promoted once it could.
    assert!(said.iter().all(|m| !m.contains("pausing")), "{said:#?}");

    let busy_regressed = counts(5_000.0, 150.0, 5_000.0, 50.0);
    let s = run(
        &spec,
        vec![script(0, thin()), script(8 * MINUTE, busy_regressed)],
        40,
    );
    assert_eq!(s.verdict, Verdict::RolledBack, "{:#?}", s.timeline);
    assert!(
        messages(&s)
            .iter()
            .any(|m| m.contains("error ratio") && m.contains("rolling back")),
    );
}

#[test]
fn a_no_data_limit_does_not_roll_back_a_holding_judge() {
    // noDataPolicy halt with limit 2 rolls back after two no-data checks — but a judge's hold
    // is not one.
    let mut spec = canary(serde_json::json!({"holdIntervals": 5}));
    let analysis = spec.analysis.as_mut().unwrap();
    analysis.no_data_policy =
        Some(serde_json::from_value(serde_json::json!({"action": "halt", "limit": 2})).unwrap());
    let s = run(&spec, vec![script(0, thin())], 20);
    assert_eq!(s.verdict, Verdict::Undecided, "{:#?}", s.timeline);
    assert!(messages(&s).iter().all(|m| !m.contains("Rolling back")));
}

/// Looks the judge of `request-success-rate` took, from `status.judge`.
fn looks(s: &Simulation) -> u64 {
    let record = s.status.judge.as_ref().expect("status.judge");
    record.states["request-success-rate"].0["intervals"]
        .as_u64()
        .unwrap()
}

#[test]
fn a_replayed_tick_counts_its_interval_once() {
    // A confirm-traffic-increase gate is asked after the metrics, so every advancing tick is
    // replayed with the metric answers already in hand: the judge must still look once.
    let healthy = counts(5_000.0, 50.0, 5_000.0, 50.0);
    let plain = canary(serde_json::json!({}));
    let mut gated = plain.clone();
    gated.analysis.as_mut().unwrap().webhooks = Some(vec![
        serde_json::from_value(serde_json::json!(
            {"name": "gate", "type": "confirm-traffic-increase", "url": "http://gate.test/"}
        ))
        .unwrap(),
    ]);
    let a = run(&plain, vec![script(0, healthy.clone())], 40);
    let b = run(&gated, vec![script(0, healthy)], 40);
    assert_eq!(a.verdict, Verdict::Promoted);
    assert_eq!(b.verdict, Verdict::Promoted, "{:#?}", b.timeline);
    assert_eq!(looks(&a), 5, "one look per planned step");
    assert_eq!(looks(&b), looks(&a), "replays did not count twice");
}
