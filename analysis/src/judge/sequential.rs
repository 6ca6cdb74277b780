//! The sequential judge: feed it each interval's counts for both sides; it says Continue or Fail
//! at once, and at the end of the planned steps Pass, Hold (more data at the current weight) or
//! Inconclusive. Its state is plain data so the controller can keep it in the Canary's status
//! and resume after a restart.
//!
//! The test: at look t it computes the exact p-value of the canary's total of bad requests given
//! every interval's totals and traffic shares (see [`super::exact`]: the uniformly most powerful
//! statistic for "canary worse by any ratio"), and fails when p ≤ α_t. The levels α_t are fixed
//! in advance for every look t = 1, 2, … and sum to α, so by the union bound
//! P(ever failing a canary that is no worse) ≤ α however many looks there are and whenever the
//! analysis stops. Most of α (90%) goes to the last planned look (where the data are), 5% to the
//! earlier looks together (glaring regressions fail at once), 4% evenly to the held looks and a
//! halving 1% tail to looks beyond (a run prolonged by other checks).
//!
//! Why not a mixture SPRT with Ville's inequality (also anytime-valid, [`super::evidence`])?
//! Its bar 1/α is loose for five one-minute looks: the benchmark shows it catching 39% of 2x
//! regressions at 20 req/s where this design catches 65% at the same guaranteed α.

use serde::{Deserialize, Serialize};

use super::evidence::{Counts, Exposure, RatioEstimate};
use super::exact::{Pmf, power};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JudgeError {
    #[error("judge alpha {0} must be in (0, 0.5), e.g. 0.01")]
    Alpha(f64),
    #[error("judge minEffect {0} must be a ratio above 1, e.g. 1.5")]
    MinEffect(f64),
    #[error(
        "{side} reported {bad} bad requests out of {requests}: a count of bad requests cannot exceed the requests; check the count queries"
    )]
    Counts {
        side: &'static str,
        requests: u64,
        bad: u64,
    },
}

/// What the judge counts as bad, for its explanations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Subject {
    #[default]
    Errors,
    /// Requests slower than the latency bound taken from the primary.
    Slow,
}

impl Subject {
    fn label(self) -> &'static str {
        match self {
            Subject::Errors => "error",
            Subject::Slow => "slow-request",
        }
    }
}

/// Share of α spent on the looks before the last planned one, together.
const EARLY_SHARE: f64 = 0.05;
/// Share of α for the held looks after the plan, split evenly over `holdIntervals`.
const HOLD_SHARE: f64 = 0.04;
/// Share of α for looks beyond plan and hold (a run prolonged by other checks), halving.
const TAIL_SHARE: f64 = 0.01;
/// "The traffic could have caught minEffect" means: at least this chance to fail a canary
/// that much worse.
pub const SUFFICIENT_POWER: f64 = 0.5;

/// The judge's settings (see `serin_api::judge::JudgeSpec` for the user-facing form).
#[derive(Clone, Debug, PartialEq)]
pub struct JudgeConfig {
    alpha: f64,
    min_effect: f64,
    planned: u32,
    hold_intervals: u32,
    promote_on_inconclusive: bool,
    subject: Subject,
}

impl JudgeConfig {
    /// `planned`: the number of intervals the analysis plans (its weight steps or iterations);
    /// at least 1.
    pub fn new(alpha: f64, min_effect: f64, planned: u32) -> Result<Self, JudgeError> {
        if !(alpha > 0.0 && alpha < 0.5) {
            return Err(JudgeError::Alpha(alpha));
        }
        if !(min_effect > 1.0 && min_effect.is_finite()) {
            return Err(JudgeError::MinEffect(min_effect));
        }
        Ok(Self {
            alpha,
            min_effect,
            planned: planned.max(1),
            hold_intervals: serin_api::judge::DEFAULT_HOLD_INTERVALS,
            promote_on_inconclusive: false,
            subject: Subject::Errors,
        })
    }

