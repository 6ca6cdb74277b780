//! Resuming from the serialised status is the same as not stopping: for random sequences of
//! observations and answers, a run whose status goes through JSON at every tick (a controller
//! restart between any two ticks) takes exactly the actions of an uninterrupted run.

use proptest::prelude::*;
use serin_analysis::{Action, Answer, Input, Measurement, Observed, Readiness, Request, Routes};
use serin_api::{CanarySpec, CanaryStatus, WebhookType};

const SPECS: [&str; 4] = [
    r#"
targetRef: {name: web}
service: {port: 80}
progressDeadlineSeconds: 120
analysis:
  interval: 1m
  threshold: 3
  maxWeight: 50
  stepWeight: 20
  stepWeightPromotion: 30
  noDataPolicy: {action: halt, limit: 2}
  metrics:
    - {name: error-rate, thresholdRange: {max: 1}}
    - {name: request-duration, thresholdRange: {max: 500}}
  webhooks:
    - {name: cr, type: confirm-rollout, url: http://x/}
    - {name: load, type: rollout, url: http://x/}
    - {name: cti, type: confirm-traffic-increase, url: http://x/}
    - {name: cp, type: confirm-promotion, url: http://x/}
    - {name: rb, type: rollback, url: http://x/}
    - {name: ev, type: event, url: http://x/}
"#,
    r#"
targetRef: {name: web}
service: {port: 80}
analysis:
  interval: 30s
  threshold: 2
  mirror: true
  stepWeights: [5, 25, 60]
  errorPolicy: {action: halt}
  metrics:
    - {name: request-success-rate, thresholdRange: {min: 99}}
  webhooks:
    - {name: pre, type: pre-rollout, url: http://x/}
    - {name: post, type: post-rollout, url: http://x/}
"#,
    r#"
targetRef: {name: web}
service: {port: 80}
analysis:
  interval: 1m
  iterations: 3
  threshold: 2
  match: [{headers: {x-canary: {exact: "1"}}}]
  metrics:
    - {name: error-rate, thresholdRange: {max: 1}}
"#,
    r#"
targetRef: {name: web}
service: {port: 80}
analysis:
  interval: 1m
  iterations: 2
  threshold: 2
  mirror: true
  metrics:
    - {name: error-rate, thresholdRange: {max: 1}}
  webhooks:
    - {name: cp, type: confirm-promotion, url: http://x/}
"#,
];

#[derive(Clone, Debug)]
struct Step {
    revision: u8,
    primary: u8,
    canary: u8,
    read_back: bool,
    retry: Option<u8>,
    /// Bit per webhook name hash: which hooks fail this tick.
    hooks_fail: u8,
    metric: u8,
    value: f64,
}

fn step() -> impl Strategy<Value = Step> {
    (
        prop_oneof![8 => Just(2u8), 1 => Just(1u8), 1 => Just(3u8)],
        prop_oneof![8 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)],
        prop_oneof![6 => Just(0u8), 3 => Just(1u8), 1 => Just(2u8)],
        any::<bool>(),
        prop::option::weighted(0.1, 0u8..3),
        any::<u8>(),
        0u8..8,
        -10.0f64..1000.0,
    )
        .prop_map(
            |(revision, primary, canary, read_back, retry, hooks_fail, metric, value)| Step {
                revision,
                primary,
                canary,
                read_back,
                retry,
                hooks_fail,
                metric,
                value,
            },
        )
}

fn readiness(n: u8) -> Readiness {
    match n {
        0 => Readiness::Ready,
        1 => Readiness::NotReady {
            reason: "rolling".into(),
        },
        _ => Readiness::DeadlineExceeded {
            reason: "ProgressDeadlineExceeded".into(),
        },
    }
}

fn answer(s: &Step, r: &Request) -> Answer {
    match r {
        Request::Webhook { kind, hook, .. } => {
            let bit = hook.name.bytes().map(u32::from).sum::<u32>() % 8;
            let fail = s.hooks_fail & (1 << bit) != 0;
            // Rollback hooks mostly do not signal.
            let ok = if *kind == WebhookType::Rollback {
                fail && s.hooks_fail > 240
            } else {
                !fail || s.hooks_fail < 64
            };
            Answer::Webhook {
                ok,
                message: format!("hook {}", hook.name),
            }
        }
        Request::Metric { .. } => Answer::Metric(match s.metric {
            0 => Measurement::NoData {
                message: "none".into(),
            },
            1 => Measurement::Error {
                message: "down".into(),
            },
            2 => Measurement::Value { value: s.value },
            _ => Measurement::Value {
                value: 0.5 + 99.0 * ((s.metric & 1) as f64),
            },
        }),
    }
}

/// Runs the steps; `restart` sends the status through JSON before every tick.
fn run(spec: &CanarySpec, steps: &[Step], restart: bool) -> Vec<Vec<Action>> {
    let mut status = CanaryStatus::default();
    let mut routes = Routes {
        primary: 100,
        canary: 0,
        mirror: false,
    };
    let mut all = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        if restart {
            let json = serde_json::to_string(&status).unwrap();
            status = serde_json::from_str(&json).unwrap();
        }
        let observed = Observed {
            now_ms: 1_700_000_000_000 + i as i64 * 45_000,
            revision: format!("v{}", s.revision),
            primary: readiness(s.primary),
            canary: readiness(s.canary),
            routes: s.read_back.then_some(routes),
            retry: s.retry.map(|r| r.to_string()),
            ..Default::default()
        };
        let input = Input {
            namespace: "prod",
            name: "web",
            spec,
            status: &status,
            observed: &observed,
            comparator: None,
        };
        let out = serin_analysis::tick_with(&input, |r| answer(s, r));
        for a in &out.actions {
            if let Action::SetRoutes { routes: r, .. } = a {
                routes = *r;
            }
        }
        status = out.status;
        all.push(out.actions);
    }
    all
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn resuming_from_json_status_takes_the_same_actions(
        which in 0usize..SPECS.len(),
        steps in prop::collection::vec(step(), 1..60),
    ) {
        let spec: CanarySpec = serde_saphyr::from_str(SPECS[which]).unwrap();
        let straight = run(&spec, &steps, false);
        let resumed = run(&spec, &steps, true);
        prop_assert_eq!(straight, resumed);
    }
}
