//! The release model of the decision benchmark: a canary walks through weight steps, one
//! interval per step; requests arrive as a Poisson process at R per second, each one fails with
//! probability p on the primary and `ratio`·p on the canary. Rules (Flagger's fixed range,
//! serin's judge, the best fixed-sample test) decide on the same model.
//!
//! Randomness comes in as a source of uniform numbers in [0, 1) so this module needs no RNG
//! crate; the benchmark and the tests pass a seeded `rand` generator. Poisson counts are drawn
//! exactly (inversion for small means, Hörmann's PTRS rejection for large ones), and failures
//! and successes are two independent Poisson counts (Poisson splitting), which is the same
//! model as "Poisson requests, each failing with probability p" without a binomial sampler.

use super::evidence::{Counts, Mixture, interval_log_lr};
use super::sequential::{Judge, JudgeConfig, Verdict};

/// A uniform source: each call returns a number in [0, 1).
pub trait Uniform {
    fn next(&mut self) -> f64;
}

impl<F: FnMut() -> f64> Uniform for F {
    fn next(&mut self) -> f64 {
        self()
    }
}

/// ln(k!) — exact sums up to 64, Stirling's series beyond (error < 1e-12 there).
pub fn ln_factorial(k: u64) -> f64 {
    if k < 64 {
        return (2..=k).map(|i| (i as f64).ln()).sum();
    }
    let x = k as f64;
    x * x.ln() - x + 0.5 * (2.0 * std::f64::consts::PI * x).ln() + 1.0 / (12.0 * x)
        - 1.0 / (360.0 * x.powi(3))
        + 1.0 / (1260.0 * x.powi(5))
}

/// An exact Poisson(mean) draw.
pub fn poisson(mean: f64, u: &mut impl Uniform) -> u64 {
    if mean <= 0.0 {
        return 0;
    }
    if mean < 10.0 {
        // Inversion: walk the CDF.
        let mut k = 0u64;
        let mut p = (-mean).exp();
        let mut cdf = p;
        let target = u.next();
        while target > cdf && k < 1000 {
            k += 1;
            p *= mean / k as f64;
            cdf += p;
        }
        return k;
    }
    // PTRS (Hörmann 1993, "The transformed rejection method for generating Poisson random
    // variables"), valid for mean ≥ 10.
    let slam = mean.sqrt();
    let loglam = mean.ln();
    let b = 0.931 + 2.53 * slam;
    let a = -0.059 + 0.02483 * b;
    let inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
    let vr = 0.9277 - 3.6224 / (b - 2.0);
    loop {
        let uu = u.next() - 0.5;
        let v = u.next();
        let us = 0.5 - uu.abs();
        let k = ((2.0 * a / us + b) * uu + mean + 0.43).floor();
        if us >= 0.07 && v <= vr {
            return k as u64;
        }
        if k < 0.0 || (us < 0.013 && v > us) {
            continue;
        }
        let lhs = v.ln() + inv_alpha.ln() - (a / (us * us) + b).ln();
        let rhs = -mean + k * loglam - ln_factorial(k as u64);
        if lhs <= rhs {
            return k as u64;
        }
    }
}

/// The model of one release.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    /// Requests per second, both sides together.
    pub rate: f64,
    /// Probability that a primary request fails.
    pub p: f64,
    /// Canary failure probability over the primary's (1 = healthy).
    pub ratio: f64,
    /// Canary weights in percent, one interval each (Flagger: stepWeight 10, maxWeight 50).
    pub steps: Vec<u32>,
    pub interval_s: f64,
}

impl Model {
    /// One interval at `weight` percent: (canary, primary) counts.
    pub fn interval(&self, weight: u32, u: &mut impl Uniform) -> (Counts, Counts) {
        let requests = self.rate * self.interval_s;
        let w = f64::from(weight) / 100.0;
        let pc = (self.p * self.ratio).min(1.0);
        let canary = side(requests * w, pc, u);
        let primary = side(requests * (1.0 - w), self.p, u);
        (canary, primary)
    }
}