    /// From a Canary metric's `judge`, with serin's defaults for what it leaves out.
    pub fn from_spec(spec: &serin_api::judge::JudgeSpec, planned: u32) -> Result<Self, JudgeError> {
        Ok(Self::new(spec.alpha(), spec.min_effect(), planned)?
            .with_hold(spec.hold_intervals(), spec.promote_on_inconclusive()))
    }

    /// Hold up to `intervals` extra intervals when inconclusive; then promote or pause.
    pub fn with_hold(mut self, intervals: u32, promote: bool) -> Self {
        self.hold_intervals = intervals;
        self.promote_on_inconclusive = promote;
        self
    }

    pub fn with_subject(mut self, subject: Subject) -> Self {
        self.subject = subject;
        self
    }

    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    pub fn min_effect(&self) -> f64 {
        self.min_effect
    }

    /// α_t, the level of look `t` (1-based). Σ over all t ≥ 1 is α; the last planned look gets
    /// the bulk (90%, or 95% with a single planned look).
    pub fn level(&self, t: u32) -> f64 {
        let (k, h, a) = (self.planned, self.hold_intervals, self.alpha);
        let early = if k > 1 { EARLY_SHARE } else { 0.0 };
        let hold = if h > 0 { HOLD_SHARE } else { 0.0 };
        if t == 0 {
            0.0
        } else if t < k {
            a * EARLY_SHARE / f64::from(k - 1)
        } else if t == k {
            a * (1.0 - early - hold - TAIL_SHARE)
        } else if t <= k + h {
            a * HOLD_SHARE / f64::from(h)
        } else {
            a * TAIL_SHARE * 0.5f64.powi((t - k - h).min(1000) as i32)
        }
    }
}

/// Everything the judge has accumulated; serialisable, resumable.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JudgeState {
    /// Looks so far (intervals observed, including those with no traffic).
    pub intervals: u32,
    /// Extra intervals spent holding for more data.
    pub held: u32,
    pub canary: Counts,
    pub primary: Counts,
    /// Bad canary requests in the intervals that carry information (both sides served).
    pub judged_bad: u64,
    pub ratio: RatioEstimate,
    /// (canary share, total bad) of each informative interval.
    pub exposure: Exposure,
    /// p-value at the last look.
    pub p_value: f64,
    /// Set once the p-value reached its level; the judge never takes a Fail back.
    pub failed: bool,
    /// Looks that ended inconclusive after the hold (the engine alerts on the first).
    #[serde(default)]
    pub paused_looks: u32,
    /// Latency: the bound (in the histogram's unit) taken from the primary at the first look
    /// with primary traffic, fixed for the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_bound: Option<f64>,
}

/// The judge's decision after an interval or at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    /// Mid-analysis: no reason to stop.
    Continue,
    /// Evidence ≥ bar: roll back.
    Fail,
    /// End of analysis: the canary is not shown worse, and the traffic could have shown
    /// `minEffect`.
    Pass,
    /// End of analysis, too little traffic so far: stay at the current weight one more interval.
    Hold,
    /// Too little traffic even after holding: promote or pause for a person, as configured.
    Inconclusive { promote: bool },
}

/// A decision with what it rests on, for status, events and logs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Judgement {
    pub verdict: Verdict,
    /// 1/p: how surprising the canary's bad requests would be if it were no worse.
    pub evidence: f64,
    /// 1/α_t: the evidence needed at this look.
    pub bar: f64,
    /// Estimated canary/primary ratio of bad-request rates (None until the primary shows any).
    pub ratio: Option<f64>,
    pub canary: Counts,
    pub primary: Counts,
    /// At the end: the chance this traffic gave of failing a canary `minEffect` times worse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power: Option<f64>,
    pub message: String,
}

/// The sequential judge: configuration plus state (and a cache of the null distribution).
#[derive(Clone, Debug, PartialEq)]
pub struct Judge {
    config: JudgeConfig,
    state: JudgeState,
    null: Pmf,
}

