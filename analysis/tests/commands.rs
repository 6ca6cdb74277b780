//! `serin promote|abort|approve|halt` on the engine alone, on the virtual clock: each command
//! acts once, only on the revision it was meant for, and explains itself when it cannot act.

mod common;

use common::{World, events, routes, spec};
use serin_analysis::commands::{HALTED, approval, token};
use serin_analysis::sim::{Scenario, Verdict as SimVerdict, Window, simulate};
use serin_analysis::{Action, Conclusion, Measurement, ReasonCode, Severity};
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

fn codes(actions: &[Action]) -> Vec<ReasonCode> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::RecordEvent { reason, .. } => Some(reason.code),
            _ => None,
        })
        .collect()
}

/// A run of `v2` at canary weight 10.
fn at_weight_10() -> World {
    let mut w = World::new(spec(CANARY));
    w.tick();
    w.tick();
    assert_eq!((w.phase(), w.weight()), (Phase::Progressing, 10));
    w
}

#[test]
fn abort_rolls_back_now_with_the_reason_in_events_alerts_and_status() {
    let mut w = at_weight_10();
    w.obs.commands.abort = Some(token("t1", Some("v2")));
    let a = w.tick();
    assert_eq!(w.phase(), Phase::Failed);
    assert_eq!(routes(&a), vec![(100, 0, false)]);
    assert!(
        a.iter()
            .any(|a| matches!(a, Action::ScaleDownCanary { .. }))
    );
    assert_eq!(concluded(&a), Some(Conclusion::RolledBack));
    let why = "Rolling back prod/web: aborted by serin.dev/abort=t1@v2";
    assert!(events(&a).contains(&why.to_string()), "{:?}", events(&a));
    assert!(a.iter().any(
        |a| matches!(a, Action::SendAlert { severity: Severity::Error, message, reason, .. }
        if message == why && reason.code == ReasonCode::Aborted)
    ));
    assert_eq!(w.status.message.as_deref(), Some(why));
    assert_eq!(w.status.last_abort.as_deref(), Some("t1@v2"));
    assert_eq!(
        (w.weight(), w.status.last_applied_spec.as_deref()),
        (0, Some("v2"))
    );
    // The token stays on the Canary: it is used, nothing more happens.
    assert!(w.tick().is_empty());
    assert_eq!(w.phase(), Phase::Failed);
}

#[test]
fn abort_after_succeeded_is_explained_and_used() {
    let mut w = World::new(spec(CANARY));
    w.until(Phase::Succeeded, 10);
    w.obs.commands.abort = Some(token("t1", Some("v2")));
    let a = w.tick();
    assert_eq!(w.phase(), Phase::Succeeded);
    assert_eq!(
        events(&a),
        vec![
            "Ignored serin.dev/abort=t1@v2 for prod/web: no analysis is running, revision v2 is promoted"
        ]
    );
    assert!(routes(&a).is_empty());
    assert_eq!(w.status.last_abort.as_deref(), Some("t1@v2"));
    assert!(w.tick().is_empty(), "explained once");
}

#[test]
fn abort_during_promotion_is_too_late_and_explained() {
    let mut w = World::new(spec(CANARY));
    w.until(Phase::Promoting, 10);
    w.obs.commands.abort = Some(token("t1", None));
    let a = w.tick();
    assert_eq!(w.phase(), Phase::Finalising, "the promotion goes on");
    assert!(events(&a)[0].starts_with(
        "Ignored serin.dev/abort=t1 for prod/web: the promotion of revision v2 is already under way"
    ));
}

#[test]
fn a_used_abort_left_on_the_canary_does_not_abort_the_next_revision() {
    let mut w = at_weight_10();
    w.obs.commands.abort = Some(token("t1", Some("v2")));
    w.tick();
    assert_eq!(w.phase(), Phase::Failed);
    w.obs.revision = "v3".into();
    let a = w.tick();
    assert_eq!(w.phase(), Phase::Progressing);
    assert_eq!(codes(&a), vec![ReasonCode::NewRevision]);
    w.until(Phase::Succeeded, 10);
    assert_eq!(w.status.last_promoted_spec.as_deref(), Some("v3"));
}

