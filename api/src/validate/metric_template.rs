//! Semantic rules of a MetricTemplate. To add a rule, append a function to [`RULES`].

use super::canary::http_url_problem;
use super::suggest::closest;
use super::{Diagnostic, Rule};
use crate::MetricTemplate;
use crate::metric::METRIC_PROVIDERS;

/// Every MetricTemplate rule, run in order.
pub const RULES: &[Rule<MetricTemplate>] = &[
    provider,
    query,
    primary_placeholder,
    crate::judge::template_rule,
];

fn provider(template: &MetricTemplate, out: &mut Vec<Diagnostic>) {
    let p = &template.spec.provider;
    if !METRIC_PROVIDERS.contains(&p.type_.as_str()) {
        let hint = closest(&p.type_, METRIC_PROVIDERS)
            .map(|s| format!("did you mean {s}? "))
            .unwrap_or_default();
        out.push(Diagnostic::error(
            "spec.provider.type",
            format!(
                "unknown metric provider {:?}: {hint}use one of {}",
                p.type_,
                METRIC_PROVIDERS.join(", ")
            ),
        ));
    }
    if let Some(address) = p.address.as_deref()
        && let Some(problem) = http_url_problem(address)
    {
        out.push(Diagnostic::error("spec.provider.address", problem));
    }
    if p.type_ == "prometheus" && p.address.is_none() {
        out.push(Diagnostic::warning(
            "spec.provider.address",
            "missing: set the Prometheus URL, e.g. http://prometheus.monitoring:9090",
        ));
    }
}

fn query(template: &MetricTemplate, out: &mut Vec<Diagnostic>) {
    if template.spec.query.trim().is_empty() {
        out.push(Diagnostic::error(
            "spec.query",
            "empty: write the query that yields one number, e.g. a PromQL ratio",
        ));
    }
}

/// In Flagger `{{ target }}-primary` names the stable pods; in serin `{{ target }}` is the
/// canary's workload and the stable one is `{{ primary }}` (DESIGN.md, compatibility contracts).
fn primary_placeholder(template: &MetricTemplate, out: &mut Vec<Diagnostic>) {
    if mentions_target_primary(&template.spec.query) {
        out.push(Diagnostic::warning(
            "spec.query",
            "{{ target }}-primary names Flagger's primary pods; in serin the stable workload is \
             {{ primary }}: write {{ primary }} instead",
        ));
    }
}

/// Whether a query contains `{{ target }}-primary`, with any spacing inside the braces.
pub fn mentions_target_primary(query: &str) -> bool {
    let compact: String = query.chars().filter(|c| !c.is_whitespace()).collect();
    compact.contains("{{target}}-primary") || compact.contains("{{.target}}-primary")
}
