//! The engine's cost per tick, in microseconds: `cargo bench -p serin-analysis --bench tick`
//! (or `bench/engine.sh`). Prints each figure next to what it is compared with: the time a
//! controller has per tick (the analysis interval) and the share of a core that a thousand
//! Canaries would use.

use std::hint::black_box;
use std::time::{Duration, Instant};

use serin_analysis::sim::{self, Scenario};
use serin_analysis::{Answer, Input, Measurement, Observed, Request, Routes};
use serin_api::{Canary, CanaryStatus, Phase};

/// Runs `f` repeatedly for about `budget` (at most `max` times); mean µs per call.
fn measure(budget: Duration, max: u32, mut f: impl FnMut()) -> (f64, u32) {
    for _ in 0..100 {
        f();
    }
    let start = Instant::now();
    let mut n = 0;
    while n < max && start.elapsed() < budget {
        f();
        n += 1;
    }
    (start.elapsed().as_secs_f64() * 1e6 / n as f64, n)
}

fn main() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/web-canary.yaml"
    );
    let text = std::fs::read_to_string(path).expect("seed fixture");
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).expect("yaml");
    let doc = docs
        .into_iter()
        .find(|d| d["kind"] == "Canary")
        .expect("a Canary");
    let canary: Canary = serde_json::from_value(doc).expect("Canary");
    let spec = canary.spec;

    // A mid-run tick: rollback hooks none, one rollout webhook, two metrics, a weight step.
    let status = CanaryStatus {
        phase: Some(Phase::Progressing),
        canary_weight: 20,
        last_applied_spec: Some("candidate".into()),
        last_promoted_spec: Some("stable".into()),
        ..Default::default()
    };
    let observed = Observed {
        now_ms: 1_700_000_000_000,
        revision: "candidate".into(),
        routes: Some(Routes {
            primary: 80,
            canary: 20,
            mirror: false,
        }),
        ..Default::default()
    };
    let input = Input {
        namespace: "prod",
        name: "web",
        spec: &spec,
        status: &status,
        observed: &observed,
        comparator: None,
    };
    let answer = |r: &Request| match r {
        Request::Webhook { .. } => Answer::Webhook {
            ok: true,
            message: String::new(),
        },
        Request::Metric { .. } => Answer::Metric(Measurement::Value { value: 0.4 }),
    };
    let (tick_us, ticks) = measure(Duration::from_secs(2), 2_000_000, || {
        black_box(serin_analysis::tick_with(black_box(&input), answer));
    });

    let scenario = Scenario {
        duration_ms: 3_600_000,
        ..Default::default()
    };
    let run_len = sim::simulate("prod", "web", &spec, &scenario)
        .timeline
        .len() as f64;
    let (run_us, runs) = measure(Duration::from_secs(2), 200_000, || {
        black_box(sim::simulate("prod", "web", black_box(&spec), &scenario));
    });

    let interval_us = spec.interval().as_secs_f64() * 1e6;
    println!("serin-analysis engine cost (seed Canary prod/web: 2 metrics, 1 rollout webhook)");
    let rows = [
        (
            "one analysis tick (hooks, metrics, decision)".to_string(),
            format!("{tick_us:.2} µs ({ticks} ticks measured)"),
        ),
        (
            format!("whole promotion, simulated ({run_len} ticks)"),
            format!("{:.2} µs per tick ({runs} runs measured)", run_us / run_len),
        ),
        (
            format!(
                "share of the {}s analysis interval",
                spec.interval().as_secs()
            ),
            format!("{:.6} %", tick_us / interval_us * 100.0),
        ),
        (
            "1000 Canaries ticking every 10s".to_string(),
            format!("{:.4} % of one core", 1000.0 * tick_us / 10e6 * 100.0),
        ),
    ];
    for (what, figure) in rows {
        println!("  {what:<48} {figure}");
    }
}