/// One side's counts: failures and successes are independent Poisson counts.
fn side(requests: f64, p: f64, u: &mut impl Uniform) -> Counts {
    let bad = poisson(requests * p, u);
    let ok = poisson(requests * (1.0 - p), u);
    Counts::new(bad + ok, bad)
}

/// How one release ended under one rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub rolled_back: bool,
    /// Ended neither promoted nor rolled back but handed to a person (or promoted by policy).
    pub inconclusive: bool,
    /// Intervals of data until the decision.
    pub intervals: u32,
}

/// Flagger's rule on request-success-rate: each tick checks the canary's failure percentage over
/// the last interval against `max_pct`; a failed check adds to the cumulative failedChecks and
/// holds the weight (Flagger returns before advancing); `threshold` failed checks roll back; a
/// passed check advances one step, and a pass at the last step promotes. No canary traffic is
/// no data, which Flagger counts as a failed check.
pub fn flagger(model: &Model, max_pct: f64, threshold: u32, u: &mut impl Uniform) -> Outcome {
    let (mut step, mut failed, mut intervals) = (0usize, 0u32, 0u32);
    loop {
        intervals += 1;
        let (canary, _) = model.interval(model.steps[step], u);
        let fails =
            canary.requests == 0 || canary.bad as f64 * 100.0 > max_pct * canary.requests as f64;
        if fails {
            failed += 1;
            if failed >= threshold {
                return Outcome {
                    rolled_back: true,
                    inconclusive: false,
                    intervals,
                };
            }
        } else {
            step += 1;
            if step == model.steps.len() {
                return Outcome {
                    rolled_back: false,
                    inconclusive: false,
                    intervals,
                };
            }
        }
    }
}

/// serin's judge: one interval per step (it never holds a step on a single bad interval), Fail
/// at once on evidence, then Pass, Hold at the last weight, or Inconclusive.
pub fn judge(model: &Model, config: &JudgeConfig, u: &mut impl Uniform) -> Outcome {
    let mut j = Judge::new(config.clone());
    let mut intervals = 0;
    let rolled_back = Outcome {
        rolled_back: true,
        inconclusive: false,
        intervals: 0,
    };
    for &w in &model.steps {
        intervals += 1;
        let (c, p) = model.interval(w, u);
        if j.observe(c, p)
            .expect("simulated counts are consistent")
            .verdict
            == Verdict::Fail
        {
            return Outcome {
                intervals,
                ..rolled_back
            };
        }
    }
    let last = *model.steps.last().expect("at least one step");
    loop {
        match j.conclude().verdict {
            Verdict::Pass | Verdict::Continue => {
                return Outcome {
                    rolled_back: false,
                    inconclusive: false,
                    intervals,
                };
            }
            Verdict::Inconclusive { .. } => {
                return Outcome {
                    rolled_back: false,
                    inconclusive: true,
                    intervals,
                };
            }
            Verdict::Fail => {
                return Outcome {
                    intervals,
                    ..rolled_back
                };
            }
            Verdict::Hold => {
                intervals += 1;
                let (c, p) = model.interval(last, u);
                if j.observe(c, p)
                    .expect("simulated counts are consistent")
                    .verdict
                    == Verdict::Fail
                {
                    return Outcome {
                        intervals,
                        ..rolled_back
                    };
                }
            }
        }
    }
}

/// The alternative the judge does not use, for comparison: a mixture SPRT (over ratios from
/// `min_effect` up) thresholded at 1/alpha by Ville's inequality, one look per step, no hold.
pub fn msprt(model: &Model, alpha: f64, min_effect: f64, u: &mut impl Uniform) -> Outcome {
    let mix = Mixture::for_min_effect(min_effect);
    let mut log_lr = vec![0.0; mix.len()];
    for (i, &w) in model.steps.iter().enumerate() {
        let (c, p) = model.interval(w, u);
        for (l, &rho) in log_lr.iter_mut().zip(mix.ratios()) {
            *l += interval_log_lr(c, p, rho);
        }
        if mix.log_evidence(&log_lr) >= (1.0 / alpha).ln() {
            return Outcome {
                rolled_back: true,
                inconclusive: false,
                intervals: i as u32 + 1,
            };
        }
    }
    Outcome {
        rolled_back: false,
        inconclusive: false,
        intervals: model.steps.len() as u32,
    }
}

