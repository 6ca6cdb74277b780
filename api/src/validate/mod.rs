//! Validation of Canary, MetricTemplate and AlertProvider manifests, with field paths and fixes.
//!
//! Two layers, so that new fields need no work here:
//! * [`schema`] walks the raw JSON against the generated CRD schema (`crate::crd::crds()`):
//!   unknown fields (with the closest known name), wrong types, missing required fields.
//! * per-kind semantic rules ([`canary`], [`metric_template`], [`alert_provider`]) run on the
//!   typed object; each file holds a `RULES` list that later work appends a function to.
//!
//! [`cross`] checks references between documents; [`stream`] turns text into documents.

pub mod alert_provider;
pub mod canary;
pub mod cross;
pub mod loadtester;
pub mod metric_template;
pub mod router;
pub mod schema;
pub mod stream;
pub mod suggest;
pub mod workload_kind;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use canary::traffic_provider_problem;
pub use router::router_rules;
pub use stream::{MAX_INPUT_BYTES, ParseError, parse_stream};

/// Error or warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One finding: where (a field path like `spec.analysis.stepWeight`), how bad, and what to do.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Diagnostic {
    pub path: String,
    pub severity: Severity,
    pub message: String,
}

impl Diagnostic {
    pub fn error(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            severity: Severity::Error,
            message: message.into(),
        }
    }

    pub fn warning(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            severity: Severity::Warning,
            message: message.into(),
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// The API group serin serves; documents of other groups are not ours to judge.
pub const GROUP: &str = "flagger.app";
/// The one version serin speaks.
pub const API_VERSION: &str = "flagger.app/v1beta1";

/// The kinds validated here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Kind {
    Canary,
    MetricTemplate,
    AlertProvider,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Canary, Kind::MetricTemplate, Kind::AlertProvider];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Canary => "Canary",
            Kind::MetricTemplate => "MetricTemplate",
            Kind::AlertProvider => "AlertProvider",
        }
    }

    /// The serin kind of a document, `None` for anything else (a Deployment, another group's
    /// `Canary`). A `flagger.app` document of another version still counts, so that the
    /// version check can tell the user what to change.
    pub fn of(doc: &Value) -> Option<Kind> {
        let kind = doc.get("kind")?.as_str()?;
        let api_version = doc.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let group = api_version.split('/').next().unwrap_or("");
        if !api_version.is_empty() && group != GROUP {
            return None;
        }
        Kind::ALL.into_iter().find(|k| k.as_str() == kind)
    }
}

/// Validates one document given as JSON (a Canary, MetricTemplate or AlertProvider; other kinds
/// yield nothing). Works on the raw value so unknown fields and wrong types are reported with
/// their paths instead of failing at deserialisation.
pub fn validate_document(doc: &Value) -> Vec<Diagnostic> {
    let Some(kind) = Kind::of(doc) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    check_envelope(doc, kind, &mut out);
    schema::check(doc, kind, &mut out);
    // Semantic rules need the typed object. A typo'd field does not stop them (it is ignored
    // when reading), a wrong type does: then the schema's finding is the whole story.
    let shape_ok = !out.iter().any(Diagnostic::is_error);
    match kind {
        Kind::Canary => run_rules(doc, canary::RULES, shape_ok, &mut out),
        Kind::MetricTemplate => run_rules(doc, metric_template::RULES, shape_ok, &mut out),
        Kind::AlertProvider => run_rules(doc, alert_provider::RULES, shape_ok, &mut out),
    }
    out
}

/// Validates documents that belong together (one `serin validate` run): each document's own
/// diagnostics plus the cross-document checks. The result has one list per input document.
pub fn validate_documents(docs: &[&Value]) -> Vec<Vec<Diagnostic>> {
    let labels: Vec<String> = (1..=docs.len()).map(|i| format!("document {i}")).collect();
    validate_documents_labeled(docs, &labels)
}

