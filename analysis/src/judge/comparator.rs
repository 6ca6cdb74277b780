//! The judge behind the engine's [`Comparator`] seam: a shell that measures a judged metric as
//! [`Measurement::Comparison`](crate::Measurement::Comparison) (counts of requests and failures
//! per side) passes a `JudgeComparator` as `Input::comparator`, built each tick from the states
//! saved with the Canary, and saves its [`states`](JudgeComparator::states) after the tick
//! ([`super::record`] does both with `status.judge`), so a restart resumes the evidence.
//!
//! One comparator serves one tick: the engine replays a tick from the start whenever it needs
//! more answers (a confirm-traffic-increase webhook after the metrics, say), so `compare` always
//! starts from the saved state and gives the same verdict however often it is called.
//!
//! Mapping to the engine's outcomes: Continue and Pass are Pass; Fail is Fail (and stays Fail,
//! so the engine's failedChecks reach the threshold); a promoting Inconclusive is Pass. Hold and
//! a pausing Inconclusive are NoData *and* a [`Hold`] (see [`Comparator::hold`]): the engine
//! keeps the weight for them whatever `noDataPolicy` says, and never rolls back on them.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use serin_api::canary::CanaryMetric;
use serin_api::{CanarySpec, Strategy};

use super::evidence::Counts;
use super::latency;
use super::sequential::{Judge, JudgeConfig, JudgeState, Subject, Verdict as JudgeVerdict};
use crate::{Comparator, Outcome, Sample, Verdict};

/// Why a judge asks the engine to keep the current weight instead of deciding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hold {
    /// The planned steps are over but the traffic could not yet have shown `minEffect`: stay
    /// for more data (`held` of `limit` extra intervals, `judge.holdIntervals`).
    MoreData { held: u32, limit: u32 },
    /// Still too little traffic after the hold, and `judge.onInconclusive: pause`: wait for a
    /// person (`serin promote` / `serin abort`) while the judge keeps counting; `first` is
    /// true on the first such look (the engine alerts once).
    Person { first: bool },
}

/// Number of analysis intervals the spec plans: weight steps up to maxWeight (canary), or
/// iterations (A/B testing, blue/green).
pub fn planned_intervals(spec: &CanarySpec) -> u32 {
    if !matches!(spec.strategy(), Strategy::Canary) {
        return spec.iterations().max(1);
    }
    let max = spec.max_weight();
    let (mut weight, mut steps) = (0u32, 0u32);
    while weight < max && steps < 100 {
        let step = crate::weights::next_step(spec, weight);
        if step == 0 {
            break;
        }
        weight += step;
        steps += 1;
    }
    steps.max(1)
}

/// Per-metric judges for one tick, resumed from the saved states on first use.
#[derive(Debug, Default)]
pub struct JudgeComparator {
    planned: u32,
    /// The judges after this tick's look, by metric name (replaced on a replay).
    /// Mutexes rather than cells so that a shell may hold the comparator across an await.
    judges: Mutex<BTreeMap<String, Judge>>,
    holds: Mutex<BTreeMap<String, Hold>>,
    saved: BTreeMap<String, JudgeState>,
}

impl JudgeComparator {
    pub fn new(spec: &CanarySpec) -> Self {
        Self {
            planned: planned_intervals(spec),
            ..Self::default()
        }
    }

    /// Resumes from states saved by [`states`](Self::states) (a new run starts from `new`).
    pub fn resume(spec: &CanarySpec, states: BTreeMap<String, JudgeState>) -> Self {
        Self {
            planned: planned_intervals(spec),
            saved: states,
            ..Self::default()
        }
    }

    /// The state of every judge, by metric name, to save with the Canary.
    pub fn states(&self) -> BTreeMap<String, JudgeState> {
        let mut out = self.saved.clone();
        for (name, j) in lock(&self.judges).iter() {
            out.insert(name.clone(), j.state().clone());
        }
        out
    }

    /// Whether any judge looked at counts this tick (only then is there something new to save).
    pub fn looked(&self) -> bool {
        !lock(&self.judges).is_empty()
    }

