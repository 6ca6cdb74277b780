//! Flagger's scheduler cases (reference/flagger.md §8), on the engine alone.

mod common;

use common::{World, events, not_ready, routes, spec};
use serin_analysis::{
    Action, Answers, Comparator, Conclusion, Input, Measurement, Observed, Outcome, Readiness,
    ReasonCode, Request, Sample, Severity, Tick, Verdict,
};
use serin_api::canary::CanaryMetric;
use serin_api::{CanaryStatus, Phase};

const CANARY: &str = r#"
targetRef: {name: web}
service: {port: 80}
analysis:
  interval: 1m
  threshold: 2
  maxWeight: 30
  stepWeight: 10
  metrics:
    - name: error-rate
      thresholdRange: {max: 1}
"#;

fn concluded(actions: &[Action]) -> Option<Conclusion> {
    actions.iter().find_map(|a| match a {
        Action::Concluded { result } => Some(*result),
        _ => None,
    })
}

#[test]
fn init_waits_for_the_primary_then_is_initialized() {
    let mut w = World::new(spec(CANARY));
    w.status = CanaryStatus::default();
    w.obs.primary = not_ready();
    let a = w.tick();
    assert!(matches!(&a[0], Action::Initialize { stable_revision } if stable_revision == "v2"));
    assert_eq!(w.phase(), Phase::Initializing);
    w.obs.primary = Readiness::Ready;
    let a = w.tick();
    assert_eq!(w.phase(), Phase::Initialized);
    assert_eq!(w.status.last_promoted_spec.as_deref(), Some("v2"));
    assert!(events(&a).contains(&"Initialization done! prod/web".to_string()));
    // Idle while nothing changes.
    assert!(w.tick().is_empty());
    assert_eq!(w.phase(), Phase::Initialized);
}

#[test]
fn new_revision_scales_up_the_canary_and_starts_progressing() {
    let mut w = World::new(spec(CANARY));
    let a = w.tick();
    assert_eq!(w.phase(), Phase::Progressing);
    assert!(
        a.iter()
            .any(|a| matches!(a, Action::ScaleUpCanary { revision, .. } if revision == "v2"))
    );
    assert_eq!(w.status.last_applied_spec.as_deref(), Some("v2"));
    assert_eq!(w.weight(), 0);
    // Analysis starts with the next tick: first step.
    let a = w.tick();
    assert_eq!(routes(&a), vec![(90, 10, false)]);
    assert!(events(&a).contains(&"Starting canary analysis for prod/web".to_string()));
}

#[test]
fn promotion_runs_to_succeeded_with_the_weights() {
    let mut w = World::new(spec(CANARY));
    let mut weights = vec![];
    let mut promote_at = None;
    for i in 0..20 {
        let a = w.tick();
        weights.push(w.weight());
        if a.iter()
            .any(|a| matches!(a, Action::Promote { revision, .. } if revision == "v2"))
        {
            promote_at = Some(i);
        }
        if w.phase() == Phase::Succeeded {
            assert_eq!(concluded(&a), Some(Conclusion::Promoted));
            assert!(
                a.iter()
                    .any(|a| matches!(a, Action::ScaleDownCanary { .. }))
            );
            break;
        }
    }
    assert_eq!(weights, vec![0, 10, 20, 30, 30, 0, 0]);
    assert_eq!(promote_at, Some(4));
    assert_eq!(w.status.last_promoted_spec.as_deref(), Some("v2"));
    // Then idle.
    assert!(w.tick().is_empty());
}

#[test]
fn promotion_waits_for_the_stable_workload_to_roll_out() {
    let mut w = World::new(spec(CANARY));
    w.until(Phase::Promoting, 10);
    w.obs.primary = not_ready();
    let a = w.tick();
    assert_eq!(w.phase(), Phase::Promoting);
    assert!(
        routes(&a).is_empty(),
        "traffic stays on the canary during the rollout"
    );
    w.obs.primary = Readiness::Ready;
    let a = w.tick();
    assert_eq!(routes(&a), vec![(100, 0, false)]);
    assert_eq!(w.phase(), Phase::Finalising);
}