/// P(Binomial(k, s) ≥ x), summed in log space.
pub fn binomial_upper_tail(k: u64, s: f64, x: u64) -> f64 {
    if x == 0 {
        return 1.0;
    }
    if x > k {
        return 0.0;
    }
    if s <= 0.0 {
        return 0.0;
    }
    if s >= 1.0 {
        return 1.0;
    }
    let lnk = ln_factorial(k);
    (x..=k)
        .map(|i| {
            (lnk - ln_factorial(i) - ln_factorial(k - i)
                + i as f64 * s.ln()
                + (k - i) as f64 * (1.0 - s).ln())
            .exp()
        })
        .sum::<f64>()
        .min(1.0)
}

/// The best possible reference: one exact test on the final counts of all steps, with the
/// canary's share of the requests known, at level `alpha` (one-sided: "canary worse"; with
/// `two_sided` it spends only alpha/2 on that side, as a two-sided test does). It looks once, at
/// the end, so it is not a usable rule — it is the limit of what this much traffic can show.
pub fn fixed_test(model: &Model, alpha: f64, two_sided: bool, u: &mut impl Uniform) -> Outcome {
    let (mut c, mut p) = (Counts::default(), Counts::default());
    for &w in &model.steps {
        let (ci, pi) = model.interval(w, u);
        c.requests += ci.requests;
        c.bad += ci.bad;
        p.requests += pi.requests;
        p.bad += pi.bad;
    }
    let k = c.bad + p.bad;
    let total = c.requests + p.requests;
    let level = if two_sided { alpha / 2.0 } else { alpha };
    let rolled_back = total > 0
        && k > 0
        && binomial_upper_tail(k, c.requests as f64 / total as f64, c.bad) <= level;
    Outcome {
        rolled_back,
        inconclusive: false,
        intervals: model.steps.len() as u32,
    }
}

/// Rates over many releases.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Tally {
    pub releases: u32,
    pub rolled_back: u32,
    pub inconclusive: u32,
    pub intervals: u64,
}