impl Judge {
    pub fn new(config: JudgeConfig) -> Self {
        let state = JudgeState {
            p_value: 1.0,
            ..JudgeState::default()
        };
        Self {
            config,
            state,
            null: Pmf::default(),
        }
    }

    /// Continues from a saved state.
    pub fn resume(config: JudgeConfig, state: JudgeState) -> Self {
        let mut null = Pmf::default();
        for &(s, k) in &state.exposure.intervals {
            null.add_binomial(k, s);
        }
        Self {
            config,
            state,
            null,
        }
    }

    pub fn state(&self) -> &JudgeState {
        &self.state
    }

    /// Fixes the latency bound for the rest of the run (see `latency`).
    pub fn set_latency_bound(&mut self, bound: f64) {
        self.state.latency_bound = Some(bound);
    }

    pub fn config(&self) -> &JudgeConfig {
        &self.config
    }

    /// Adds one interval's counts: Fail as soon as the evidence reaches the bar, else Continue.
    pub fn observe(&mut self, canary: Counts, primary: Counts) -> Result<Judgement, JudgeError> {
        for (side, c) in [("canary", canary), ("primary", primary)] {
            if c.bad > c.requests {
                return Err(JudgeError::Counts {
                    side,
                    requests: c.requests,
                    bad: c.bad,
                });
            }
        }
        let s = &mut self.state;
        s.intervals += 1;
        s.canary.requests += canary.requests;
        s.canary.bad += canary.bad;
        s.primary.requests += primary.requests;
        s.primary.bad += primary.bad;
        s.ratio.add(canary, primary);
        let before = s.exposure.intervals.len();
        s.exposure.add(canary, primary);
        if let Some(&(share, k)) = s.exposure.intervals.get(before) {
            s.judged_bad += canary.bad;
            self.null.add_binomial(k, share);
        }
        let s = &mut self.state;
        s.p_value = self.null.upper_tail(s.judged_bad);
        if s.judged_bad > 0 && s.p_value <= self.config.level(s.intervals) {
            s.failed = true;
        }
        let verdict = if self.state.failed {
            Verdict::Fail
        } else {
            Verdict::Continue
        };
        Ok(self.judgement(verdict, None))
    }

    /// The planned steps are over (call again after each held interval): Pass when the traffic
    /// could have shown `minEffect`, else Hold while holding is allowed, then Inconclusive.
    pub fn conclude(&mut self) -> Judgement {
        if self.state.failed {
            return self.judgement(Verdict::Fail, None);
        }
        let level = self.config.level(self.state.intervals.max(1));
        let critical = self.null.critical(level);
        let power = if self.state.exposure.intervals.is_empty() {
            0.0
        } else {
            power(
                &self.state.exposure.intervals,
                self.config.min_effect,
                critical.max(1),
            )
        };
        let verdict = if power >= SUFFICIENT_POWER {
            Verdict::Pass
        } else if self.state.held < self.config.hold_intervals {
            self.state.held += 1;
            Verdict::Hold
        } else {
            self.state.paused_looks += 1;
            Verdict::Inconclusive {
                promote: self.config.promote_on_inconclusive,
            }
        };
        self.judgement(verdict, Some(power))
    }

