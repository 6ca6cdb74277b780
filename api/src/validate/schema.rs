//! Unknown fields, wrong types and missing required fields, found by walking a document against
//! the openAPIV3Schema of the generated CRD. Driven by the schema, so a field added to the Rust
//! types is known here without further work.

use std::sync::OnceLock;

use serde_json::{Map, Value};

use super::suggest::closest;
use super::{Diagnostic, Kind};

/// The fields every object has besides those of the CRD schema (`spec`, `status`).
const ENVELOPE: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// Walks `doc` against the schema of `kind` and reports what does not fit.
pub fn check(doc: &Value, kind: Kind, out: &mut Vec<Diagnostic>) {
    let schema = schema_of(kind);
    let Some(object) = doc.as_object() else {
        out.push(Diagnostic::error(
            "",
            format!("expected an object, got {}", describe(doc)),
        ));
        return;
    };
    let mut known: Vec<&str> = ENVELOPE.to_vec();
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        known.extend(props.keys().map(String::as_str));
    }
    for (key, value) in object {
        // Status is the controller's to write and the API server drops it from user writes;
        // `kubectl get -o yaml` output carries it and must still validate.
        if ENVELOPE.contains(&key.as_str()) || key == "status" {
            continue;
        }
        match schema.pointer(&format!("/properties/{}", escape_pointer(key))) {
            Some(sub) => walk(value, sub, key, out),
            None => out.push(unknown_field(key, key, &known)),
        }
    }
    for name in required(schema) {
        if !object.contains_key(name) {
            out.push(missing(name, name, kind));
        }
    }
}

/// The openAPIV3Schema of a kind's CRD, built once.
pub fn schema_of(kind: Kind) -> &'static Value {
    static SCHEMAS: OnceLock<Vec<(Kind, Value)>> = OnceLock::new();
    let all = SCHEMAS.get_or_init(|| {
        crate::crd::crds()
            .into_iter()
            .filter_map(|crd| {
                let kind = Kind::ALL
                    .into_iter()
                    .find(|k| k.as_str() == crd.spec.names.kind)?;
                let version = crd.spec.versions.into_iter().next()?;
                let schema = version.schema?.open_api_v3_schema?;
                Some((kind, serde_json::to_value(schema).ok()?))
            })
            .collect()
    });
    static EMPTY: Value = Value::Null;
    all.iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, s)| s)
        .unwrap_or(&EMPTY)
}

fn walk(value: &Value, schema: &Value, path: &str, out: &mut Vec<Diagnostic>) {
    if value.is_null() {
        if !flag(schema, "nullable") && !flag(schema, "x-kubernetes-preserve-unknown-fields") {
            out.push(Diagnostic::error(
                path,
                format!(
                    "expected {}, got null; give it a value or remove the field",
                    expected(schema)
                ),
            ));
        }
        return;
    }
    if flag(schema, "x-kubernetes-int-or-string") {
        if !(value.is_string() || is_integer(value)) {
            out.push(type_error(path, "integer or string", value));
        }
        return;
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => match value.as_object() {
            Some(object) => walk_object(object, schema, path, out),
            None => out.push(type_error(path, "object", value)),
        },
        Some("array") => match value.as_array() {
            Some(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        walk(item, item_schema, &format!("{path}[{i}]"), out);
                    }
                }
            }
            None => out.push(type_error(path, "array", value)),
        },
        Some("string") if !value.is_string() => out.push(type_error(path, "string", value)),
        Some("boolean") if !value.is_boolean() => {
            out.push(type_error(path, "boolean (true or false)", value))
        }
        Some("integer") if !is_integer(value) => out.push(type_error(path, "integer", value)),
        Some("integer") if out_of_int32(schema, value) => out.push(Diagnostic::error(
            path,
            format!("{value} is out of range for a 32-bit integer"),
        )),
        Some("number") if !value.is_number() => out.push(type_error(path, "number", value)),
        // No type: free-form (preserve-unknown-fields) or a schema we do not constrain.
        _ => {}
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
        out.push(Diagnostic::error(
            path,
            format!("{value} is not allowed; use one of {}", list.join(", ")),
        ));
    }
}

fn walk_object(object: &Map<String, Value>, schema: &Value, path: &str, out: &mut Vec<Diagnostic>) {
    let props = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties");
    let open = flag(schema, "x-kubernetes-preserve-unknown-fields");
    for (key, value) in object {
        let child = join_key(path, key);
        if let Some(sub) = props.and_then(|p| p.get(key)) {
            walk(value, sub, &child, out);
        } else if let Some(sub) = additional.filter(|a| a.is_object()) {
            walk(value, sub, &child, out);
        } else if open || additional == Some(&Value::Bool(true)) || props.is_none() {
            // Free-form by design (trafficPolicy, corsPolicy …): the router gets it as written.
        } else {
            let known: Vec<&str> = props
                .map(|p| p.keys().map(String::as_str).collect())
                .unwrap_or_default();
            out.push(unknown_field(&child, key, &known));
        }
    }
    for name in required(schema) {
        if !object.contains_key(name) {
            out.push(Diagnostic::error(
                join_key(path, name),
                format!("missing required field {name}; add it under {path}"),
            ));
        }
    }
}

fn required(schema: &Value) -> impl Iterator<Item = &str> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

fn missing(path: &str, name: &str, kind: Kind) -> Diagnostic {
    Diagnostic::error(
        path,
        format!(
            "missing required field {name}; a {} needs a {name}",
            kind.as_str()
        ),
    )
}

fn unknown_field(path: &str, key: &str, known: &[&str]) -> Diagnostic {
    let message = match closest(key, known.iter().copied()) {
        Some(name) => format!("unknown field, did you mean {name}?"),
        None if known.is_empty() => "unknown field; remove it".to_string(),
        None => {
            let mut names = known.to_vec();
            names.sort_unstable();
            format!("unknown field; known fields here: {}", names.join(", "))
        }
    };
    Diagnostic::error(path, message)
}

fn type_error(path: &str, expected: &str, got: &Value) -> Diagnostic {
    Diagnostic::error(path, format!("expected {expected}, got {}", describe(got)))
}

fn expected(schema: &Value) -> &str {
    if flag(schema, "x-kubernetes-int-or-string") {
        return "integer or string";
    }
    schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("a value")
}

fn out_of_int32(schema: &Value, value: &Value) -> bool {
    schema.get("format").and_then(Value::as_str) == Some("int32")
        && value
            .as_f64()
            .is_some_and(|v| v < f64::from(i32::MIN) || v > f64::from(i32::MAX))
}

fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name).and_then(Value::as_bool).unwrap_or(false)
}

/// Integers as JSON has them, plus `10.0` (what YAML and JSON tools sometimes write for 10).
fn is_integer(value: &Value) -> bool {
    match value {
        Value::Number(n) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

/// A short description of a value for messages: `string "ten"`, `integer 10`, `object`.
pub fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) if n.is_i64() || n.is_u64() => format!("integer {n}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => {
            let shown: String = s.chars().take(40).collect();
            let ellipsis = if shown.len() < s.len() { "…" } else { "" };
            format!("string {shown:?}{ellipsis}")
        }
        Value::Array(_) => "array".into(),
        Value::Object(_) => "object".into(),
    }
}

/// `parent.key`, or `parent["key"]` when the key is not a plain name (labels, headers).
pub fn join_key(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_string(),
        (true, false) => format!("[{key:?}]"),
        (false, true) => format!("{parent}.{key}"),
        (false, false) => format!("{parent}[{key:?}]"),
    }
}

fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}