impl Tally {
    pub fn add(&mut self, o: Outcome) {
        self.releases += 1;
        self.rolled_back += u32::from(o.rolled_back);
        self.inconclusive += u32::from(o.inconclusive);
        self.intervals += u64::from(o.intervals);
    }
    pub fn rollback_rate(&self) -> f64 {
        f64::from(self.rolled_back) / f64::from(self.releases.max(1))
    }
    pub fn inconclusive_rate(&self) -> f64 {
        f64::from(self.inconclusive) / f64::from(self.releases.max(1))
    }
    pub fn mean_intervals(&self) -> f64 {
        self.intervals as f64 / f64::from(self.releases.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn source(seed: u64) -> impl FnMut() -> f64 {
        let mut rng = StdRng::seed_from_u64(seed);
        move || rng.random::<f64>()
    }

    #[test]
    fn ln_factorial_is_continuous_at_the_switch() {
        let exact: f64 = (2..=64u64).map(|i| (i as f64).ln()).sum();
        assert!((ln_factorial(64) - exact).abs() < 1e-10);
        assert_eq!(ln_factorial(0), 0.0);
        assert_eq!(ln_factorial(1), 0.0);
    }

    #[test]
    fn poisson_has_the_right_mean_and_variance() {
        // 40,000 draws: the standard error of the mean is sqrt(mean/40000); 5 SE is the bound.
        for mean in [0.7, 4.0, 12.0, 250.0, 3000.0] {
            let mut u = source(7);
            let n = 40_000;
            let xs: Vec<f64> = (0..n).map(|_| poisson(mean, &mut u) as f64).collect();
            let m = xs.iter().sum::<f64>() / n as f64;
            let v = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64;
            let se = (mean / n as f64).sqrt();
            assert!((m - mean).abs() < 5.0 * se, "mean {m} for {mean}");
            // Var of the sample variance of a Poisson ≈ (mean + 2 mean²)/n.
            let se_v = ((mean + 2.0 * mean * mean) / n as f64).sqrt();
            assert!((v - mean).abs() < 5.0 * se_v, "variance {v} for {mean}");
        }
        assert_eq!(poisson(0.0, &mut source(1)), 0);
    }

    #[test]
    fn binomial_tail_by_hand() {
        // P(Bin(3, 0.5) ≥ 2) = 4/8.
        assert!((binomial_upper_tail(3, 0.5, 2) - 0.5).abs() < 1e-12);
        assert_eq!(binomial_upper_tail(3, 0.5, 0), 1.0);
        assert_eq!(binomial_upper_tail(3, 0.5, 4), 0.0);
    }

    fn model(p: f64, ratio: f64) -> Model {
        Model {
            rate: 20.0,
            p,
            ratio,
            steps: vec![10, 20, 30, 40, 50],
            interval_s: 60.0,
        }
    }

    #[test]
    fn flagger_rule_rolls_back_most_healthy_canaries_at_a_tight_range() {
        // The reference: max 1%, threshold 3, 20 req/s, p = 1% → 68% false rollbacks.
        // 4,000 releases: SE ≈ 0.74 points; 5 SE = 3.7.
        let mut u = source(11);
        let mut t = Tally::default();
        for _ in 0..4000 {
            t.add(flagger(&model(0.01, 1.0), 1.0, 3, &mut u));
        }
        assert!(
            (t.rollback_rate() - 0.68).abs() < 0.037,
            "{}",
            t.rollback_rate()
        );
        assert!(t.mean_intervals() >= 3.0);
    }

    #[test]
    fn the_judge_keeps_false_rollbacks_under_alpha() {
        // Healthy canaries, 20 req/s, p = 1%, five steps and up to 10 held intervals. The union
        // bound guarantees ≤ 1%; with 3,000 releases the standard error at 1% is 0.18 points,
        // so a rate above 1% + 3 SE = 1.55% would mean the guarantee is broken.
        let cfg = JudgeConfig::new(0.01, 2.0, 5).unwrap();
        let mut u = source(21);
        let mut t = Tally::default();
        for _ in 0..3000 {
            t.add(judge(&model(0.01, 1.0), &cfg, &mut u));
        }
        assert!(
            t.rollback_rate() <= 0.0155,
            "false rollbacks {}",
            t.rollback_rate()
        );
        // And a base rate that differs from the primary's does not matter: only the ratio does.
        let mut t = Tally::default();
        for _ in 0..3000 {
            t.add(judge(&model(0.05, 1.0), &cfg, &mut u));
        }
        assert!(
            t.rollback_rate() <= 0.0155,
            "false rollbacks {}",
            t.rollback_rate()
        );
    }

    #[test]
    fn the_judge_catches_a_3x_regression_with_ample_traffic() {
        // 50 req/s, p = 2%, canary 3x: the fixed test would catch essentially all; require 95%
        // over 500 releases (a true rate of 99% makes < 95% a > 6 SE event).
        let cfg = JudgeConfig::new(0.01, 1.5, 5).unwrap();
        let m = Model {
            rate: 50.0,
            ..model(0.02, 3.0)
        };
        let mut u = source(5);
        let mut t = Tally::default();
        for _ in 0..500 {
            t.add(judge(&m, &cfg, &mut u));
        }
        assert!(t.rollback_rate() >= 0.95, "detected {}", t.rollback_rate());
        assert!(t.mean_intervals() <= 5.0);
    }

    #[test]
    fn no_traffic_on_the_canary_never_rolls_back() {
        // A canary that receives nothing (weights 0): the judge has no evidence either way.
        let cfg = JudgeConfig::new(0.01, 1.5, 5).unwrap().with_hold(3, false);
        let m = Model {
            steps: vec![0, 0, 0, 0, 0],
            ..model(0.05, 10.0)
        };
        let mut u = source(9);
        for _ in 0..200 {
            let o = judge(&m, &cfg, &mut u);
            assert!(!o.rolled_back && o.inconclusive, "{o:?}");
            assert_eq!(o.intervals, 8);
        }
    }
}
