//! `loadtester` MetricTemplates: the query must name a result the loadtester keeps.
//!
//! `serin loadtester` keys the runs a webhook starts by the payload's Canary,
//! `<namespace>/<name>`, and also answers `<namespace>/<name>-canary` (what `{{ target }}`
//! renders to when the Canary is named like its workload). A query rendering to anything else,
//! for a Canary validated in the same set, never finds a run: every check would be no data.

use serde_json::Value;

use super::Diagnostic;
use crate::template::{TemplateVars, render};
use crate::{Canary, MetricTemplate};

/// The fields the loadtester measures over a window (kept in step with
/// `serin_providers::loadtester::FIELDS`, which this crate cannot depend on).
pub const FIELDS: &[&str] = &[
    "error_rate",
    "rps",
    "requests",
    "failed",
    "p50",
    "p90",
    "p95",
    "p99",
    "mean",
];

/// Findings as (index of the document in `docs`, diagnostic).
pub fn check(docs: &[&Value]) -> Vec<(usize, Diagnostic)> {
    let templates: Vec<(usize, MetricTemplate)> = docs
        .iter()
        .enumerate()
        .filter(|(_, d)| d.get("kind").and_then(Value::as_str) == Some("MetricTemplate"))
        .filter_map(|(i, d)| Some((i, serde_json::from_value((*d).clone()).ok()?)))
        .filter(|(_, t): &(usize, MetricTemplate)| t.spec.provider.type_ == "loadtester")
        .collect();
    let mut out = Vec::new();
    for (i, t) in &templates {
        if let Some(problem) = query_shape(&t.spec.query) {
            out.push((*i, Diagnostic::warning("spec.query", problem)));
        }
    }
    for (i, doc) in docs.iter().enumerate() {
        if doc.get("kind").and_then(Value::as_str) != Some("Canary") {
            continue;
        }
        let Ok(canary) = serde_json::from_value::<Canary>((*doc).clone()) else {
            continue;
        };
        out.extend(canary_keys(&canary, &templates).into_iter().map(|d| (i, d)));
    }
    out
}

/// What is wrong with the query's shape `<namespace>/<name> <field>`, if anything.
fn query_shape(query: &str) -> Option<String> {
    // `{{ namespace }}/{{ name }}` splits on its spaces: read the words outside the braces.
    let words = query.replace("{{ ", "{{").replace(" }}", "}}");
    let parts: Vec<&str> = words.split_whitespace().collect();
    match parts.as_slice() {
        [key, field] if key.split('/').count() == 2 => (!FIELDS.contains(field)).then(|| {
            format!(
                "the loadtester does not measure {field:?}: use one of {}",
                FIELDS.join(", ")
            )
        }),
        _ => Some(format!(
            "a loadtester query is `<namespace>/<name> <field>`, e.g. `{{{{ namespace }}}}/{{{{ name }}}} error_rate`; got {query:?}"
        )),
    }
}

/// Warnings for the Canary's metrics whose loadtester key cannot match its runs.
fn canary_keys(canary: &Canary, templates: &[(usize, MetricTemplate)]) -> Vec<Diagnostic> {
    let name = canary.metadata.name.as_deref().unwrap_or_default();
    let namespace = canary.metadata.namespace.as_deref().unwrap_or("default");
    let at = if canary.spec.analysis.is_some() {
        "spec.analysis"
    } else {
        "spec.canaryAnalysis"
    };
    let mut out = Vec::new();
    for (j, metric) in canary.spec.metrics().iter().enumerate() {
        let Some(tref) = &metric.template_ref else {
            continue;
        };
        let tns = tref.namespace.as_deref().unwrap_or(namespace);
        let Some((_, t)) = templates.iter().find(|(_, t)| {
            t.metadata.name.as_deref() == Some(tref.name.as_str())
                && t.metadata.namespace.as_deref().is_none_or(|n| n == tns)
        }) else {
            continue;
        };
        let vars = TemplateVars::for_canary(
            &canary.spec,
            name,
            namespace,
            &crate::duration::format(metric.interval()),
            metric.template_variables.clone().unwrap_or_default(),
        );
        let Ok(rendered) = render(&t.spec.query, &vars) else {
            continue;
        };
        let Some(key) = rendered.split_whitespace().next() else {
            continue;
        };
        let keys = [
            format!("{namespace}/{name}"),
            format!("{namespace}/{name}{}", crate::labels::CANARY_SUFFIX),
        ];
        if !keys.iter().any(|k| k == key) {
            out.push(Diagnostic::warning(
                format!("{at}.metrics[{j}].templateRef"),
                format!(
                    "MetricTemplate {} reads the loadtester's results for {key:?}, but the loadtester keys the runs of this Canary's webhooks as {:?}: write `{{{{ namespace }}}}/{{{{ name }}}} <field>` in its query",
                    tref.name, keys[0]
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template(query: &str) -> Value {
        json!({"apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
               "metadata": {"name": "load-errors", "namespace": "test"},
               "spec": {"provider": {"type": "loadtester", "address": "http://lt.test/"}, "query": query}})
    }

    fn canary(name: &str, target: &str) -> Value {
        json!({"apiVersion": "flagger.app/v1beta1", "kind": "Canary",
               "metadata": {"name": name, "namespace": "test"},
               "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                        "service": {"port": 80},
                        "analysis": {"interval": "1m", "threshold": 2, "metrics": [
                            {"name": "load-errors", "interval": "1m", "thresholdRange": {"max": 0.01},
                             "templateRef": {"name": "load-errors"}}]}}})
    }

    fn warnings(docs: &[Value]) -> Vec<(usize, Diagnostic)> {
        check(&docs.iter().collect::<Vec<_>>())
    }

    #[test]
    fn name_and_target_forms_match_a_canary_named_like_its_workload() {
        for q in [
            "{{ namespace }}/{{ name }} error_rate",
            "{{ namespace }}/{{ target }} error_rate",
        ] {
            assert_eq!(
                warnings(&[template(q), canary("web", "web")]),
                vec![],
                "{q}"
            );
        }
    }

    #[test]
    fn a_key_that_cannot_match_is_warned_on_the_canary() {
        let w = warnings(&[
            template("{{ namespace }}/{{ target }} error_rate"),
            canary("web-release", "web"),
        ]);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].0, 1);
        assert_eq!(w[0].1.path, "spec.analysis.metrics[0].templateRef");
        assert!(
            w[0].1.message.contains("\"test/web-canary\"")
                && w[0].1.message.contains("\"test/web-release\""),
            "{}",
            w[0].1.message
        );
        let w = warnings(&[
            template("{{ namespace }}/{{ primary }} p99"),
            canary("web-release", "web"),
        ]);
        assert_eq!(w.len(), 1, "{w:?}");
    }

    #[test]
    fn the_query_shape_and_field_are_checked_alone() {
        let w = warnings(&[template("{{ namespace }}/{{ name }} latency")]);
        assert!(
            w[0].1.message.contains("does not measure \"latency\""),
            "{w:?}"
        );
        let w = warnings(&[template("error_rate")]);
        assert!(
            w[0].1.message.contains("<namespace>/<name> <field>"),
            "{w:?}"
        );
    }
}
