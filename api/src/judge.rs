//! serin's statistical judge as configured on a Canary metric (`judge:`) and the count queries a
//! MetricTemplate gives it. A serin extension: Flagger ignores neither field because it never sees
//! them (they are optional and skipped when absent).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::validate::{Diagnostic, Severity};

/// The judge types serin knows.
pub const JUDGE_TYPES: [&str; 1] = ["sequential"];
/// What to do when the analysis ends without enough traffic to have caught `minEffect`.
pub const INCONCLUSIVE_ACTIONS: [&str; 2] = ["pause", "promote"];

pub const DEFAULT_ALPHA: f64 = 0.01;
pub const DEFAULT_MIN_EFFECT: f64 = 1.5;
pub const DEFAULT_HOLD_INTERVALS: u32 = 10;
pub const DEFAULT_LATENCY_QUANTILE: f64 = 0.99;

/// `judge` on a Canary metric: compare the canary with the primary on the same traffic instead
/// of a fixed range.
///
/// ```yaml
/// metrics:
///   - name: request-success-rate
///     interval: 1m
///     judge: {type: sequential, alpha: 0.01, minEffect: 1.5}
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JudgeSpec {
    /// `sequential` (the only type): an anytime-valid mixture SPRT on the canary's share of the
    /// bad requests, valid however often it looks.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// Bound on the probability of rolling back a canary that is no worse than the primary;
    /// in (0, 0.5). Default 0.01: roll back when the evidence reaches 1/alpha = 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// The smallest ratio of canary to primary bad-request rates worth catching (> 1). Default 1.5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_effect: Option<f64>,
    /// Extra intervals to hold at the current weight when the traffic seen so far could not have
    /// caught `minEffect`. Default 10; 0 decides at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_intervals: Option<u32>,
    /// After the hold, still inconclusive: `pause` (wait for a person, the default) or `promote`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_inconclusive: Option<String>,
    /// For `request-duration`: a request is slow when it takes longer than this quantile of the
    /// primary's latency (read from histogram buckets). Default 0.99.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_quantile: Option<f64>,
}

impl JudgeSpec {
    pub fn alpha(&self) -> f64 {
        self.alpha.unwrap_or(DEFAULT_ALPHA)
    }
    pub fn min_effect(&self) -> f64 {
        self.min_effect.unwrap_or(DEFAULT_MIN_EFFECT)
    }
    pub fn hold_intervals(&self) -> u32 {
        self.hold_intervals.unwrap_or(DEFAULT_HOLD_INTERVALS)
    }
    /// True when an inconclusive end promotes; false (the default) when it pauses.
    pub fn promote_on_inconclusive(&self) -> bool {
        self.on_inconclusive.as_deref() == Some("promote")
    }
    pub fn latency_quantile(&self) -> f64 {
        self.latency_quantile.unwrap_or(DEFAULT_LATENCY_QUANTILE)
    }
}

/// `judge` on a MetricTemplate: the four count queries, each rendered with `{{ target }}` (the
/// canary) or `{{ primary }}` and returning one number for the metric's interval.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JudgeQueries {
    pub canary_total: String,
    pub canary_failed: String,
    pub primary_total: String,
    pub primary_failed: String,
}

/// `status.judge` (serin): the judges' accumulated evidence, saved with the Canary so that a
/// restarted controller resumes it instead of starting the test over (which would forget the
/// evidence and spend the false-rollback budget again).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JudgeRecord {
    /// The run the evidence belongs to (the revision under analysis, and the retry request that
    /// started it, if any): evidence of another run is never resumed.
    pub run: String,
    /// Per metric name, the judge's state (requests and bad requests per side, the looks so far,
    /// the last p-value); written by the analysis engine's judge, read back by it only.
    #[serde(default)]
    pub states: std::collections::BTreeMap<String, crate::common::FreeForm>,
}

fn error(path: String, message: String) -> Diagnostic {
    Diagnostic {
        path,
        severity: Severity::Error,
        message,
    }
}

/// Semantic checks of a metric's `judge` (`path` is the field path of the `judge` object, e.g.
/// `spec.analysis.metrics[0].judge`).
pub fn check_spec(spec: &JudgeSpec, path: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if let Some(t) = &spec.type_
        && !JUDGE_TYPES.contains(&t.as_str())
    {
        out.push(error(
            format!("{path}.type"),
            format!("unknown judge type {t:?}; use \"sequential\""),
        ));
    }
    if let Some(a) = spec.alpha
        && !(a > 0.0 && a < 0.5)
    {
        out.push(error(
            format!("{path}.alpha"),
            format!("alpha {a} must be in (0, 0.5), e.g. 0.01 (roll back at evidence 100)"),
        ));
    }
    if let Some(m) = spec.min_effect
        && !(m > 1.0 && m.is_finite())
    {
        out.push(error(
            format!("{path}.minEffect"),
            format!("minEffect {m} must be a ratio above 1, e.g. 1.5 (canary 50% worse)"),
        ));
    }
    if let Some(a) = &spec.on_inconclusive
        && !INCONCLUSIVE_ACTIONS.contains(&a.as_str())
    {
        out.push(error(
            format!("{path}.onInconclusive"),
            format!("unknown action {a:?}; use \"pause\" or \"promote\""),
        ));
    }
    if let Some(q) = spec.latency_quantile
        && !(q > 0.5 && q < 1.0)
    {
        out.push(error(
            format!("{path}.latencyQuantile"),
            format!("latencyQuantile {q} must be in (0.5, 1), e.g. 0.99"),
        ));
    }
    out
}