    fn judgement(&self, verdict: Verdict, power: Option<f64>) -> Judgement {
        let s = &self.state;
        let evidence = 1.0 / s.p_value.max(f64::MIN_POSITIVE);
        let bar = 1.0 / self.config.level(s.intervals.max(1));
        let ratio = s.ratio.value();
        let what = self.config.subject.label();
        let ratio_text = match ratio {
            Some(r) => format!("{what} ratio {r:.1}x"),
            None if s.canary.bad > 0 => format!("{what} ratio unbounded (primary has none)"),
            None => format!("{what} ratio n/a"),
        };
        let counts = format!(
            "canary {}/{}, primary {}/{}",
            s.canary.bad, s.canary.requests, s.primary.bad, s.primary.requests
        );
        let min = self.config.min_effect;
        let chance = format!(
            "this traffic gives a {:.0}% chance to catch {min}x",
            100.0 * power.unwrap_or(0.0)
        );
        let (e, b) = (num(evidence), num(bar));
        let tail = match verdict {
            Verdict::Fail => format!("evidence {e} ≥ {b}: rolling back"),
            Verdict::Continue => format!("evidence {e} < {b}: continuing"),
            Verdict::Pass => format!("evidence {e} < {b}, {chance}: passing"),
            Verdict::Hold => format!(
                "evidence {e} < {b}, but {chance}: holding at the current weight for more data ({}/{})",
                s.held, self.config.hold_intervals
            ),
            Verdict::Inconclusive { promote } => format!(
                "evidence {e} < {b}, but {chance} after {} extra intervals: inconclusive, {}",
                s.held,
                if promote {
                    "promoting as configured"
                } else {
                    "pausing for a person"
                }
            ),
        };
        Judgement {
            verdict,
            evidence,
            bar,
            ratio,
            canary: s.canary,
            primary: s.primary,
            power,
            message: format!("{ratio_text} ({counts}), {tail}"),
        }
    }
}

