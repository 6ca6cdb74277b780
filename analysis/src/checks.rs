//! Metric verdicts: a measurement and the metric's range (or a comparator) give an outcome and
//! a sentence that says why ("error-rate 4.2 > max 1").

use serin_api::canary::{CanaryMetric, ThresholdRange};

use crate::{Comparator, Measurement, Outcome};

/// A metric check's outcome, value and explanation.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    pub outcome: Outcome,
    pub value: Option<f64>,
    pub message: String,
}

/// Checks `value` against `range` as Flagger does: below `min` or above `max` fails, the
/// boundaries pass; NaN is no data (Prometheus' answer when there is no traffic). An infinite
/// value is an error, never a pass: `-Inf` is below every `max` and `+Inf` above every `min`,
/// so comparing it would promote on what is almost always a division by zero in the query.
/// Negative values are compared as they are (a `min: 0` check fails on `-1`).
pub fn evaluate_range(name: &str, range: &ThresholdRange, value: f64) -> Evaluation {
    let v = num(value);
    let (outcome, message) = if value.is_nan() {
        (
            Outcome::NoData,
            format!("no data for {name}: the value is NaN"),
        )
    } else if value.is_infinite() {
        (
            Outcome::Error,
            format!(
                "{name} is {v}, not a finite number: fix the query (a division by zero?) so it \
                 yields a number"
            ),
        )
    } else if let Some(min) = range.min.filter(|m| value < *m) {
        (Outcome::Fail, format!("{name} {v} < min {}", num(min)))
    } else if let Some(max) = range.max.filter(|m| value > *m) {
        (Outcome::Fail, format!("{name} {v} > max {}", num(max)))
    } else {
        let bounds = match (range.min, range.max) {
            (Some(a), Some(b)) => format!(" (min {}, max {})", num(a), num(b)),
            (Some(a), None) => format!(" (min {})", num(a)),
            (None, Some(b)) => format!(" (max {})", num(b)),
            (None, None) => String::new(),
        };
        (Outcome::Pass, format!("{name} {v}{bounds}"))
    };
    Evaluation {
        outcome,
        value: Some(value).filter(|v| v.is_finite()),
        message,
    }
}

/// Turns a provider's answer into an outcome.
pub(crate) fn evaluate(
    metric: &CanaryMetric,
    measurement: &Measurement,
    comparator: Option<&dyn Comparator>,
) -> Evaluation {
    let name = &metric.name;
    match measurement {
        Measurement::Value { value } => evaluate_range(name, &metric.range(), *value),
        Measurement::NoData { message } => Evaluation {
            outcome: Outcome::NoData,
            value: None,
            message: format!("no data for {name}: {message}"),
        },
        Measurement::Error { message } => Evaluation {
            outcome: Outcome::Error,
            value: None,
            message: format!("{name} could not be measured: {message}"),
        },
        Measurement::Comparison { canary, primary } => match comparator {
            Some(c) => {
                let v = c.compare(metric, canary, primary);
                Evaluation {
                    outcome: v.outcome,
                    value: v.value,
                    message: format!("{name}: {}", v.explanation),
                }
            }
            None => Evaluation {
                outcome: Outcome::Error,
                value: None,
                message: format!("{name}: a comparison was measured but no judge is configured"),
            },
        },
    }
}

/// A number for humans: at most three decimals, no trailing zeros.
pub(crate) fn num(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(min: Option<f64>, max: Option<f64>) -> ThresholdRange {
        ThresholdRange { min, max }
    }

    #[test]
    fn boundaries_pass_and_outside_fails_with_the_reason() {
        let r = range(Some(99.0), None);
        assert_eq!(evaluate_range("sr", &r, 99.0).outcome, Outcome::Pass);
        let e = evaluate_range("sr", &r, 98.5);
        assert_eq!(e.outcome, Outcome::Fail);
        assert_eq!(e.message, "sr 98.5 < min 99");
        let e = evaluate_range("error-rate", &range(None, Some(1.0)), 4.2);
        assert_eq!(e.message, "error-rate 4.2 > max 1");
        assert_eq!(
            evaluate_range("error-rate", &range(None, Some(1.0)), 1.0).outcome,
            Outcome::Pass
        );
    }

    #[test]
    fn nan_is_no_data() {
        let e = evaluate_range("x", &range(None, Some(1.0)), f64::NAN);
        assert_eq!(e.outcome, Outcome::NoData);
        assert_eq!(e.value, None);
    }

    #[test]
    fn infinities_are_errors_never_passes() {
        for (r, v) in [
            (range(None, Some(1.0)), f64::NEG_INFINITY),
            (range(Some(99.0), None), f64::INFINITY),
            (range(None, None), f64::INFINITY),
        ] {
            let e = evaluate_range("x", &r, v);
            assert_eq!(e.outcome, Outcome::Error, "{v}");
            assert_eq!(e.value, None);
            assert!(e.message.contains("not a finite number"), "{}", e.message);
        }
        let negative = evaluate_range("x", &range(Some(0.0), None), -1.0);
        assert_eq!(negative.outcome, Outcome::Fail);
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(num(0.1 + 0.2), "0.3");
        assert_eq!(num(100.0), "100");
        assert_eq!(num(4.25), "4.25");
    }
}