/// Canary rule (in `validate::canary::RULES`): every metric's `judge`.
pub fn canary_rule(canary: &crate::Canary, out: &mut Vec<Diagnostic>) {
    let (base, analysis) = match (&canary.spec.analysis, &canary.spec.canary_analysis) {
        (Some(a), _) => ("spec.analysis", a),
        (None, Some(a)) => ("spec.canaryAnalysis", a),
        (None, None) => return,
    };
    for (i, m) in analysis.metrics.iter().flatten().enumerate() {
        if let Some(j) = &m.judge {
            out.extend(check_spec(j, &format!("{base}.metrics[{i}].judge")));
        }
    }
}

/// MetricTemplate rule (in `validate::metric_template::RULES`): the `judge` count queries.
pub fn template_rule(template: &crate::MetricTemplate, out: &mut Vec<Diagnostic>) {
    if let Some(q) = &template.spec.judge {
        out.extend(check_queries(q, "spec.judge"));
    }
}

/// Whether `query` has the template action `{{ var }}` (with or without trimming dashes).
fn mentions(query: &str, var: &str) -> bool {
    query.split("{{").skip(1).any(|rest| {
        rest.split("}}")
            .next()
            .map(|action| action.trim_matches(|c: char| c == '-' || c.is_whitespace()) == var)
            .unwrap_or(false)
    })
}

/// Checks of a MetricTemplate's `judge` queries: all four present, each side named.
pub fn check_queries(q: &JudgeQueries, path: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let fields = [
        ("canaryTotal", &q.canary_total, "target"),
        ("canaryFailed", &q.canary_failed, "target"),
        ("primaryTotal", &q.primary_total, "primary"),
        ("primaryFailed", &q.primary_failed, "primary"),
    ];
    for (name, query, side) in fields {
        if query.trim().is_empty() {
            out.push(error(
                format!("{path}.{name}"),
                format!("empty query; give a query returning one count, using {{{{ {side} }}}}"),
            ));
        } else if !mentions(query, side) {
            out.push(Diagnostic {
                path: format!("{path}.{name}"),
                severity: Severity::Warning,
                message: format!(
                    "query does not mention {{{{ {side} }}}}; it should select the {} only",
                    if side == "target" {
                        "canary"
                    } else {
                        "primary"
                    }
                ),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(d: &[Diagnostic]) -> Vec<&str> {
        d.iter().map(|d| d.path.as_str()).collect()
    }

    #[test]
    fn defaults_are_valid() {
        assert!(check_spec(&JudgeSpec::default(), "j").is_empty());
        let s = JudgeSpec::default();
        assert_eq!(s.alpha(), 0.01);
        assert_eq!(s.min_effect(), 1.5);
        assert!(!s.promote_on_inconclusive());
    }

    #[test]
    fn bad_values_name_their_field() {
        let s = JudgeSpec {
            type_: Some("bayes".into()),
            alpha: Some(0.5),
            min_effect: Some(1.0),
            hold_intervals: None,
            on_inconclusive: Some("rollback".into()),
            latency_quantile: Some(1.0),
        };
        let d = check_spec(&s, "m.judge");
        assert_eq!(
            paths(&d),
            [
                "m.judge.type",
                "m.judge.alpha",
                "m.judge.minEffect",
                "m.judge.onInconclusive",
                "m.judge.latencyQuantile"
            ]
        );
        assert!(d[1].message.contains("(0, 0.5)"));
        let nan = JudgeSpec {
            alpha: Some(f64::NAN),
            ..JudgeSpec::default()
        };
        assert_eq!(paths(&check_spec(&nan, "j")), ["j.alpha"]);
    }

    #[test]
    fn yaml_form_parses() {
        let s: JudgeSpec = serde_json::from_value(serde_json::json!(
            {"type": "sequential", "alpha": 0.05, "minEffect": 2, "onInconclusive": "promote"}
        ))
        .unwrap();
        assert_eq!(s.alpha(), 0.05);
        assert_eq!(s.min_effect(), 2.0);
        assert!(s.promote_on_inconclusive());
    }

    #[test]
    fn rules_report_paths_in_documents() {
        let doc = serde_json::json!({
            "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
            "metadata": {"name": "web"},
            "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                     "service": {"port": 80},
                     "analysis": {"interval": "1m", "threshold": 1, "stepWeight": 10, "maxWeight": 50,
                                  "metrics": [{"name": "request-success-rate", "interval": "1m",
                                               "judge": {"type": "sequential", "alpha": 0.9}}]}}
        });
        let canary: crate::Canary = serde_json::from_value(doc).unwrap();
        let mut out = Vec::new();
        canary_rule(&canary, &mut out);
        assert_eq!(paths(&out), ["spec.analysis.metrics[0].judge.alpha"]);
    }

    #[test]
    fn queries_need_both_sides() {
        let q = JudgeQueries {
            canary_total: "sum(rate(x{pod=~\"{{ target }}-.*\"}[1m]))".into(),
            canary_failed: String::new(),
            primary_total: "sum(rate(x{pod=~\"{{ target }}-primary-.*\"}[1m]))".into(),
            primary_failed: "sum(rate(y{pod=~\"{{ primary }}-.*\"}[1m]))".into(),
        };
        let d = check_queries(&q, "spec.judge");
        assert_eq!(
            paths(&d),
            ["spec.judge.canaryFailed", "spec.judge.primaryTotal"]
        );
        assert_eq!(d[0].severity, Severity::Error);
        assert_eq!(d[1].severity, Severity::Warning);
    }
}
