//! The evidence arithmetic of the sequential judge: a mixture of likelihood ratios on the
//! canary's share of the bad requests, conditioned on each interval's totals.
//!
//! Why conditioning: in one interval the canary serves `n` requests and the primary `m`; if bad
//! requests arrive at rates `ρ·λ` (canary) and `λ` (primary) per request, then given the
//! interval's total of bad requests `k`, the canary's count is Binomial(k, π(ρ)) with
//! `π(ρ) = ρn / (ρn + m)`. The unknown base rate `λ` cancels, and so does any change of the
//! traffic weight or of the base rate between intervals: each interval is judged at its own share.
//!
//! Why it is valid however often one looks: under H0 (ρ ≤ 1) the product over intervals of
//! `P_ρ(x)/P_1(x)` for a fixed ρ > 1 is a nonnegative supermartingale with mean ≤ 1 (for ρ = 1
//! exactly a martingale; for a canary better than the primary the ratio shrinks; and when the
//! per-request counts make the true law hypergeometric rather than binomial, the convexity of
//! `x ↦ a^x b^(k-x)` keeps the expectation ≤ 1). A fixed mixture of such products is one too,
//! so Ville's inequality gives P(evidence ever ≥ 1/α | H0) ≤ α.

use serde::{Deserialize, Serialize};

/// The ratios ρ the mixture bets on, with their prior weights (summing to 1).
#[derive(Clone, Debug, PartialEq)]
pub struct Mixture {
    ratios: Vec<f64>,
    log_weights: Vec<f64>,
}

/// How far above `minEffect` the mixture reaches: up to 8× `minEffect` in steps of √2, so a
/// 1.5 setting covers 1.5x … 12x — larger regressions are caught by the first component that
/// fits, at little loss.
const SPAN_STEPS: usize = 7;
const STEP: f64 = std::f64::consts::SQRT_2;

impl Mixture {
    /// The mixture for a smallest effect worth catching of `min_effect` (> 1): a geometric grid
    /// from `min_effect` upwards. Weights fall off geometrically (halving per step) because the
    /// low end is where evidence is hardest to gather and most needed.
    pub fn for_min_effect(min_effect: f64) -> Self {
        let ratios: Vec<f64> = (0..SPAN_STEPS)
            .map(|j| min_effect * STEP.powi(j as i32))
            .collect();
        let raw: Vec<f64> = (0..SPAN_STEPS).map(|j| 0.5f64.powi(j as i32)).collect();
        let total: f64 = raw.iter().sum();
        let log_weights = raw.iter().map(|w| (w / total).ln()).collect();
        Self {
            ratios,
            log_weights,
        }
    }

    pub fn ratios(&self) -> &[f64] {
        &self.ratios
    }

    pub fn len(&self) -> usize {
        self.ratios.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ratios.is_empty()
    }

    /// log of the mixture evidence Σ_j w_j·exp(L_j), given the per-component log likelihood
    /// ratios `log_lr` (computed stably: the largest term is factored out).
    pub fn log_evidence(&self, log_lr: &[f64]) -> f64 {
        let terms: Vec<f64> = self
            .log_weights
            .iter()
            .zip(log_lr)
            .map(|(w, l)| w + l)
            .collect();
        let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if max == f64::NEG_INFINITY {
            return max;
        }
        max + terms.iter().map(|t| (t - max).exp()).sum::<f64>().ln()
    }
}

/// One interval's counts of one side: requests served and how many of them were bad (failed, or
/// slower than the latency bound).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub requests: u64,
    pub bad: u64,
}

impl Counts {
    pub fn new(requests: u64, bad: u64) -> Self {
        Self { requests, bad }
    }
}

/// The canary's conditional probability of holding a bad request when its per-request rate is
/// `ratio` times the primary's.
pub fn canary_share(canary_requests: f64, primary_requests: f64, ratio: f64) -> f64 {
    let c = ratio * canary_requests;
    c / (c + primary_requests)
}

