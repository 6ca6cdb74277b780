//! Exact conditional distribution of the canary's total of bad requests.
//!
//! Given each interval's total of bad requests `k_i` and the canary's share of the requests
//! `s_i`, a canary whose per-request rate is ρ times the primary's puts `x_i ~ Binomial(k_i,
//! π_i(ρ))` bad requests on its side, with `π_i(ρ)/(1-π_i(ρ)) = ρ·s_i/(1-s_i)`. The joint law
//! is an exponential family in ln ρ whose sufficient statistic is `X = Σ x_i`: a test that
//! rejects for large X is uniformly most powerful against every ρ > 1 at once, whatever the
//! weights and base rates of the intervals. Its null law is the convolution of the binomials.

use super::sim::ln_factorial;

/// Probabilities below this (relative to the largest) are dropped from the tails: they are far
/// beyond any level a judge uses, and dropping them keeps the convolution short.
const NEGLIGIBLE: f64 = 1e-20;

/// A distribution on `offset, offset+1, …`: `pmf[j]` is P(X = offset + j).
#[derive(Clone, Debug, PartialEq)]
pub struct Pmf {
    offset: u64,
    pmf: Vec<f64>,
}

impl Default for Pmf {
    fn default() -> Self {
        Self {
            offset: 0,
            pmf: vec![1.0],
        }
    }
}

/// Binomial(k, q) probabilities, trimmed of negligible tails.
fn binomial(k: u64, q: f64) -> Pmf {
    if q <= 0.0 {
        return Pmf::default();
    }
    if q >= 1.0 {
        return Pmf {
            offset: k,
            pmf: vec![1.0],
        };
    }
    let lnk = ln_factorial(k);
    let (lq, lr) = (q.ln(), (1.0 - q).ln());
    let logs: Vec<f64> = (0..=k)
        .map(|x| lnk - ln_factorial(x) - ln_factorial(k - x) + x as f64 * lq + (k - x) as f64 * lr)
        .collect();
    trimmed(0, logs.iter().map(|l| l.exp()).collect())
}

fn trimmed(offset: u64, pmf: Vec<f64>) -> Pmf {
    let max = pmf.iter().copied().fold(0.0, f64::max);
    let keep = |p: &f64| *p > max * NEGLIGIBLE;
    let first = pmf.iter().position(keep).unwrap_or(0);
    let last = pmf.iter().rposition(keep).unwrap_or(0);
    Pmf {
        offset: offset + first as u64,
        pmf: pmf[first..=last].to_vec(),
    }
}

impl Pmf {
    /// Adds an independent Binomial(k, q).
    pub fn add_binomial(&mut self, k: u64, q: f64) {
        let b = binomial(k, q);
        let mut out = vec![0.0; self.pmf.len() + b.pmf.len() - 1];
        for (i, &a) in self.pmf.iter().enumerate() {
            if a == 0.0 {
                continue;
            }
            for (j, &c) in b.pmf.iter().enumerate() {
                out[i + j] += a * c;
            }
        }
        *self = trimmed(self.offset + b.offset, out);
    }

    /// P(X ≥ x).
    pub fn upper_tail(&self, x: u64) -> f64 {
        if x <= self.offset {
            return 1.0;
        }
        let from = (x - self.offset) as usize;
        self.pmf.iter().skip(from).sum::<f64>().min(1.0)
    }

    /// The smallest c with P(X ≥ c) ≤ level.
    pub fn critical(&self, level: f64) -> u64 {
        let mut tail = 0.0;
        for j in (0..self.pmf.len()).rev() {
            tail += self.pmf[j];
            if tail > level {
                return self.offset + j as u64 + 1;
            }
        }
        self.offset
    }
}

/// The canary's conditional probability of holding one bad request in an interval where its
/// share of the requests is `s`, if its per-request rate is `ratio` times the primary's.
pub fn share_at(s: f64, ratio: f64) -> f64 {
    ratio * s / (ratio * s + 1.0 - s)
}

/// P(X ≥ c) when the canary is `ratio` times worse, for intervals given as (share, total bad).
pub fn power(intervals: &[(f64, u64)], ratio: f64, c: u64) -> f64 {
    let mut pmf = Pmf::default();
    for &(s, k) in intervals {
        pmf.add_binomial(k, share_at(s, ratio));
    }
    pmf.upper_tail(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn convolution_of_binomials_with_equal_share_is_binomial() {
        let mut p = Pmf::default();
        p.add_binomial(3, 0.5);
        p.add_binomial(5, 0.5);
        // Binomial(8, 1/2): P(X ≥ 6) = (28 + 8 + 1)/256.
        assert!((p.upper_tail(6) - 37.0 / 256.0).abs() < 1e-12);
        assert_eq!(p.upper_tail(0), 1.0);
        assert_eq!(p.upper_tail(9), 0.0);
        assert_eq!(p.critical(37.0 / 256.0 + 1e-12), 6);
        assert_eq!(p.critical(0.1), 7);
    }

    #[test]
    fn different_shares_by_hand() {
        // X = Bin(1, 0.2) + Bin(1, 0.6): P(X = 2) = 0.12, P(X ≥ 1) = 1 − 0.8·0.4.
        let mut p = Pmf::default();
        p.add_binomial(1, 0.2);
        p.add_binomial(1, 0.6);
        assert!((p.upper_tail(2) - 0.12).abs() < 1e-12);
        assert!((p.upper_tail(1) - 0.68).abs() < 1e-12);
    }

    #[test]
    fn trimming_keeps_the_mass() {
        let mut p = Pmf::default();
        for _ in 0..10 {
            p.add_binomial(400, 0.3);
        }
        let total: f64 = p.pmf.iter().sum();
        assert!((total - 1.0).abs() < 1e-9, "{total}");
        assert!(p.pmf.len() < 700, "{} kept of 4001", p.pmf.len());
        assert!(p.offset > 0);
    }

    #[test]
    fn power_grows_with_the_ratio() {
        let iv = [(0.3, 40u64), (0.5, 60)];
        let mut null = Pmf::default();
        for &(s, k) in &iv {
            null.add_binomial(k, s);
        }
        let c = null.critical(0.01);
        assert!(null.upper_tail(c) <= 0.01 && null.upper_tail(c - 1) > 0.01);
        let (p1, p2, p3) = (power(&iv, 1.0, c), power(&iv, 2.0, c), power(&iv, 3.0, c));
        assert!(
            p1 <= 0.01 && p1 < p2 && p2 < p3 && p3 > 0.9,
            "{p1} {p2} {p3}"
        );
    }
}
