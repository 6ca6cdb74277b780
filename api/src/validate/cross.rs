//! Checks between documents validated together: references to MetricTemplates and
//! AlertProviders that none of the documents defines, and objects defined twice.

use std::collections::HashMap;

use serde_json::Value;

use super::{Diagnostic, Kind};

/// Findings as (index of the document in `docs`, diagnostic). Documents are named in messages
/// as `document N`; see [`check_labeled`] to name them otherwise.
pub fn check(docs: &[&Value]) -> Vec<(usize, Diagnostic)> {
    let labels: Vec<String> = (1..=docs.len()).map(|i| format!("document {i}")).collect();
    check_labeled(docs, &labels)
}

/// Like [`check`], with a label per document (`web.yaml document 2`) for messages that point
/// at another document.
pub fn check_labeled(docs: &[&Value], labels: &[String]) -> Vec<(usize, Diagnostic)> {
    let mut out = Vec::new();
    let mut seen: HashMap<(Kind, Option<&str>, &str), usize> = HashMap::new();
    for (i, doc) in docs.iter().enumerate() {
        let Some(kind) = Kind::of(doc) else { continue };
        let Some(name) = doc.pointer("/metadata/name").and_then(Value::as_str) else {
            continue;
        };
        let key = (kind, namespace(doc), name);
        if let Some(first) = seen.get(&key) {
            out.push((
                i,
                Diagnostic::warning(
                    "metadata.name",
                    format!(
                        "{} {name} is defined again (first in {}): the later one replaces it \
                         when applied; rename or remove one",
                        kind.as_str(),
                        labels
                            .get(*first)
                            .map(String::as_str)
                            .unwrap_or("another document")
                    ),
                ),
            ));
        } else {
            seen.insert(key, i);
        }
    }
    let mut by_name: HashMap<(Kind, &str), Vec<Option<&str>>> = HashMap::new();
    for &(kind, ns, name) in seen.keys() {
        by_name.entry((kind, name)).or_default().push(ns);
    }
    for (i, doc) in docs.iter().enumerate() {
        if Kind::of(doc) != Some(Kind::Canary) {
            continue;
        }
        let (at, analysis) = match (
            doc.pointer("/spec/analysis"),
            doc.pointer("/spec/canaryAnalysis"),
        ) {
            (Some(a), _) if !a.is_null() => ("spec.analysis", a),
            (_, Some(a)) => ("spec.canaryAnalysis", a),
            _ => continue,
        };
        let refs = [
            ("metrics", "templateRef", Kind::MetricTemplate),
            ("alerts", "providerRef", Kind::AlertProvider),
        ];
        for (list, field, target) in refs {
            let items = analysis.get(list).and_then(Value::as_array);
            for (j, item) in items.into_iter().flatten().enumerate() {
                let Some(reference) = item.get(field) else {
                    continue;
                };
                let Some(name) = reference.get("name").and_then(Value::as_str) else {
                    continue;
                };
                let ns = reference
                    .get("namespace")
                    .and_then(Value::as_str)
                    .or(namespace(doc));
                // A side without a namespace matches any: the cluster decides it at apply time.
                let found = by_name.get(&(target, name)).is_some_and(|namespaces| {
                    namespaces.iter().any(|their| match (their, ns) {
                        (Some(a), Some(b)) => *a == b,
                        _ => true,
                    })
                });
                if !found {
                    let qualified = ns.map(|n| format!("{n}/{name}")).unwrap_or(name.into());
                    out.push((
                        i,
                        Diagnostic::warning(
                            format!("{at}.{list}[{j}].{field}.name"),
                            format!(
                                "{} {qualified} is not among the validated documents: add its \
                                 file to the command, or make sure it exists in the cluster",
                                target.as_str()
                            ),
                        ),
                    ));
                }
            }
        }
    }
    out
}

fn namespace(doc: &Value) -> Option<&str> {
    doc.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
}