/// log P_ρ(x)/P_1(x) for one interval. Zero (no information) when either side served nothing or
/// nothing went wrong: missing traffic never moves the evidence.
pub fn interval_log_lr(canary: Counts, primary: Counts, ratio: f64) -> f64 {
    if canary.requests == 0 || primary.requests == 0 || canary.bad + primary.bad == 0 {
        return 0.0;
    }
    let (n, m) = (canary.requests as f64, primary.requests as f64);
    let s = canary_share(n, m, 1.0);
    let p = canary_share(n, m, ratio);
    let (x, y) = (canary.bad as f64, primary.bad as f64);
    x * (p / s).ln() + y * ((1.0 - p) / (1.0 - s)).ln()
}

/// Kullback–Leibler divergence of Bernoulli(p) from Bernoulli(q).
fn kl_bernoulli(p: f64, q: f64) -> f64 {
    let term = |a: f64, b: f64| if a == 0.0 { 0.0 } else { a * (a / b).ln() };
    term(p, q) + term(1.0 - p, 1.0 - q)
}

/// The log-evidence one interval would add on average for the ρ component if the canary really
/// were ρ times worse, with this interval's total of bad requests: k·KL(π(ρ) ‖ π(1)). The sum
/// over intervals says how large a regression this much traffic could have shown.
pub fn interval_information(canary: Counts, primary: Counts, ratio: f64) -> f64 {
    if canary.requests == 0 || primary.requests == 0 {
        return 0.0;
    }
    let (n, m) = (canary.requests as f64, primary.requests as f64);
    let k = (canary.bad + primary.bad) as f64;
    k * kl_bernoulli(canary_share(n, m, ratio), canary_share(n, m, 1.0))
}

/// Running sums the judge keeps so it can say, at the end, which ratio the traffic could catch:
/// per interval k and share are folded into the information at a few probe ratios on demand,
/// so the state stores the intervals' (share, k) pairs compactly.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Exposure {
    /// (canary share of requests, total bad requests) per informative interval.
    pub intervals: Vec<(f64, u64)>,
}

impl Exposure {
    pub fn add(&mut self, canary: Counts, primary: Counts) {
        let k = canary.bad + primary.bad;
        if canary.requests == 0 || primary.requests == 0 || k == 0 {
            return;
        }
        let s = canary_share(canary.requests as f64, primary.requests as f64, 1.0);
        self.intervals.push((s, k));
    }

    /// Σ k·KL(π(ρ) ‖ s): expected log likelihood ratio of the ρ component under ρ.
    pub fn information(&self, ratio: f64) -> f64 {
        self.intervals
            .iter()
            .map(|&(s, k)| {
                let p = ratio * s / (ratio * s + 1.0 - s);
                k as f64 * kl_bernoulli(p, s)
            })
            .sum()
    }

    /// The smallest ratio whose expected evidence reaches `needed` (a log-evidence), or `None`
    /// when even a 1000-fold regression would not have shown.
    pub fn detectable_ratio(&self, needed: f64) -> Option<f64> {
        let (mut lo, mut hi) = (1.0f64, 1000.0f64);
        if self.information(hi) < needed {
            return None;
        }
        // information grows with the ratio, so bisect on its logarithm.
        for _ in 0..60 {
            let mid = (lo * hi).sqrt();
            if self.information(mid) >= needed {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Some(hi)
    }
}

/// Mantel–Haenszel estimate of the canary-to-primary ratio of bad-request rates over the
/// intervals: Σ x·m/(n+m) / Σ y·n/(n+m). `None` while the primary side has shown nothing bad.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RatioEstimate {
    pub numerator: f64,
    pub denominator: f64,
}

impl RatioEstimate {
    pub fn add(&mut self, canary: Counts, primary: Counts) {
        let total = (canary.requests + primary.requests) as f64;
        if canary.requests == 0 || primary.requests == 0 {
            return;
        }
        self.numerator += canary.bad as f64 * primary.requests as f64 / total;
        self.denominator += primary.bad as f64 * canary.requests as f64 / total;
    }