#[test]
fn an_abort_meant_for_another_revision_is_ignored() {
    // `serin abort` read v2; v3 arrived before the controller's tick.
    let mut w = at_weight_10();
    w.obs.revision = "v3".into();
    w.obs.commands.abort = Some(token("t1", Some("v2")));
    let a = w.tick();
    assert_eq!(
        events(&a)[0],
        "Ignored serin.dev/abort=t1@v2 for prod/web: it was meant for revision v2, the current revision is v3"
    );
    assert_eq!(w.phase(), Phase::Progressing, "v3's run starts as usual");
    assert_eq!(w.status.last_applied_spec.as_deref(), Some("v3"));
    assert_eq!(w.status.last_abort.as_deref(), Some("t1@v2"));
    assert!(concluded(&a).is_none());
}

#[test]
fn abort_of_a_revision_waiting_to_start_fails_it_for_good() {
    let yaml = format!(
        "{CANARY}  webhooks:\n    - {{name: gate, type: confirm-rollout, url: http://x/}}\n"
    );
    let mut w = World::new(spec(&yaml));
    w.failing_hooks.insert("gate".into());
    w.tick();
    assert_eq!(w.phase(), Phase::Waiting);
    w.obs.commands.abort = Some(token("t1", Some("v2")));
    w.tick();
    assert_eq!(w.phase(), Phase::Failed);
    assert_eq!(w.status.last_applied_spec.as_deref(), Some("v2"));
    w.failing_hooks.clear();
    assert!(
        w.tick().is_empty(),
        "the aborted revision does not start again"
    );
    assert_eq!(w.status.last_promoted_spec.as_deref(), Some("v1"));
}

#[test]
fn promote_skips_the_remaining_steps_and_promotes_the_current_revision() {
    let mut w = at_weight_10();
    w.metrics
        .insert("error-rate".into(), Measurement::Value { value: 9.0 });
    w.obs.commands.promote = Some(token("p1", Some("v2")));
    let a = w.tick();
    assert!(
        a.iter()
            .any(|a| matches!(a, Action::Promote { revision, reason }
            if revision == "v2" && reason.code == ReasonCode::PromotionRequested))
    );
    assert_eq!(w.phase(), Phase::Promoting);
    let msg = "Promoting prod/web: revision v2 promoted by serin.dev/promote=p1@v2, skipping the remaining analysis; rolling it out on web";
    assert_eq!(events(&a), vec![msg]);
    assert!(a.iter().any(|a| matches!(a, Action::SendAlert { severity: Severity::Info, message, .. } if message == msg)));
    assert_eq!(
        w.status.failed_checks, 0,
        "no check ran in the promoting tick"
    );
    assert_eq!(routes(&w.tick()), vec![(100, 0, false)]);
    let a = w.tick();
    assert_eq!(w.phase(), Phase::Succeeded);
    assert_eq!(concluded(&a), Some(Conclusion::Promoted));
    assert_eq!(w.status.last_promoted_spec.as_deref(), Some("v2"));
    assert_eq!(w.status.last_promote.as_deref(), Some("p1@v2"));
}

#[test]
fn a_used_promote_left_on_the_canary_does_not_promote_the_next_revision() {
    let mut w = at_weight_10();
    w.obs.commands.promote = Some(token("p1", Some("v2")));
    w.until(Phase::Succeeded, 5);
    w.obs.revision = "v3".into();
    w.tick();
    assert_eq!(w.phase(), Phase::Progressing);
    let a = w.tick();
    assert_eq!(
        routes(&a),
        vec![(90, 10, false)],
        "v3 is analysed step by step"
    );
    // A failing v3 rolls back: the old token promotes nothing.
    w.metrics
        .insert("error-rate".into(), Measurement::Value { value: 9.0 });
    w.until(Phase::Failed, 5);
    assert_eq!(w.status.last_promoted_spec.as_deref(), Some("v2"));
}

#[test]
fn a_hand_written_unbound_promote_acts_once_too() {
    let mut w = at_weight_10();
    w.obs.commands.promote = Some("now".into());
    w.tick();
    assert_eq!(w.phase(), Phase::Promoting);
    w.until(Phase::Succeeded, 5);
    w.obs.revision = "v3".into();
    w.tick();
    w.tick();
    assert_eq!((w.phase(), w.weight()), (Phase::Progressing, 10));
}