#[test]
fn step_weight_promotion_shifts_back_gradually() {
    let mut s = spec(CANARY);
    s.analysis.as_mut().unwrap().step_weight_promotion = Some(20);
    let mut w = World::new(s);
    w.until(Phase::Promoting, 10);
    assert_eq!(routes(&w.tick()), vec![(90, 10, false)]);
    assert_eq!(w.phase(), Phase::Promoting);
    assert_eq!(routes(&w.tick()), vec![(100, 0, false)]);
    assert_eq!(w.phase(), Phase::Finalising);
}

#[test]
fn failing_metric_rolls_back_at_the_threshold_and_keeps_failed_checks() {
    let mut w = World::new(spec(CANARY));
    w.metrics
        .insert("error-rate".into(), Measurement::Value { value: 4.2 });
    w.tick(); // Progressing
    w.tick(); // first tick: pre-rollout, step 10 (no metric check at weight 0)
    let a = w.tick();
    assert_eq!(w.status.failed_checks, 1);
    assert_eq!(
        events(&a),
        vec!["Halt advancement of prod/web: error-rate 4.2 > max 1 (failed checks 1/2)"]
    );
    assert_eq!(w.weight(), 10);
    let a = w.tick();
    assert_eq!(w.phase(), Phase::Failed);
    assert_eq!(
        w.status.failed_checks, 2,
        "kept after rollback (not Flagger's reset)"
    );
    assert_eq!(w.weight(), 0);
    assert_eq!(routes(&a), vec![(100, 0, false)]);
    assert_eq!(concluded(&a), Some(Conclusion::RolledBack));
    let ev = events(&a);
    assert_eq!(
        ev[0],
        "Rolling back prod/web: failed checks threshold reached 2: error-rate 4.2 > max 1"
    );
    let reason = a
        .iter()
        .find_map(|a| match a {
            Action::SendAlert {
                severity, reason, ..
            } => Some((*severity, reason.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(reason.0, Severity::Error);
    assert_eq!(reason.1.code, ReasonCode::RollbackThreshold);
    assert_eq!(reason.1.checks[0].value, Some(4.2));
    assert_eq!(w.status.metrics[0].outcome, Outcome::Fail);
    // Failed is idle: no retry without a change or a retry request.
    assert!(w.tick().is_empty());
}

#[test]
fn no_data_and_errors_count_as_failed_checks_by_default_and_are_named() {
    let mut w = World::new(spec(CANARY));
    w.metrics.insert(
        "error-rate".into(),
        Measurement::NoData {
            message: "no values found".into(),
        },
    );
    w.tick();
    w.tick();
    let a = w.tick();
    assert_eq!(w.status.failed_checks, 1);
    assert_eq!(w.status.metrics[0].outcome, Outcome::NoData);
    assert!(
        events(&a)[0].contains("no data for error-rate: no values found"),
        "{a:?}"
    );
    w.metrics.insert(
        "error-rate".into(),
        Measurement::Error {
            message: "connection refused".into(),
        },
    );
    w.tick();
    assert_eq!(w.phase(), Phase::Failed);
    assert_eq!(w.status.metrics[0].outcome, Outcome::Error);
}

#[test]
fn no_data_policy_halt_holds_and_rolls_back_only_at_the_limit() {
    let yaml = format!("{CANARY}  noDataPolicy: {{action: halt, limit: 3}}\n");
    let mut w = World::new(spec(&yaml));
    w.tick();
    w.tick(); // weight 10
    w.metrics.insert(
        "error-rate".into(),
        Measurement::NoData {
            message: "no values found".into(),
        },
    );
    let a = w.tick();
    assert_eq!(w.status.failed_checks, 0);
    assert_eq!(w.status.no_data_checks, 1);
    assert_eq!(w.weight(), 10, "halted, not advanced");
    assert_eq!(
        events(&a),
        vec!["Halt advancement of prod/web: no data for error-rate: no values found (no data 1/3)"]
    );
    // Data comes back: the counter resets and the analysis continues.
    w.metrics.remove("error-rate");
    w.tick();
    assert_eq!(w.status.no_data_checks, 0);
    assert_eq!(w.weight(), 20);
    w.metrics.insert(
        "error-rate".into(),
        Measurement::NoData {
            message: "no values found".into(),
        },
    );
    w.tick();
    w.tick();
    assert_eq!(w.phase(), Phase::Progressing);
    let a = w.tick();
    assert_eq!(w.phase(), Phase::Failed);
    assert!(events(&a)[0].starts_with(
        "Rolling back prod/web: no data for 3 consecutive checks (limit 3): no data for error-rate"
    ));
    // A failing value still counts as a failed check under the halt policy.
    let mut w = World::new(spec(&yaml));
    w.tick();
    w.tick();
    w.metrics
        .insert("error-rate".into(), Measurement::Value { value: 3.0 });
    w.tick();
    assert_eq!(w.status.failed_checks, 1);
}

#[test]
fn skip_analysis_promotes_at_once_and_runs_post_rollout() {
    let yaml = format!(
        "{CANARY}  webhooks:\n    - {{name: notify, type: post-rollout, url: http://x/}}\nskipAnalysis: true\n"
    );
    let mut w = World::new(spec(&yaml));
    let a = w.tick();
    assert_eq!(w.phase(), Phase::Succeeded);
    assert_eq!(concluded(&a), Some(Conclusion::Skipped));
    assert!(
        a.iter()
            .any(|a| matches!(a, Action::Promote { revision, .. } if revision == "v2"))
    );
    assert!(!a.iter().any(|a| matches!(a, Action::ScaleUpCanary { .. })));
    assert_eq!(w.calls, vec!["post-rollout:notify"]);
    assert_eq!(w.status.last_promoted_spec.as_deref(), Some("v2"));
}

#[test]
fn ab_testing_iterates_on_the_match_route_then_promotes() {
    let yaml = r#"
targetRef: {name: web}
service: {port: 80}
analysis:
  interval: 1m
  iterations: 3
  threshold: 2
  match:
    - headers: {x-canary: {exact: insider}}
"#;
    let mut w = World::new(spec(yaml));
    w.tick();
    let mut seen = vec![];
    for _ in 0..3 {
        let a = w.tick();
        assert_eq!(routes(&a), vec![(0, 100, false)]);
        seen.push(w.status.iterations);
    }
    assert_eq!(seen, vec![1, 2, 3]);
    let a = w.tick();
    assert!(a.iter().any(|a| matches!(a, Action::Promote { .. })));
    assert_eq!(w.phase(), Phase::Promoting);
    assert_eq!(routes(&w.tick()), vec![(100, 0, false)]);
    assert_eq!(w.phase(), Phase::Finalising);
    w.tick();
    assert_eq!(w.phase(), Phase::Succeeded);
}

#[test]
fn blue_green_iterates_then_routes_to_green_then_promotes() {
    let yaml = r#"
targetRef: {name: web}
service: {port: 80}
analysis:
  interval: 30s
  iterations: 2
  threshold: 2
"#;
    let mut w = World::new(spec(yaml));
    w.tick();
    w.tick();
    w.tick();
    assert_eq!(w.status.iterations, 2);
    let a = w.tick();
    assert_eq!(routes(&a), vec![(0, 100, false)]);
    assert_eq!(w.status.iterations, 3);
    assert_eq!(w.weight(), 100);
    let a = w.tick();
    assert!(a.iter().any(|a| matches!(a, Action::Promote { .. })));
    assert_eq!(routes(&w.tick()), vec![(100, 0, false)]);
    w.tick();
    assert_eq!(w.phase(), Phase::Succeeded);
}

#[test]
fn mirroring_comes_before_the_first_step() {
    let yaml = format!("{CANARY}  mirror: true\n");
    let mut w = World::new(spec(&yaml));
    w.tick();
    let a = w.tick();
    assert_eq!(routes(&a), vec![(100, 0, true)]);
    assert!(w.status.traffic_mirrored);
    let a = w.tick();
    assert_eq!(routes(&a), vec![(90, 10, false)]);
    assert!(!w.status.traffic_mirrored);
    // Without a router that reads back, status carries the mirror state.
    let mut w = World::new(spec(&yaml));
    w.read_back_routes = false;
    w.obs.routes = None;
    w.tick();
    assert_eq!(routes(&w.tick()), vec![(100, 0, true)]);
    assert_eq!(routes(&w.tick()), vec![(90, 10, false)]);
}

#[test]
fn new_revision_mid_run_resets_to_the_start() {
    let mut w = World::new(spec(CANARY));
    w.metrics
        .insert("error-rate".into(), Measurement::Value { value: 4.2 });
    w.tick();
    w.tick();
    w.tick();
    assert_eq!((w.weight(), w.status.failed_checks), (10, 1));
    w.obs.revision = "v3".into();
    let a = w.tick();
    assert_eq!(routes(&a), vec![(100, 0, false)]);
    assert!(
        a.iter()
            .any(|a| matches!(a, Action::ScaleUpCanary { revision, .. } if revision == "v3"))
    );
    assert_eq!(w.phase(), Phase::Progressing);
    assert_eq!(
        (w.weight(), w.status.failed_checks, w.status.iterations),
        (0, 0, 0)
    );
    assert_eq!(w.status.last_applied_spec.as_deref(), Some("v3"));
    assert!(events(&a)[0].contains("restarting analysis"));
}

#[test]
fn a_revert_to_the_stable_revision_after_failure_does_not_start_a_run() {
    let mut w = World::new(spec(CANARY));
    w.metrics
        .insert("error-rate".into(), Measurement::Value { value: 4.2 });
    w.until(Phase::Failed, 10);
    w.obs.revision = "v1".into();
    assert!(w.tick().is_empty());
    assert_eq!(w.phase(), Phase::Failed);
}

#[test]
fn confirm_rollout_holds_in_waiting_until_approved() {
    let yaml = format!(
        "{CANARY}  webhooks:\n    - {{name: gate, type: confirm-rollout, url: http://x/}}\n"
    );
    let mut w = World::new(spec(&yaml));
    w.failing_hooks.insert("gate".into());
    let a = w.tick();
    assert_eq!(w.phase(), Phase::Waiting);
    assert!(a.iter().any(|a| matches!(a, Action::SendAlert { message, .. } if message == "Canary is waiting for approval.")));
    let a = w.tick();
    assert_eq!(w.phase(), Phase::Waiting);
    assert!(a.is_empty(), "the event and alert come once: {a:?}");
    assert_eq!(w.status.failed_checks, 0);
    w.failing_hooks.clear();
    w.tick();
    assert_eq!(w.phase(), Phase::Progressing);
    assert_eq!(w.calls, vec!["confirm-rollout:gate"; 3]);
}

#[test]
fn confirm_traffic_increase_holds_the_weight_without_failed_checks() {
    let yaml = format!(
        "{CANARY}  webhooks:\n    - {{name: more, type: confirm-traffic-increase, url: http://x/}}\n"
    );
    let mut w = World::new(spec(&yaml));
    w.tick();
    w.tick();
    assert_eq!(w.weight(), 10);
    w.failing_hooks.insert("more".into());
    w.tick();
    w.tick();
    assert_eq!((w.weight(), w.status.failed_checks), (10, 0));
    assert_eq!(w.phase(), Phase::Progressing);
    w.failing_hooks.clear();
    w.tick();
    assert_eq!(w.weight(), 20);
}

#[test]
fn confirm_promotion_waits_keeping_the_weight_and_checking() {
    let yaml = format!(
        "{CANARY}  webhooks:\n    - {{name: ship, type: confirm-promotion, url: http://x/}}\n"
    );
    let mut w = World::new(spec(&yaml));
    w.failing_hooks.insert("ship".into());
    w.until(Phase::WaitingPromotion, 10);
    assert_eq!(w.weight(), 30, "the weight stays in status while waiting");
    w.tick();
    assert_eq!(w.phase(), Phase::WaitingPromotion);
    // Analysis keeps running: failures still count and roll back.
    w.metrics
        .insert("error-rate".into(), Measurement::Value { value: 9.0 });
    w.tick();
    assert_eq!(w.status.failed_checks, 1);
    w.metrics.clear();
    w.failing_hooks.clear();
    w.tick();
    assert_eq!(w.phase(), Phase::Promoting);
}

#[test]
fn rollback_webhook_rolls_back_on_success() {
    let yaml =
        format!("{CANARY}  webhooks:\n    - {{name: abort, type: rollback, url: http://x/}}\n");
    let mut w = World::new(spec(&yaml));
    // A failing rollback hook means "no rollback".
    w.failing_hooks.insert("abort".into());
    w.tick();
    w.tick();
    w.tick();
    assert_eq!(w.phase(), Phase::Progressing);
    w.failing_hooks.clear();
    let a = w.tick();
    assert_eq!(w.phase(), Phase::Failed);
    assert!(events(&a)[0].contains("rollback webhook abort signalled a rollback"));
}

#[test]
fn webhooks_are_called_in_flagger_order() {
    let yaml = r#"
targetRef: {name: web}
service: {port: 80}
analysis:
  interval: 1m
  threshold: 2
  maxWeight: 20
  stepWeight: 10
  webhooks:
    - {name: cr, type: confirm-rollout, url: http://x/}
    - {name: pre, type: pre-rollout, url: http://x/}
    - {name: load, type: rollout, url: http://x/}
    - {name: cti, type: confirm-traffic-increase, url: http://x/}
    - {name: cp, type: confirm-promotion, url: http://x/}
    - {name: post, type: post-rollout, url: http://x/}
    - {name: rb, type: rollback, url: http://x/}
"#;
    let mut w = World::new(spec(yaml));
    w.failing_hooks.insert("rb".into());
    w.until(Phase::Succeeded, 10);
    assert_eq!(
        w.calls,
        vec![
            "confirm-rollout:cr",
            // first analysis tick
            "rollback:rb",
            "pre-rollout:pre",
            "confirm-traffic-increase:cti",
            // weight 10 → 20
            "rollback:rb",
            "rollout:load",
            "confirm-traffic-increase:cti",
            // at max weight
            "rollback:rb",
            "rollout:load",
            "confirm-promotion:cp",
            // Promoting, Finalising
            "post-rollout:post",
        ]
    );
}

#[test]
fn event_webhooks_get_every_event() {
    let yaml = format!("{CANARY}  webhooks:\n    - {{name: ev, type: event, url: http://x/}}\n");
    let mut w = World::new(spec(&yaml));
    let a = w.tick();
    let n_events = events(&a).len();
    let calls: Vec<_> = a
        .iter()
        .filter_map(|a| match a {
            Action::CallWebhook { event_message, .. } => event_message.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(calls, events(&a));
    assert!(n_events > 0);
}

#[test]
fn canary_not_ready_waits_then_rolls_back_at_the_progress_deadline_with_an_alert() {
    let yaml = format!("{CANARY}progressDeadlineSeconds: 150\n");
    let mut w = World::new(spec(&yaml));
    w.tick();
    w.obs.canary = not_ready();
    for _ in 0..3 {
        let a = w.tick();
        assert_eq!(w.phase(), Phase::Progressing, "{a:?}");
        assert_eq!(
            w.status.failed_checks, 0,
            "not ready is never a failed check"
        );
    }
    let a = w.tick();
    assert_eq!(w.phase(), Phase::Failed);
    assert!(a.iter().any(|a| matches!(a, Action::SendAlert { reason, .. } if reason.code == ReasonCode::RollbackProgressDeadline)));
    assert!(events(&a)[0].contains("web-canary not ready within the progress deadline 150s"));
}

#[test]
fn failed_promotion_keeps_traffic_on_the_canary() {
    let mut w = World::new(spec(CANARY));
    w.until(Phase::Promoting, 10);
    w.obs.primary = Readiness::DeadlineExceeded {
        reason: "ProgressDeadlineExceeded".into(),
    };
    let a = w.tick();
    assert_eq!(w.phase(), Phase::Failed);
    assert_eq!(routes(&a), vec![(0, 100, false)]);
    assert_eq!(w.weight(), 100);
}

#[test]
fn retry_starts_a_new_analysis_of_the_same_revision_once() {
    let mut w = World::new(spec(CANARY));
    w.metrics
        .insert("error-rate".into(), Measurement::Value { value: 4.2 });
    w.until(Phase::Failed, 10);
    w.metrics.clear();
    w.obs.retry = Some("1".into());
    let a = w.tick();
    assert_eq!(w.phase(), Phase::Progressing);
    assert_eq!(w.status.failed_checks, 0);
    assert!(
        a.iter()
            .any(|a| matches!(a, Action::ScaleUpCanary { revision, .. } if revision == "v2"))
    );
    assert!(events(&a)[0].starts_with("Retry requested"));
    w.until(Phase::Succeeded, 10);
    // The same token does nothing more.
    assert!(w.tick().is_empty());
}

#[test]
fn suspended_canary_does_nothing() {
    let yaml = format!("{CANARY}suspend: true\n");
    let mut w = World::new(spec(&yaml));
    assert!(w.tick().is_empty());
    assert_eq!(w.phase(), Phase::Initialized);
}

#[test]
fn alerts_reach_providers_by_severity_and_empty_severity_is_info() {
    let yaml = format!(
        "{CANARY}  alerts:\n    - {{name: all, providerRef: {{name: slack}}}}\n    - {{name: errors, severity: error, providerRef: {{name: pager}}}}\n"
    );
    let mut w = World::new(spec(&yaml));
    let a = w.tick();
    let info = a
        .iter()
        .find_map(|a| match a {
            Action::SendAlert {
                severity, alerts, ..
            } => Some((*severity, alerts.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(info, (Severity::Info, vec!["all".to_string()]));
    w.metrics
        .insert("error-rate".into(), Measurement::Value { value: 4.2 });
    let mut last = vec![];
    while w.phase() != Phase::Failed {
        last = w.tick();
    }
    let error = last
        .iter()
        .find_map(|a| match a {
            Action::SendAlert {
                severity, alerts, ..
            } => Some((*severity, alerts.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        error,
        (
            Severity::Error,
            vec!["all".to_string(), "errors".to_string()]
        )
    );
}

struct Fixed;
impl Comparator for Fixed {
    fn compare(&self, _: &CanaryMetric, canary: &Sample, primary: &Sample) -> Verdict {
        let (c, p) = (
            canary.failures / canary.count,
            primary.failures / primary.count,
        );
        Verdict {
            outcome: if c > 2.0 * p {
                Outcome::Fail
            } else {
                Outcome::Pass
            },
            value: Some(c - p),
            explanation: format!("canary {c} vs primary {p}"),
        }
    }
}

#[test]
fn comparisons_go_to_the_comparator() {
    let comparison = Measurement::Comparison {
        canary: Sample {
            count: 100.0,
            failures: 10.0,
            values: vec![],
        },
        primary: Sample {
            count: 100.0,
            failures: 1.0,
            values: vec![],
        },
    };
    let mut w = World::new(spec(CANARY));
    w.metrics.insert("error-rate".into(), comparison.clone());
    w.tick();
    w.tick();
    w.tick();
    assert_eq!(
        w.status.metrics[0].outcome,
        Outcome::Error,
        "no comparator configured"
    );
    let mut w = World::new(spec(CANARY));
    w.comparator = Some(Box::new(Fixed));
    w.metrics.insert("error-rate".into(), comparison);
    w.tick();
    w.tick();
    w.tick();
    assert_eq!(w.status.metrics[0].outcome, Outcome::Fail);
    assert_eq!(
        w.status.metrics[0].message,
        "error-rate: canary 0.1 vs primary 0.01"
    );
}

#[test]
fn need_lists_missing_answers_and_changes_nothing() {
    let yaml =
        format!("{CANARY}  webhooks:\n    - {{name: load, type: rollout, url: http://x/}}\n");
    let s = spec(&yaml);
    let status = CanaryStatus {
        phase: Some(Phase::Progressing),
        canary_weight: 10,
        last_applied_spec: Some("v2".into()),
        last_promoted_spec: Some("v1".into()),
        ..Default::default()
    };
    let obs = Observed {
        revision: "v2".into(),
        ..Default::default()
    };
    let input = Input {
        namespace: "prod",
        name: "web",
        spec: &s,
        status: &status,
        observed: &obs,
        comparator: None,
    };
    let mut answers = Answers::default();
    let Tick::Need(first) = serin_analysis::tick(&input, &answers) else {
        panic!("hooks first")
    };
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].id(), "webhook/rollout/load");
    answers.insert(
        &first[0],
        serin_analysis::Answer::Webhook {
            ok: true,
            message: String::new(),
        },
    );
    let Tick::Need(second) = serin_analysis::tick(&input, &answers) else {
        panic!("then metrics")
    };
    assert!(matches!(&second[0], Request::Metric { metric } if metric.name == "error-rate"));
    answers.insert(
        &second[0],
        serin_analysis::Answer::Metric(Measurement::Value { value: 0.1 }),
    );
    let Tick::Done(out) = serin_analysis::tick(&input, &answers) else {
        panic!("done")
    };
    assert_eq!(out.status.canary_weight, 20);
    assert_eq!(out.requeue_after_ms, 60_000);
}
