//! Semantic rules of a MetricTemplate. To add a rule, append a function to [`RULES`].

use super::canary::http_url_problem;
use super::suggest::closest;
use super::{Diagnostic, Rule};
use crate::MetricTemplate;
use crate::provider::{METRIC_PROVIDER_NAMES, MetricProviderType, Support};

/// Every MetricTemplate rule, run in order.
pub const RULES: &[Rule<MetricTemplate>] = &[
    provider,
    query,
    primary_placeholder,
    crate::judge::template_rule,
];

fn provider(template: &MetricTemplate, out: &mut Vec<Diagnostic>) {
    let p = &template.spec.provider;
    match MetricProviderType::parse(&p.type_).map(MetricProviderType::support) {
        None => {
            let hint = closest(&p.type_, METRIC_PROVIDER_NAMES)
                .map(|s| format!("did you mean {s}? "))
                .unwrap_or_default();
            let driven: Vec<_> = MetricProviderType::driven_names().collect();
            out.push(Diagnostic::error(
                "spec.provider.type",
                format!(
                    "unknown metric provider {:?}: {hint}use one of {}",
                    p.type_,
                    driven.join(", ")
                ),
            ));
        }
        Some(Support::Refused(fix)) => out.push(Diagnostic::error(
            "spec.provider.type",
            format!("metric provider {} is not supported: {fix}", p.type_),
        )),
        Some(Support::Driven) => {}
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

/// In Flagger `{{ target }}-primary` names both the primary Service and the primary pods. serin
/// renders it as Flagger does (`web-primary`), which is serin's primary Service too, so Service
/// selectors keep working; the stable *pods* are `web-…` in serin, so a pod or workload selector
/// must use `{{ primary }}` (DESIGN.md, compatibility contracts).
fn primary_placeholder(template: &MetricTemplate, out: &mut Vec<Diagnostic>) {
    for label in target_primary_labels(&template.spec.query) {
        if SERVICE_LABEL_WORDS.iter().any(|w| label.contains(w)) {
            continue;
        }
        let shown = if label.is_empty() {
            "a selector".to_string()
        } else {
            format!("{label}=")
        };
        out.push(Diagnostic::warning(
            "spec.query",
            format!(
                "{shown} {{{{ target }}}}-primary renders to <target>-primary (e.g. web-primary): \
                 serin's primary Service, but not its stable pods or workload, which keep the \
                 target's name (web, pods web-<hash>): for a pod or workload selector write \
                 {{{{ primary }}}} instead"
            ),
        ));
    }
}

/// Label names whose values are Service, cluster or route names, where `<target>-primary` means
/// the same object in serin as in Flagger.
const SERVICE_LABEL_WORDS: [&str; 5] = ["service", "cluster", "upstream", "route", "ingress"];

/// The label name before each `{{ target }}-primary` of a query (`""` when there is none).
fn target_primary_labels(query: &str) -> Vec<String> {
    let compact: String = query.chars().filter(|c| !c.is_whitespace()).collect();
    let mut labels = Vec::new();
    for needle in ["{{target}}-primary", "{{.target}}-primary"] {
        for (at, _) in compact.match_indices(needle) {
            // The label whose quoted value holds it: `label=~"…{{target}}-primary…"`.
            let before = &compact[..at];
            let head = before.rfind('"').map_or("", |q| &before[..q]);
            let head = head.trim_end_matches(['=', '~', '!']);
            let start = head
                .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
                .map_or(0, |i| i + 1);
            let label = head[start..].to_string();
            labels.push(label);
        }
    }
    labels
}
