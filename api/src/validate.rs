//! Semantic validation with field paths. (Being filled by the foundation work; the interface
//! below is the contract the webhook and `serin validate` use.)

use serde::Serialize;

/// Error or warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding: where (a field path like `spec.analysis.stepWeight`), how bad, and what to do.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Diagnostic {
    pub path: String,
    pub severity: Severity,
    pub message: String,
}

/// Validates one document given as JSON (a Canary, MetricTemplate or AlertProvider; other kinds
/// yield nothing). Works on the raw value so unknown fields and wrong types are reported with
/// their paths instead of failing at deserialisation.
pub fn validate_document(_doc: &serde_json::Value) -> Vec<Diagnostic> {
    Vec::new()
}