    pub fn value(&self) -> Option<f64> {
        (self.denominator > 0.0).then(|| self.numerator / self.denominator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(requests: u64, bad: u64) -> Counts {
        Counts::new(requests, bad)
    }

    #[test]
    fn log_lr_matches_the_binomial_ratio_by_hand() {
        // n = m: s = 1/2; ratio 2: π = 2/3. x = 3, y = 1.
        let l = interval_log_lr(c(100, 3), c(100, 1), 2.0);
        let expected = 3.0 * (4.0f64 / 3.0).ln() + (2.0f64 / 3.0).ln();
        assert!((l - expected).abs() < 1e-12, "{l} vs {expected}");
    }

    #[test]
    fn no_traffic_or_no_errors_carries_no_evidence() {
        for (a, b) in [
            (c(0, 0), c(100, 5)),
            (c(100, 0), c(0, 0)),
            (c(50, 0), c(50, 0)),
        ] {
            assert_eq!(interval_log_lr(a, b, 3.0), 0.0);
            assert_eq!(interval_information(a, b, 3.0), 0.0);
        }
    }

    #[test]
    fn errors_only_on_the_primary_lower_the_evidence() {
        assert!(interval_log_lr(c(100, 0), c(100, 4), 2.0) < 0.0);
        assert!(interval_log_lr(c(100, 4), c(100, 0), 2.0) > 0.0);
    }

    #[test]
    fn the_likelihood_ratio_has_mean_one_under_h0() {
        // Exact expectation over Binomial(k, s): the martingale property Ville's inequality needs.
        let (n, m, k) = (30u64, 70u64, 12u64);
        let s = 0.3f64;
        let mut mean = 0.0;
        let mut log_binom = 0.0f64; // log C(k, x)
        for x in 0..=k {
            if x > 0 {
                log_binom += ((k - x + 1) as f64).ln() - (x as f64).ln();
            }
            let pmf = (log_binom + x as f64 * s.ln() + (k - x) as f64 * (1.0 - s).ln()).exp();
            mean += pmf * interval_log_lr(c(n, x), c(m, k - x), 2.5).exp();
        }
        assert!((mean - 1.0).abs() < 1e-9, "E[LR] = {mean}");
    }

    #[test]
    fn mixture_evidence_is_the_weighted_sum() {
        let mix = Mixture::for_min_effect(1.5);
        assert_eq!(mix.len(), SPAN_STEPS);
        assert!((mix.ratios()[2] - 3.0).abs() < 1e-12);
        // All components at LR 1: evidence 1.
        assert!(mix.log_evidence(&vec![0.0; mix.len()]).abs() < 1e-12);
        let lr: Vec<f64> = (0..mix.len()).map(|j| j as f64).collect();
        let direct: f64 = mix
            .log_weights
            .iter()
            .zip(&lr)
            .map(|(w, l)| (w + l).exp())
            .sum();
        assert!((mix.log_evidence(&lr) - direct.ln()).abs() < 1e-12);
        // Huge values do not overflow.
        assert!(mix.log_evidence(&vec![2000.0; mix.len()]).is_finite());
    }

    #[test]
    fn detectable_ratio_shrinks_with_traffic() {
        let mut e = Exposure::default();
        e.add(c(300, 3), c(700, 7));
        let few = e.detectable_ratio(100f64.ln()).unwrap();
        for _ in 0..20 {
            e.add(c(300, 3), c(700, 7));
        }
        let many = e.detectable_ratio(100f64.ln()).unwrap();
        assert!(many < few && many > 1.0, "{many} vs {few}");
        assert!((e.information(many) - 100f64.ln()).abs() < 1e-6);
        assert_eq!(Exposure::default().detectable_ratio(1.0), None);
    }

    #[test]
    fn ratio_estimate_recovers_a_known_ratio() {
        let mut r = RatioEstimate::default();
        r.add(c(1000, 20), c(9000, 90));
        r.add(c(5000, 100), c(5000, 50));
        assert!((r.value().unwrap() - 2.0).abs() < 1e-12);
        assert_eq!(RatioEstimate::default().value(), None);
    }
}