    fn verdict(outcome: Outcome, value: Option<f64>, explanation: String) -> Verdict {
        Verdict {
            outcome,
            value,
            explanation,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The maps stay consistent whatever panicked while holding them.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn count(x: f64, what: &str) -> Result<u64, String> {
    if x.is_finite() && x >= 0.0 {
        // Prometheus' increase() extrapolates to fractions; the test needs whole requests.
        Ok(x.round() as u64)
    } else {
        Err(format!(
            "{what} is {x}: counts must be finite and not negative"
        ))
    }
}

fn counts(s: &Sample, side: &str) -> Result<Counts, String> {
    Ok(Counts::new(
        count(s.count, &format!("{side} requests"))?,
        count(s.failures, &format!("{side} failures"))?,
    ))
}

/// Latency from histograms ([`latency::from_sample`]): the first look with primary traffic
/// fixes the bound from the primary and judges nothing (the bound must not come from the data it
/// judges); later looks count each side's requests slower than it.
fn slow_counts(
    judge: &mut Judge,
    quantile: f64,
    canary: &Sample,
    primary: &Sample,
) -> Result<(Counts, Counts), String> {
    let (c, p) = (latency::from_sample(canary), latency::from_sample(primary));
    let Some(bound) = judge.state().latency_bound else {
        if let Some(b) = latency::bound_from_primary(&p, quantile).map_err(|e| e.to_string())? {
            judge.set_latency_bound(b);
        }
        return Ok((Counts::new(0, 0), Counts::new(0, 0)));
    };
    let slow = |h: &[latency::Bucket], side: &str| {
        if h.last().is_none_or(|b| b.count == 0) {
            return Ok(Counts::new(0, 0)); // no requests on this side: no series at all
        }
        latency::slow_counts(h, bound).map_err(|e| format!("{side} histogram: {e}"))
    };
    Ok((slow(&c, "canary")?, slow(&p, "primary")?))
}

impl Comparator for JudgeComparator {
    fn compare(&self, metric: &CanaryMetric, canary: &Sample, primary: &Sample) -> Verdict {
        let Some(spec) = &metric.judge else {
            return Self::verdict(
                Outcome::Error,
                None,
                "the metric has no `judge` configuration; add judge: {type: sequential}".into(),
            );
        };
        // request-duration is judged on slow requests (latency.rs), anything else on failures.
        let subject = if metric.name == "request-duration" {
            Subject::Slow
        } else {
            Subject::Errors
        };
        let config = match JudgeConfig::from_spec(spec, self.planned) {
            Ok(c) => c.with_subject(subject),
            Err(e) => return Self::verdict(Outcome::Error, None, e.to_string()),
        };
        // Always from the saved state: a replayed tick must not count an interval twice.
        let mut judge = match self.saved.get(&metric.name) {
            Some(state) => Judge::resume(config.clone(), state.clone()),
            None => Judge::new(config.clone()),
        };
        let histograms =
            subject == Subject::Slow && !(canary.values.is_empty() && primary.values.is_empty());
        let sides = if histograms {
            slow_counts(&mut judge, spec.latency_quantile(), canary, primary)
        } else {
            counts(canary, "canary").and_then(|c| Ok((c, counts(primary, "primary")?)))
        };
        let (c, p) = match sides {
            Ok(sides) => sides,
            Err(e) => return Self::verdict(Outcome::Error, None, e),
        };
        let mut j = match judge.observe(c, p) {
            Ok(j) => j,
            Err(e) => return Self::verdict(Outcome::Error, None, e.to_string()),
        };
        if j.verdict == JudgeVerdict::Continue && judge.state().intervals >= self.planned {
            j = judge.conclude();
        }
        let hold = match j.verdict {
            JudgeVerdict::Hold => Some(Hold::MoreData {
                held: judge.state().held,
                limit: spec.hold_intervals(),
            }),
            JudgeVerdict::Inconclusive { promote: false } => Some(Hold::Person {
                first: judge.state().paused_looks == 1,
            }),
            _ => None,
        };
        let outcome = match j.verdict {
            JudgeVerdict::Continue | JudgeVerdict::Pass => Outcome::Pass,
            JudgeVerdict::Fail => Outcome::Fail,
            JudgeVerdict::Inconclusive { promote: true } => Outcome::Pass,
            JudgeVerdict::Hold | JudgeVerdict::Inconclusive { promote: false } => Outcome::NoData,
        };
        lock(&self.judges).insert(metric.name.clone(), judge);
        let mut holds = lock(&self.holds);
        match hold {
            Some(h) => holds.insert(metric.name.clone(), h),
            None => holds.remove(&metric.name),
        };
        Self::verdict(outcome, Some(j.evidence), j.message)
    }

    fn hold(&self, metric: &str) -> Option<Hold> {
        lock(&self.holds).get(metric).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serin_api::canary::CanaryAnalysis;
    use serin_api::judge::JudgeSpec;

    fn spec(step: i32, max: i32) -> CanarySpec {
        CanarySpec {
            analysis: Some(CanaryAnalysis {
                step_weight: Some(step),
                max_weight: Some(max),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn metric() -> CanaryMetric {
        CanaryMetric {
            name: "request-success-rate".into(),
            judge: Some(JudgeSpec::default()),
            ..Default::default()
        }
    }

    fn sample(count: f64, failures: f64) -> Sample {
        Sample {
            count,
            failures,
            values: vec![],
        }
    }

    #[test]
    fn planned_intervals_follow_the_steps() {
        assert_eq!(planned_intervals(&spec(10, 50)), 5);
        assert_eq!(planned_intervals(&spec(20, 50)), 3);
        let blue_green = CanarySpec {
            analysis: Some(CanaryAnalysis {
                iterations: Some(4),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(planned_intervals(&blue_green), 4);
    }

    #[test]
    fn a_regression_fails_and_the_state_resumes() {
        let cmp = JudgeComparator::new(&spec(10, 50));
        let v = cmp.compare(&metric(), &sample(1000.0, 80.0), &sample(9000.0, 90.0));
        assert_eq!(v.outcome, Outcome::Fail, "{}", v.explanation);
        assert!(v.explanation.contains("rolling back"));
        let resumed = JudgeComparator::resume(&spec(10, 50), cmp.states());
        let v = resumed.compare(&metric(), &sample(0.0, 0.0), &sample(0.0, 0.0));
        assert_eq!(v.outcome, Outcome::Fail, "a Fail survives a restart");
    }

    #[test]
    fn the_last_planned_look_concludes() {
        let cmp = JudgeComparator::new(&spec(25, 50));
        let m = metric();
        let v = cmp.compare(&m, &sample(25_000.0, 250.0), &sample(75_000.0, 750.0));
        assert_eq!(v.outcome, Outcome::Pass);
        assert!(v.explanation.ends_with("continuing"), "{}", v.explanation);
        // A replay of the same tick gives the same verdict and does not count twice.
        let again = cmp.compare(&m, &sample(25_000.0, 250.0), &sample(75_000.0, 750.0));
        assert_eq!(again.explanation, v.explanation);
        assert_eq!(cmp.states()["request-success-rate"].intervals, 1);
        let cmp = JudgeComparator::resume(&spec(25, 50), cmp.states());
        let v = cmp.compare(&m, &sample(50_000.0, 500.0), &sample(50_000.0, 500.0));
        assert_eq!(v.outcome, Outcome::Pass);
        assert!(v.explanation.ends_with("passing"), "{}", v.explanation);
        // Too little traffic at the end: NoData with a hold (the engine keeps the weight).
        let quiet = JudgeComparator::new(&spec(50, 50));
        let v = quiet.compare(&m, &sample(10.0, 0.0), &sample(10.0, 0.0));
        assert_eq!(v.outcome, Outcome::NoData);
        assert!(v.explanation.contains("holding"), "{}", v.explanation);
        assert_eq!(
            quiet.hold("request-success-rate"),
            Some(Hold::MoreData { held: 1, limit: 10 })
        );
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let cmp = JudgeComparator::new(&spec(10, 50));
        let v = cmp.compare(&metric(), &sample(f64::NAN, 0.0), &sample(1.0, 0.0));
        assert_eq!(v.outcome, Outcome::Error);
        assert!(v.explanation.contains("canary requests is NaN"));
        let v = cmp.compare(&metric(), &sample(1.0, 5.0), &sample(1.0, 0.0));
        assert_eq!(v.outcome, Outcome::Error);
        let no_judge = CanaryMetric {
            name: "x".into(),
            ..Default::default()
        };
        let v = cmp.compare(&no_judge, &sample(1.0, 0.0), &sample(1.0, 0.0));
        assert_eq!(v.outcome, Outcome::Error);
        let bad = CanaryMetric {
            judge: Some(JudgeSpec {
                alpha: Some(2.0),
                ..Default::default()
            }),
            ..metric()
        };
        let v = cmp.compare(&bad, &sample(1.0, 0.0), &sample(1.0, 0.0));
        assert!(v.explanation.contains("alpha"), "{}", v.explanation);
    }

    #[test]
    fn latency_histograms_fix_the_bound_first_then_count_slow_requests() {
        let m = CanaryMetric {
            name: "request-duration".into(),
            judge: Some(JudgeSpec::default()),
            ..Default::default()
        };
        let h = |fast: f64, mid: f64, total: f64| {
            super::latency::to_sample(&[(0.1, fast), (0.5, mid), (f64::INFINITY, total)])
        };
        // Primary: 99% under 0.5 s. The first look only fixes the bound (0.5) from it.
        let cmp = JudgeComparator::new(&spec(20, 60));
        let v = cmp.compare(&m, &h(800.0, 990.0, 1000.0), &h(8000.0, 9900.0, 10000.0));
        assert_eq!(v.outcome, Outcome::Pass, "{}", v.explanation);
        let state = &cmp.states()["request-duration"];
        assert_eq!(state.latency_bound, Some(0.5));
        assert_eq!(
            state.canary.requests, 0,
            "the bound's own look judges nothing"
        );
        // Then the canary has 5% of requests over 0.5 s against the primary's 1%: rolled back.
        let mut states = cmp.states();
        let mut last = None;
        for _ in 0..3 {
            let cmp = JudgeComparator::resume(&spec(20, 60), states);
            last = Some(cmp.compare(&m, &h(500.0, 950.0, 1000.0), &h(8000.0, 9900.0, 10000.0)));
            states = cmp.states();
        }
        let v = last.unwrap();
        assert_eq!(v.outcome, Outcome::Fail, "{}", v.explanation);
        assert!(
            v.explanation
                .starts_with("slow-request ratio 5.0x (canary 150/3000, primary 300/30000)"),
            "{}",
            v.explanation
        );
        // A side without requests has no histogram series: no evidence, no error.
        let cmp = JudgeComparator::resume(&spec(20, 60), states);
        let none = super::latency::to_sample(&[]);
        let v = cmp.compare(&m, &none, &h(8000.0, 9900.0, 10000.0));
        assert_ne!(v.outcome, Outcome::Error, "{}", v.explanation);
    }

    fn judged_canary() -> CanarySpec {
        CanarySpec {
            analysis: Some(CanaryAnalysis {
                interval: Some("1m".into()),
                threshold: Some(1),
                step_weight: Some(10),
                max_weight: Some(50),
                metrics: Some(vec![metric()]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn run(canary: Sample, primary: Sample) -> crate::sim::Simulation {
        let scenario = crate::sim::Scenario {
            metrics: vec![crate::sim::MetricScript {
                name: "request-success-rate".into(),
                window: crate::sim::Window::default(),
                result: crate::sim::Scripted::Counts { canary, primary },
            }],
            duration_ms: 3_600_000,
            ..Default::default()
        };
        crate::sim::simulate("prod", "web", &judged_canary(), &scenario)
    }

    #[test]
    fn the_engine_promotes_a_healthy_canary_and_rolls_back_a_regression() {
        let s = run(sample(1000.0, 10.0), sample(9000.0, 90.0));
        assert_eq!(
            s.verdict,
            crate::sim::Verdict::Promoted,
            "{:#?}",
            s.timeline
        );
        let s = run(sample(1000.0, 40.0), sample(9000.0, 90.0));
        assert_eq!(s.verdict, crate::sim::Verdict::RolledBack);
        let said: Vec<&String> = s.timeline.iter().flat_map(|e| &e.messages).collect();
        assert!(
            said.iter()
                .any(|m| m.contains("error ratio 4.0x") && m.contains("rolling back")),
            "{said:#?}"
        );
    }
}