#[test]
fn promote_with_nothing_running_is_explained_and_used() {
    let mut w = World::new(spec(CANARY));
    w.metrics
        .insert("error-rate".into(), Measurement::Value { value: 9.0 });
    w.until(Phase::Failed, 10);
    let reason = w.status.message.clone();
    w.obs.commands.promote = Some(token("p1", Some("v2")));
    let a = w.tick();
    assert_eq!(
        w.status.message, reason,
        "status still explains the failure"
    );
    assert_eq!(
        events(&a),
        vec![
            "Ignored serin.dev/promote=p1@v2 for prod/web: no analysis is running, the analysis of revision v2 failed (serin retry starts a new one)"
        ]
    );
    assert_eq!(w.phase(), Phase::Failed);
    assert_eq!(w.status.last_promote.as_deref(), Some("p1@v2"));
    // A retry afterwards analyses v2 normally: the used promote does not skip it.
    w.metrics.clear();
    w.obs.retry = Some("r1".into());
    w.tick();
    let a = w.tick();
    assert_eq!(routes(&a), vec![(90, 10, false)]);
}

#[test]
fn promote_of_a_revision_held_at_the_confirm_rollout_gate_promotes_it() {
    let yaml = format!(
        "{CANARY}  webhooks:\n    - {{name: gate, type: confirm-rollout, url: http://x/}}\n"
    );
    let mut w = World::new(spec(&yaml));
    w.failing_hooks.insert("gate".into());
    w.tick();
    assert_eq!(w.phase(), Phase::Waiting);
    w.obs.commands.promote = Some(token("p1", Some("v2")));
    w.tick();
    assert_eq!(w.phase(), Phase::Promoting);
    w.until(Phase::Succeeded, 5);
    assert_eq!(w.status.last_promoted_spec.as_deref(), Some("v2"));
}

#[test]
fn abort_wins_over_a_promote_given_at_the_same_time() {
    let mut w = at_weight_10();
    w.obs.commands.abort = Some(token("t1", None));
    w.obs.commands.promote = Some(token("p1", None));
    let a = w.tick();
    assert_eq!(w.phase(), Phase::Failed);
    assert!(
        events(&a).contains(
            &"Ignored serin.dev/promote=p1 for prod/web: an abort was requested at the same time"
                .to_string()
        )
    );
    assert_eq!(w.status.last_promote.as_deref(), Some("p1"));
}

#[test]
fn halt_holds_the_step_without_checks_until_approved() {
    let mut w = at_weight_10();
    w.obs.commands.gate = Some(HALTED.into());
    // Failing metrics while halted are neither run nor counted.
    w.metrics
        .insert("error-rate".into(), Measurement::Value { value: 9.0 });
    for _ in 0..5 {
        let a = w.tick();
        assert!(routes(&a).is_empty());
        assert_eq!(
            events(&a),
            vec![
                "Halt prod/web advancement: serin.dev/gate=halted at canary weight 10 (serin approve resumes)"
            ]
        );
    }
    assert_eq!(
        (w.phase(), w.weight(), w.status.failed_checks),
        (Phase::Progressing, 10, 0)
    );
    w.metrics.clear();
    w.obs.commands.gate = Some(approval(Some("v2")));
    let a = w.tick();
    assert_eq!(routes(&a), vec![(80, 20, false)]);
}

#[test]
fn halt_keeps_a_new_revision_from_starting() {
    let mut w = World::new(spec(CANARY));
    w.obs.commands.gate = Some(HALTED.into());
    let a = w.tick();
    assert_eq!(w.phase(), Phase::Waiting);
    assert!(!a.iter().any(|a| matches!(a, Action::ScaleUpCanary { .. })));
    assert_eq!(codes(&a), vec![ReasonCode::GateHalted]);
    // Removing the annotation resumes as well.
    w.obs.commands.gate = None;
    let a = w.tick();
    assert_eq!(w.phase(), Phase::Progressing);
    assert!(a.iter().any(|a| matches!(a, Action::ScaleUpCanary { .. })));
}

#[test]
fn halt_does_not_stop_a_promotion_under_way() {
    let mut w = World::new(spec(CANARY));
    w.until(Phase::Promoting, 10);
    w.obs.commands.gate = Some(HALTED.into());
    w.until(Phase::Succeeded, 3);
}

