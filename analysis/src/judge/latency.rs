//! Latency as counts: a request is "slow" when it took longer than a bound read from the
//! primary's latency histogram, so a latency regression becomes a higher share of slow requests
//! on the canary and gets the same judge and the same guarantee as errors.
//!
//! The bound must not be chosen from the data it then judges (that would bias the primary's
//! count by construction): take it from the primary's histogram of the first interval (or any
//! earlier data), keep it for the whole analysis, and judge the intervals after it.

use super::evidence::Counts;

/// One cumulative histogram bucket, Prometheus style: `count` requests took at most `le` seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    pub le: f64,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LatencyError {
    #[error("histogram has no +Inf bucket: the total number of requests is unknown")]
    NoTotal,
    #[error(
        "histogram buckets are not cumulative: bucket le={le} counts {count}, fewer than {previous} before it"
    )]
    NotCumulative { le: f64, count: u64, previous: u64 },
    #[error(
        "latency bound {0} is not a bucket boundary of this histogram; use the same buckets on both sides"
    )]
    NotABoundary(f64),
}

fn checked(buckets: &[Bucket]) -> Result<Vec<Bucket>, LatencyError> {
    let mut sorted = buckets.to_vec();
    sorted.sort_by(|a, b| a.le.total_cmp(&b.le));
    if sorted.last().is_none_or(|b| b.le != f64::INFINITY) {
        return Err(LatencyError::NoTotal);
    }
    let mut previous = 0;
    for b in &sorted {
        if b.count < previous {
            return Err(LatencyError::NotCumulative {
                le: b.le,
                count: b.count,
                previous,
            });
        }
        previous = b.count;
    }
    Ok(sorted)
}

/// The smallest finite bucket boundary under which at least `quantile` of the primary's requests
/// fall. `None` when the primary served nothing or only the +Inf bucket reaches the quantile.
pub fn bound_from_primary(buckets: &[Bucket], quantile: f64) -> Result<Option<f64>, LatencyError> {
    let sorted = checked(buckets)?;
    let total = sorted.last().map(|b| b.count).unwrap_or(0);
    if total == 0 {
        return Ok(None);
    }
    let need = quantile * total as f64;
    Ok(sorted
        .iter()
        .find(|b| b.le.is_finite() && b.count as f64 >= need)
        .map(|b| b.le))
}

/// Requests and slow requests (slower than `bound`) of one side in one interval.
pub fn slow_counts(buckets: &[Bucket], bound: f64) -> Result<Counts, LatencyError> {
    let sorted = checked(buckets)?;
    let total = sorted.last().map(|b| b.count).unwrap_or(0);
    let under = sorted
        .iter()
        .find(|b| b.le == bound)
        .ok_or(LatencyError::NotABoundary(bound))?
        .count;
    Ok(Counts::new(total, total - under))
}

/// A side's histogram as a shell passes it in a [`Sample`](crate::Sample): `count` is the +Inf
/// bucket (all requests), `values` the finite buckets flattened as `le, count, le, count, …`
/// (JSON has no infinity). Counts are rounded (Prometheus' `increase()` extrapolates to
/// fractions) and made cumulative (extrapolated buckets may cross by a fraction).
pub fn from_sample(sample: &crate::Sample) -> Vec<Bucket> {
    let mut out: Vec<Bucket> = sample
        .values
        .chunks_exact(2)
        .filter(|p| p[0].is_finite())
        .map(|p| Bucket {
            le: p[0],
            count: p[1].max(0.0).round() as u64,
        })
        .collect();
    out.push(Bucket {
        le: f64::INFINITY,
        count: sample.count.max(0.0).round() as u64,
    });
    out.sort_by(|a, b| a.le.total_cmp(&b.le));
    let mut seen = 0;
    for b in out.iter_mut().rev() {
        // From the top: a lower bucket never holds more than the one above it.
        seen = if seen == 0 {
            b.count
        } else {
            b.count.min(seen)
        };
        b.count = seen;
    }
    out
}

/// The inverse of [`from_sample`], for shells and tests: `(le, cumulative count)` pairs, +Inf
/// included.
pub fn to_sample(buckets: &[(f64, f64)]) -> crate::Sample {
    let total = buckets
        .iter()
        .find(|(le, _)| le.is_infinite())
        .map(|&(_, c)| c)
        .unwrap_or(0.0);
    crate::Sample {
        count: total,
        failures: 0.0,
        values: buckets
            .iter()
            .filter(|(le, _)| le.is_finite())
            .flat_map(|&(le, c)| [le, c])
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(f64, u64)]) -> Vec<Bucket> {
        pairs
            .iter()
            .map(|&(le, count)| Bucket { le, count })
            .collect()
    }

    #[test]
    fn bound_is_the_primary_quantile_bucket() {
        let primary = h(&[(0.1, 900), (0.25, 985), (0.5, 995), (f64::INFINITY, 1000)]);
        assert_eq!(bound_from_primary(&primary, 0.99).unwrap(), Some(0.5));
        assert_eq!(bound_from_primary(&primary, 0.9).unwrap(), Some(0.1));
        // Unordered input is fine.
        let mut shuffled = primary.clone();
        shuffled.reverse();
        assert_eq!(bound_from_primary(&shuffled, 0.98).unwrap(), Some(0.25));
        assert_eq!(bound_from_primary(&primary, 0.999).unwrap(), None);
        let empty = h(&[(0.1, 0), (f64::INFINITY, 0)]);
        assert_eq!(bound_from_primary(&empty, 0.99).unwrap(), None);
    }

    #[test]
    fn slow_counts_are_the_requests_above_the_bound() {
        let canary = h(&[(0.1, 50), (0.25, 80), (0.5, 90), (f64::INFINITY, 100)]);
        assert_eq!(slow_counts(&canary, 0.5).unwrap(), Counts::new(100, 10));
        assert_eq!(
            slow_counts(&canary, 0.3),
            Err(LatencyError::NotABoundary(0.3))
        );
    }

    #[test]
    fn samples_carry_histograms() {
        let s = to_sample(&[(0.1, 50.4), (0.25, 80.0), (f64::INFINITY, 100.0)]);
        assert_eq!(s.values, vec![0.1, 50.4, 0.25, 80.0]);
        assert_eq!(
            from_sample(&s),
            h(&[(0.1, 50), (0.25, 80), (f64::INFINITY, 100)])
        );
        // Extrapolated buckets that cross by a fraction are made cumulative again.
        let crossed = to_sample(&[(0.1, 81.0), (0.25, 80.0), (f64::INFINITY, 100.0)]);
        assert_eq!(from_sample(&crossed)[0].count, 80);
    }

    #[test]
    fn malformed_histograms_are_errors() {
        assert_eq!(
            slow_counts(&h(&[(0.1, 5)]), 0.1),
            Err(LatencyError::NoTotal)
        );
        assert!(matches!(
            bound_from_primary(&h(&[(0.1, 5), (f64::INFINITY, 3)]), 0.5),
            Err(LatencyError::NotCumulative { .. })
        ));
    }
}