/// Evidence for people: whole numbers from 10 up, two decimals below.
fn num(x: f64) -> String {
    if x >= 1e6 {
        format!("{x:.1e}")
    } else if x >= 10.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(requests: u64, bad: u64) -> Counts {
        Counts::new(requests, bad)
    }

    fn judge() -> Judge {
        Judge::new(JudgeConfig::new(0.01, 1.5, 5).unwrap())
    }

    #[test]
    fn config_rejects_bad_values() {
        assert_eq!(JudgeConfig::new(0.0, 1.5, 5), Err(JudgeError::Alpha(0.0)));
        assert_eq!(JudgeConfig::new(0.5, 1.5, 5), Err(JudgeError::Alpha(0.5)));
        assert_eq!(
            JudgeConfig::new(0.01, 1.0, 5),
            Err(JudgeError::MinEffect(1.0))
        );
        assert!(matches!(
            JudgeConfig::new(f64::NAN, 2.0, 5),
            Err(JudgeError::Alpha(_))
        ));
        let msg = JudgeConfig::new(0.7, 2.0, 5).unwrap_err().to_string();
        assert!(msg.contains("alpha") && msg.contains("(0, 0.5)"), "{msg}");
    }

    #[test]
    fn from_spec_uses_defaults() {
        let cfg = JudgeConfig::from_spec(&serin_api::judge::JudgeSpec::default(), 5).unwrap();
        assert_eq!(cfg.alpha(), 0.01);
        assert_eq!(cfg.min_effect(), 1.5);
        assert!((cfg.level(5) - 0.009).abs() < 1e-15);
        let no_hold = cfg.clone().with_hold(0, false);
        let total: f64 = (1..200).map(|t| no_hold.level(t)).sum();
        assert!((total - 0.01).abs() < 1e-12, "levels sum to {total}");
        let total: f64 = (1..200).map(|t| cfg.level(t)).sum();
        assert!((total - 0.01).abs() < 1e-12, "levels sum to {total}");
        let single = JudgeConfig::new(0.01, 1.5, 1).unwrap();
        let total: f64 = (1..200).map(|t| single.level(t)).sum();
        assert!((total - 0.01).abs() < 1e-12, "levels sum to {total}");
    }

    #[test]
    fn a_clear_regression_fails_with_an_explanation() {
        let mut j = judge();
        let mut last = None;
        for _ in 0..5 {
            let r = j.observe(c(1000, 60), c(9000, 90)).unwrap();
            if r.verdict == Verdict::Fail {
                last = Some(r);
                break;
            }
            assert_eq!(r.verdict, Verdict::Continue);
        }
        let r = last.expect("6x regression on 1000 requests must fail within 5 intervals");
        assert!(r.evidence >= r.bar);
        assert!((r.ratio.unwrap() - 6.0).abs() < 1e-9);
        assert!(
            r.message
                .starts_with("error ratio 6.0x (canary 60/1000, primary 90/9000)")
        );
        assert!(r.message.ends_with(": rolling back"), "{}", r.message);
        assert!(r.message.contains(" ≥ "), "{}", r.message);
        // A Fail stays a Fail, even after good intervals and at the end.
        assert_eq!(
            j.observe(c(1000, 0), c(9000, 90)).unwrap().verdict,
            Verdict::Fail
        );
        assert_eq!(j.conclude().verdict, Verdict::Fail);
    }

    #[test]
    fn equal_rates_with_ample_traffic_pass() {
        let mut j = judge();
        for w in [10u64, 20, 30, 40, 50] {
            let n = 1000 * w;
            let m = 1000 * (100 - w);
            let r = j.observe(c(n, n / 50), c(m, m / 50)).unwrap();
            assert_eq!(r.verdict, Verdict::Continue, "{}", r.message);
        }
        let r = j.conclude();
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.message);
        assert!(r.power.unwrap() >= SUFFICIENT_POWER);
        assert!(r.message.ends_with("passing"));
    }

    #[test]
    fn zero_traffic_never_fails_and_holds_then_pauses() {
        let cfg = JudgeConfig::new(0.01, 1.5, 5).unwrap().with_hold(2, false);
        let mut j = Judge::new(cfg);
        for _ in 0..5 {
            assert_eq!(
                j.observe(c(0, 0), c(0, 0)).unwrap().verdict,
                Verdict::Continue
            );
        }
        // Errors only on a side with no partner traffic carry nothing either.
        assert_eq!(
            j.observe(c(0, 0), c(100, 30)).unwrap().verdict,
            Verdict::Continue
        );
        assert_eq!(j.state().p_value, 1.0);
        assert_eq!(j.conclude().verdict, Verdict::Hold);
        j.observe(c(0, 0), c(0, 0)).unwrap();
        assert_eq!(j.conclude().verdict, Verdict::Hold);
        let r = j.conclude();
        assert_eq!(r.verdict, Verdict::Inconclusive { promote: false });
        assert!(
            r.message.contains("a 0% chance to catch 1.5x"),
            "{}",
            r.message
        );
        assert!(r.message.ends_with("pausing for a person"));
    }

    #[test]
    fn inconclusive_can_promote() {
        let cfg = JudgeConfig::new(0.01, 1.5, 5).unwrap().with_hold(0, true);
        let mut j = Judge::new(cfg);
        j.observe(c(10, 0), c(90, 1)).unwrap();
        assert_eq!(
            j.conclude().verdict,
            Verdict::Inconclusive { promote: true }
        );
    }

    #[test]
    fn bad_counts_are_an_error_naming_the_side() {
        let err = judge().observe(c(10, 11), c(10, 0)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("canary reported 11 bad requests out of 10")
        );
    }

    #[test]
    fn serialised_state_resumes_to_the_same_decision() {
        let steps = [
            (100, 2, 900, 9),
            (200, 7, 800, 8),
            (300, 12, 700, 7),
            (400, 15, 600, 6),
        ];
        let mut whole = judge();
        let mut part = judge();
        for (i, &(n, x, m, y)) in steps.iter().enumerate() {
            let a = whole.observe(c(n, x), c(m, y)).unwrap();
            let json = serde_json::to_string(part.state()).unwrap();
            let state: JudgeState = serde_json::from_str(&json).unwrap();
            part = Judge::resume(JudgeConfig::new(0.01, 1.5, 5).unwrap(), state);
            let b = part.observe(c(n, x), c(m, y)).unwrap();
            assert_eq!(a, b, "interval {i}");
        }
        assert_eq!(whole.conclude(), part.conclude());
    }

    #[test]
    fn slow_requests_are_named_as_such() {
        let cfg = JudgeConfig::new(0.01, 1.5, 5)
            .unwrap()
            .with_subject(Subject::Slow);
        let r = Judge::new(cfg).observe(c(100, 2), c(900, 9)).unwrap();
        assert!(
            r.message.starts_with("slow-request ratio 2.0x"),
            "{}",
            r.message
        );
    }
}
