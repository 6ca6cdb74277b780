//! The seed Canaries on the virtual clock: Flagger's timing formulas (reference/flagger.md
//! §3.3) and the rollback after exactly `threshold` failed checks.

use serin_analysis::sim::{self, MetricScript, Scenario, Scripted, Verdict, Window};
use serin_api::{Canary, Phase};

const MIN: u64 = 60_000;

fn seed(file: &str) -> Canary {
    let path = format!("{}/tests/fixtures/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).unwrap();
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
    let doc = docs
        .into_iter()
        .find(|d| d["kind"] == "Canary")
        .expect("a Canary in the fixture");
    serde_json::from_value(doc).unwrap()
}

fn scenario(metrics: Vec<MetricScript>) -> Scenario {
    Scenario {
        metrics,
        duration_ms: 60 * MIN,
        ..Default::default()
    }
}

#[test]
fn web_promotes_through_10_20_30_40_50() {
    let c = seed("web-canary.yaml");
    let s = sim::simulate("prod", "web", &c.spec, &scenario(vec![]));
    assert_eq!(s.verdict, Verdict::Promoted);
    let advances: Vec<(u64, u32)> = s
        .timeline
        .iter()
        .filter(|e| e.messages.iter().any(|m| m.contains("canary weight")))
        .map(|e| (e.at_ms / MIN, e.weight))
        .collect();
    assert_eq!(advances, vec![(1, 10), (2, 20), (3, 30), (4, 40), (5, 50)]);
    let phases: Vec<(u64, Phase)> = s
        .timeline
        .iter()
        .map(|e| (e.at_ms / MIN, e.phase))
        .collect();
    assert_eq!(phases[0], (0, Phase::Progressing));
    assert_eq!(phases[6], (6, Phase::Promoting));
    assert_eq!(phases[7], (7, Phase::Finalising));
    assert_eq!(phases[8], (8, Phase::Succeeded));
    assert_eq!(s.timeline.len(), 9);
    // Unscripted metrics are reported with the passing value used.
    let names: Vec<&str> = s.defaulted.iter().map(|d| d.metric.as_str()).collect();
    assert_eq!(names, vec!["error-rate", "request-duration"]);
}

#[test]
fn web_rolls_back_after_exactly_three_failed_checks() {
    let c = seed("web-canary.yaml");
    let bad = MetricScript {
        name: "error-rate".into(),
        window: Window {
            from_ms: 3 * MIN,
            to_ms: None,
        },
        result: Scripted::Value(4.2),
    };
    let s = sim::simulate("prod", "web", &c.spec, &scenario(vec![bad]));
    assert_eq!(s.verdict, Verdict::RolledBack);
    let last = s.timeline.last().unwrap();
    assert_eq!(last.at_ms, 5 * MIN, "three failed checks at 3m, 4m, 5m");
    assert_eq!(last.phase, Phase::Failed);
    assert_eq!(last.weight, 0);
    assert_eq!(last.failed_checks, 3, "failedChecks is kept after rollback");
    let failed: Vec<u32> = s.timeline.iter().map(|e| e.failed_checks).collect();
    assert_eq!(failed, vec![0, 0, 0, 1, 2, 3]);
    // The weight holds at 20 while checks fail.
    assert_eq!(s.timeline[4].weight, 20);
    assert!(
        s.timeline[4].messages.contains(
            &"Warning: Halt advancement of prod/web: error-rate 4.2 > max 1 (failed checks 2/3)"
                .to_string()
        ),
        "{:?}",
        s.timeline[4].messages
    );
    assert!(
        last.messages.contains(
            &"Warning: Rolling back prod/web: failed checks threshold reached 3: error-rate 4.2 > max 1"
                .to_string()
        ),
        "{:?}",
        last.messages
    );
    assert_eq!(s.status.metrics[0].name, "error-rate");
    assert_eq!(s.status.metrics[0].value, Some(4.2));
}

#[test]
fn podinfo_promotes_at_10s_steps_of_5_to_50() {
    let c = seed("podinfo-traefik-canary.yaml");
    let s = sim::simulate("demo-canary", "podinfo", &c.spec, &scenario(vec![]));
    assert_eq!(s.verdict, Verdict::Promoted);
    let weights: Vec<u32> = s
        .timeline
        .iter()
        .filter(|e| e.messages.iter().any(|m| m.contains("canary weight")))
        .map(|e| e.weight)
        .collect();
    assert_eq!(weights, (1..=10).map(|i| i * 5).collect::<Vec<_>>());
    // success ≈ interval × maxWeight/stepWeight (+ promote, finalise, succeed)
    assert_eq!(s.timeline.last().unwrap().at_ms, (10 + 3) * 10_000);
}

#[test]
fn podinfo_rolls_back_after_ten_low_success_rates() {
    let c = seed("podinfo-traefik-canary.yaml");
    let bad = MetricScript {
        name: "request-success-rate".into(),
        window: Window {
            from_ms: 20_000,
            to_ms: None,
        },
        result: Scripted::Value(90.0),
    };
    let s = sim::simulate("demo-canary", "podinfo", &c.spec, &scenario(vec![bad]));
    assert_eq!(s.verdict, Verdict::RolledBack);
    // rollback ≈ interval × threshold
    assert_eq!(s.timeline.last().unwrap().at_ms, 20_000 + 9 * 10_000);
    assert_eq!(s.status.failed_checks, 10);
}
