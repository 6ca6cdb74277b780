//! Metric verdicts (filled in next).
use crate::Outcome;

/// A metric check's outcome, value and explanation.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    pub outcome: Outcome,
    pub value: Option<f64>,
    pub message: String,
}

pub fn evaluate_range(
    name: &str,
    _range: &serin_api::canary::ThresholdRange,
    value: f64,
) -> Evaluation {
    Evaluation {
        outcome: Outcome::Pass,
        value: Some(value),
        message: name.to_string(),
    }
}