/// Like [`validate_documents`], naming the documents in cross-document messages by `labels`
/// (e.g. `web.yaml document 2` when the set spans files).
pub fn validate_documents_labeled(docs: &[&Value], labels: &[String]) -> Vec<Vec<Diagnostic>> {
    let mut out: Vec<Vec<Diagnostic>> = docs.iter().map(|d| validate_document(d)).collect();
    for (index, diagnostic) in cross::check_labeled(docs, labels)
        .into_iter()
        .chain(loadtester::check(docs))
    {
        out[index].push(diagnostic);
    }
    out
}

/// Parses a multi-document YAML or JSON text and validates it as one set. Each diagnostic comes
/// with the 1-based index of its document among the non-empty documents of the text.
pub fn validate_stream(text: &str) -> Result<Vec<(usize, Diagnostic)>, ParseError> {
    let docs = parse_stream(text)?;
    let refs: Vec<&Value> = docs.iter().collect();
    Ok(validate_documents(&refs)
        .into_iter()
        .enumerate()
        .flat_map(|(i, ds)| ds.into_iter().map(move |d| (i + 1, d)))
        .collect())
}

/// A semantic rule: looks at a typed object and reports what is wrong with it.
pub type Rule<T> = fn(&T, &mut Vec<Diagnostic>);

fn run_rules<T: DeserializeOwned>(
    doc: &Value,
    rules: &[Rule<T>],
    shape_ok: bool,
    out: &mut Vec<Diagnostic>,
) {
    let mut doc = doc.clone();
    // Rules judge what the user wrote; a status that does not read is not their problem.
    if let Some(object) = doc.as_object_mut() {
        object.remove("status");
    }
    match serde_json::from_value::<T>(doc) {
        Ok(typed) => rules.iter().for_each(|rule| rule(&typed, out)),
        // Already explained by the schema walk's errors.
        Err(_) if !shape_ok => {}
        // The schema walk missed something; say so rather than stay silent.
        Err(err) => out.push(Diagnostic::error(
            "",
            format!("cannot read the document: {err}"),
        )),
    }
}

/// apiVersion and metadata, which the CRD schema leaves to the API server.
fn check_envelope(doc: &Value, kind: Kind, out: &mut Vec<Diagnostic>) {
    let api_version = doc.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if api_version.is_empty() {
        out.push(Diagnostic::error(
            "apiVersion",
            format!("missing: write apiVersion: {API_VERSION}"),
        ));
    } else if api_version != API_VERSION {
        out.push(Diagnostic::error(
            "apiVersion",
            format!(
                "{} {api_version:?} is not served: write apiVersion: {API_VERSION}",
                kind.as_str()
            ),
        ));
    }
    match doc.get("metadata") {
        Some(Value::Object(meta)) => {
            let named = |key: &str| {
                meta.get(key)
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty())
            };
            if !named("name") && !named("generateName") {
                out.push(Diagnostic::error(
                    "metadata.name",
                    "missing: every object needs a name, e.g. metadata: {name: web}",
                ));
            }
            for key in ["name", "namespace", "generateName"] {
                if let Some(v) = meta.get(key).filter(|v| !v.is_string() && !v.is_null()) {
                    out.push(Diagnostic::error(
                        format!("metadata.{key}"),
                        format!("expected string, got {}", schema::describe(v)),
                    ));
                }
            }
            for key in ["labels", "annotations"] {
                check_string_map(meta.get(key), &format!("metadata.{key}"), out);
            }
        }
        None | Some(Value::Null) => out.push(Diagnostic::error(
            "metadata",
            "missing: add metadata with a name, e.g. metadata: {name: web, namespace: prod}",
        )),
        Some(other) => out.push(Diagnostic::error(
            "metadata",
            format!("expected object, got {}", schema::describe(other)),
        )),
    }
}

fn check_string_map(value: Option<&Value>, path: &str, out: &mut Vec<Diagnostic>) {
    match value {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (key, v) in map {
                if !v.is_string() {
                    out.push(Diagnostic::error(
                        schema::join_key(path, key),
                        format!(
                            "expected string, got {}; quote the value",
                            schema::describe(v)
                        ),
                    ));
                }
            }
        }
        Some(other) => out.push(Diagnostic::error(
            path,
            format!("expected object, got {}", schema::describe(other)),
        )),
    }
}