#[test]
fn halt_does_not_let_the_progress_deadline_run_out() {
    let mut w = World::new(spec(CANARY));
    w.tick();
    w.obs.canary = common::not_ready();
    w.tick();
    w.obs.commands.gate = Some(HALTED.into());
    for _ in 0..20 {
        w.tick();
    }
    w.obs.commands.gate = None;
    w.tick();
    assert_eq!(
        w.phase(),
        Phase::Progressing,
        "the deadline counts from the resume"
    );
}

const GATED: &str = r#"  webhooks:
    - {name: start, type: confirm-rollout, url: http://x/}
    - {name: more, type: confirm-traffic-increase, url: http://x/}
    - {name: ship, type: confirm-promotion, url: http://x/}
"#;

#[test]
fn approve_opens_the_gates_of_its_revision_only() {
    let mut w = World::new(spec(&format!("{CANARY}{GATED}")));
    for h in ["start", "more", "ship"] {
        w.failing_hooks.insert(h.into());
    }
    w.tick();
    assert_eq!(w.phase(), Phase::Waiting);
    w.obs.commands.gate = Some(approval(Some("v2")));
    let a = w.tick();
    assert_eq!(
        events(&a)[0],
        "Gates of revision v2 of prod/web approved by serin.dev/gate=approved@v2"
    );
    assert_eq!(w.phase(), Phase::Progressing);
    w.until(Phase::Succeeded, 10);
    assert_eq!(w.status.approved_revision.as_deref(), Some("v2"));
    assert_eq!(
        w.calls,
        vec!["confirm-rollout:start"],
        "no gate is asked once approved"
    );
    // The next revision's gates are closed again, though the annotation is still there.
    w.obs.revision = "v3".into();
    w.tick();
    assert_eq!(w.phase(), Phase::Waiting);
    assert_eq!(
        w.calls.last().map(String::as_str),
        Some("confirm-rollout:start")
    );
}

#[test]
fn a_bare_approved_binds_to_the_revision_it_first_sees() {
    let mut w = World::new(spec(&format!("{CANARY}{GATED}")));
    w.failing_hooks.insert("start".into());
    w.obs.commands.gate = Some("approved".into());
    w.until(Phase::Succeeded, 10);
    assert_eq!(w.status.approved_revision.as_deref(), Some("v2"));
    w.obs.revision = "v3".into();
    w.tick();
    assert_eq!(w.phase(), Phase::Waiting);
}

#[test]
fn an_unknown_gate_value_is_reported_and_changes_nothing() {
    let mut w = at_weight_10();
    w.obs.commands.gate = Some("open".into());
    let a = w.tick();
    assert_eq!(routes(&a), vec![(80, 20, false)]);
    assert!(events(&a)[0].starts_with("Ignored serin.dev/gate=open for prod/web: write approved"));
}

#[test]
fn commands_present_at_adoption_are_used_up() {
    let mut w = World::new(spec(CANARY));
    w.status = CanaryStatus::default();
    w.obs.commands.abort = Some("old".into());
    w.obs.commands.promote = Some("older".into());
    w.tick();
    assert_eq!(w.phase(), Phase::Initialized);
    assert_eq!(w.status.last_abort.as_deref(), Some("old"));
    w.obs.revision = "v3".into();
    w.tick();
    w.tick();
    assert_eq!((w.phase(), w.weight()), (Phase::Progressing, 10));
}

#[test]
fn simulate_scripts_the_commands() {
    let s = spec(CANARY);
    let abort = simulate(
        "prod",
        "web",
        &s,
        &Scenario {
            duration_ms: 600_000,
            abort_at_ms: Some(120_000),
            ..Default::default()
        },
    );
    assert_eq!(abort.verdict, SimVerdict::RolledBack);
    assert_eq!(abort.timeline.last().unwrap().at_ms, 120_000);
    let promote = simulate(
        "prod",
        "web",
        &s,
        &Scenario {
            duration_ms: 600_000,
            promote_at_ms: Some(60_000),
            ..Default::default()
        },
    );
    assert_eq!(promote.verdict, SimVerdict::Promoted);
    assert_eq!(promote.status.canary_weight, 0);
    assert_eq!(promote.timeline.last().unwrap().at_ms, 180_000);
    let halted = simulate(
        "prod",
        "web",
        &s,
        &Scenario {
            duration_ms: 900_000,
            halts: vec![Window {
                from_ms: 60_000,
                to_ms: Some(300_000),
            }],
            ..Default::default()
        },
    );
    let plain = simulate(
        "prod",
        "web",
        &s,
        &Scenario {
            duration_ms: 900_000,
            ..Default::default()
        },
    );
    assert_eq!(halted.verdict, SimVerdict::Promoted);
    assert_eq!(
        halted.timeline.last().unwrap().at_ms,
        plain.timeline.last().unwrap().at_ms + 240_000,
        "four halted ticks"
    );
}

/// One step of a random history.
#[derive(Clone, Debug)]
enum Step {
    Tick,
    NewRevision,
    /// A new token; `Some(0)` binds it to the current revision, `Some(1)` to the previous one.
    Abort(Option<u8>),
    Promote(Option<u8>),
    Halt,
    Approve,
    ClearGate,
    FailMetric(bool),
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    let bind = prop_oneof![Just(None), Just(Some(0u8)), Just(Some(1u8))];
    prop_oneof![
        6 => Just(Step::Tick),
        1 => Just(Step::NewRevision),
        1 => bind.clone().prop_map(Step::Abort),
        1 => bind.prop_map(Step::Promote),
        1 => Just(Step::Halt),
        1 => Just(Step::Approve),
        1 => Just(Step::ClearGate),
        1 => any::<bool>().prop_map(Step::FailMetric),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Whatever the history: a token acts at most once, never on a revision it was not bound
    /// to, and a halted analysis neither moves traffic nor counts a check.
    #[test]
    fn commands_act_once_on_their_revision_and_halt_holds(
        steps in proptest::collection::vec(step(), 1..60)
    ) {
        let mut w = World::new(spec(CANARY));
        let mut revision = 2;
        let mut n = 0;
        let mut acted: Vec<String> = Vec::new();
        for s in steps {
            let bound = |b: Option<u8>, revision: u32| {
                b.map(|back| format!("v{}", revision - u32::from(back)))
            };
            match s {
                Step::Tick => {
                    let before = w.status.clone();
                    let a = w.tick();
                    let promoted = a.iter().any(|a| matches!(a, Action::Promote { reason, .. }
                        if reason.code == ReasonCode::PromotionRequested));
                    let aborted = codes(&a).contains(&ReasonCode::Aborted);
                    for (did, token) in [
                        (promoted, w.obs.commands.promote.clone()),
                        (aborted, w.obs.commands.abort.clone()),
                    ] {
                        if !did {
                            continue;
                        }
                        let token = token.expect("acted on a token that is there");
                        proptest::prop_assert!(!acted.contains(&token), "{token} acted twice");
                        if let Some(r) = serin_analysis::commands::bound_revision(&token) {
                            proptest::prop_assert_eq!(r, w.obs.revision.as_str());
                        }
                        acted.push(token);
                    }
                    let halted = w.obs.commands.gate.as_deref() == Some(HALTED);
                    let analysing = matches!(
                        before.phase,
                        Some(Phase::Progressing | Phase::WaitingPromotion)
                    );
                    if halted && analysing && !promoted && !aborted
                        && Some(w.obs.revision.as_str()) == before.last_applied_spec.as_deref()
                    {
                        proptest::prop_assert!(routes(&a).is_empty(), "{a:?}");
                        proptest::prop_assert_eq!(w.status.failed_checks, before.failed_checks);
                        proptest::prop_assert_eq!(w.status.phase, before.phase);
                    }
                }
                Step::NewRevision => {
                    revision += 1;
                    w.obs.revision = format!("v{revision}");
                }
                Step::Abort(b) => {
                    n += 1;
                    w.obs.commands.abort = Some(token(&format!("a{n}"), bound(b, revision).as_deref()));
                }
                Step::Promote(b) => {
                    n += 1;
                    w.obs.commands.promote = Some(token(&format!("p{n}"), bound(b, revision).as_deref()));
                }
                Step::Halt => w.obs.commands.gate = Some(HALTED.into()),
                Step::Approve => w.obs.commands.gate = Some(approval(Some(&w.obs.revision))),
                Step::ClearGate => w.obs.commands.gate = None,
                Step::FailMetric(fail) => {
                    if fail {
                        w.metrics.insert("error-rate".into(), Measurement::Value { value: 9.0 });
                    } else {
                        w.metrics.clear();
                    }
                }
            }
        }
    }
}
