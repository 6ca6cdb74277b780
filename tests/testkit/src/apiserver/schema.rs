//! A CRD version's `openAPIV3Schema` applied to custom resources as kube-apiserver applies it: unknown
//! fields are pruned (following apiextensions-apiserver's pruning algorithm), then the object is validated
//! (the OpenAPI v3 subset structural schemas allow, reported with kube-apiserver's field paths, reasons and
//! messages). CEL rules (`x-kubernetes-validations`) and defaults are not applied; see docs/testkit-apiserver.md.

use base64::Engine;
use regex::Regex;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// One failed check, as a `StatusCause` of a 422 Invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueTypeInvalid`, …
    pub reason: &'static str,
    /// The field path, e.g. `spec.rules[0].backendRefs[1].weight`.
    pub field: String,
    /// What is wrong, without the field (as in `details.causes[].message`).
    pub message: String,
}

impl Cause {
    fn new(reason: &'static str, field: &str, message: String) -> Self {
        Cause {
            reason,
            field: field.to_string(),
            message,
        }
    }

    /// `Invalid value: <value>: <path> in body <detail>`, the shape of kube-openapi's messages.
    fn invalid(field: &str, value: &Value, detail: &str) -> Self {
        let body = format!("{} in body {detail}", shown_path(field));
        Cause::new(
            "FieldValueInvalid",
            field,
            format!("Invalid value: {}: {body}", shown(value)),
        )
    }

    pub fn to_json(&self) -> Value {
        serde_json::json!({"reason": self.reason, "message": self.message, "field": self.field})
    }

    /// `field: message`, as kube-apiserver lists the causes in the Status message.
    pub fn line(&self) -> String {
        format!("{}: {}", self.field, self.message)
    }
}

const ENVELOPE: [&str; 3] = ["apiVersion", "kind", "metadata"];

fn flag(s: &Value, name: &str) -> bool {
    s.get(name).and_then(Value::as_bool) == Some(true)
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn shown_path(path: &str) -> &str {
    if path.is_empty() { "body" } else { path }
}

/// A value as field.Error prints it: strings quoted, the rest as JSON.
fn shown(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Removes the fields the schema does not know and returns their paths (`spec.foo`, `spec.rules[0].bar`).
/// At the root `apiVersion`, `kind` and `metadata` are the resource's own and never pruned.
pub fn prune(obj: &mut Value, schema: &Value) -> Vec<String> {
    let mut unknown = Vec::new();
    if let Value::Object(m) = obj {
        if flag(schema, "x-kubernetes-preserve-unknown-fields") {
            skip_prune_map(m, schema, "", true, &mut unknown);
        } else {
            prune_map(m, schema, "", true, &mut unknown);
        }
    }
    unknown
}

fn prune_node(v: &mut Value, s: Option<&Value>, path: &str, out: &mut Vec<String>) {
    if let Some(s) = s.filter(|s| flag(s, "x-kubernetes-preserve-unknown-fields")) {
        return skip_prune(v, s, path, out);
    }
    match (v, s) {
        (Value::Object(m), None) => {
            out.extend(m.keys().map(|k| child(path, k)));
            m.clear();
        }
        (Value::Object(m), Some(s)) => {
            let embedded = flag(s, "x-kubernetes-embedded-resource");
            prune_map(m, s, path, embedded, out);
        }
        (Value::Array(items), s) => {
            let item_schema = s.and_then(|s| s.get("items"));
            for (i, item) in items.iter_mut().enumerate() {
                prune_node(item, item_schema, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// The schema for key `k` of an object: its property, else `additionalProperties` (`true` is no schema:
/// everything below it is unknown, as in the pruning algorithm). `None` when the key is unknown.
fn field_schema<'a>(s: &'a Value, k: &str) -> Option<Option<&'a Value>> {
    if let Some(p) = s.get("properties").and_then(|p| p.get(k)) {
        return Some(Some(p));
    }
    match s.get("additionalProperties") {
        Some(Value::Object(a)) if !a.is_empty() => s.get("additionalProperties").map(Some),
        Some(Value::Bool(true)) | Some(Value::Object(_)) => Some(None),
        _ => None,
    }
}

fn prune_map(
    m: &mut Map<String, Value>,
    s: &Value,
    path: &str,
    keep_envelope: bool,
    out: &mut Vec<String>,
) {
    let keys: Vec<String> = m.keys().cloned().collect();
    for k in keys {
        if keep_envelope && ENVELOPE.contains(&k.as_str()) {
            continue;
        }
        match field_schema(s, &k) {
            Some(fs) => {
                if let Some(v) = m.get_mut(&k) {
                    prune_node(v, fs, &child(path, &k), out);
                }
            }
            None => {
                out.push(child(path, &k));
                m.remove(&k);
            }
        }
    }
}

/// Below `x-kubernetes-preserve-unknown-fields` unknown fields stay, but known ones are pruned inside.
fn skip_prune(v: &mut Value, s: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            let embedded = flag(s, "x-kubernetes-embedded-resource");
            skip_prune_map(m, s, path, embedded, out);
        }
        Value::Array(items) => {
            if let Some(is) = s.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    skip_prune(item, is, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

fn skip_prune_map(
    m: &mut Map<String, Value>,
    s: &Value,
    path: &str,
    keep_envelope: bool,
    out: &mut Vec<String>,
) {
    for (k, v) in m.iter_mut() {
        if keep_envelope && ENVELOPE.contains(&k.as_str()) {
            continue;
        }
        if let Some(fs) = field_schema(s, k) {
            prune_node(v, fs, &child(path, k), out);
        }
    }
}

/// The JSON type name kube-openapi reports for a value.
fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_invalid(path: &str, v: &Value, expected: &str) -> Cause {
    let detail = format!(
        "{} in body must be of type {expected}: {:?}",
        shown_path(path),
        type_of(v)
    );
    Cause::new(
        "FieldValueTypeInvalid",
        path,
        format!("Invalid value: {}: {detail}", shown(v)),
    )
}

/// Validates `v` at `path` against schema `s`, appending every failure to `out`.
pub fn validate(v: &Value, s: &Value, path: &str, out: &mut Vec<Cause>) {
    if !s.is_object() {
        return;
    }
    if !check_type(v, s, path, out) {
        return;
    }
    check_enum(v, s, path, out);
    match v {
        Value::String(text) => check_string(v, text, s, path, out),
        Value::Number(_) => check_number(v, s, path, out),
        Value::Array(items) => check_array(items, s, path, out),
        Value::Object(m) => check_object(m, s, path, out),
        _ => {}
    }
    check_composition(v, s, path, out);
}

/// Type, `nullable` and `x-kubernetes-int-or-string`; false when the value's checks should stop here.
fn check_type(v: &Value, s: &Value, path: &str, out: &mut Vec<Cause>) -> bool {
    if v.is_null() && flag(s, "nullable") {
        return false;
    }
    if flag(s, "x-kubernetes-int-or-string") {
        let ok = matches!(type_of(v), "integer" | "string");
        if !ok {
            out.push(type_invalid(path, v, "integer,string"));
        }
        return ok;
    }
    let Some(want) = s.get("type").and_then(Value::as_str) else {
        return !v.is_null();
    };
    let got = type_of(v);
    let ok = got == want || (want == "number" && got == "integer");
    if !ok {
        out.push(type_invalid(path, v, want));
    }
    ok
}

fn check_enum(v: &Value, s: &Value, path: &str, out: &mut Vec<Cause>) {
    let Some(allowed) = s.get("enum").and_then(Value::as_array) else {
        return;
    };
    let same = |a: &Value| match (a.as_f64(), v.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == v,
    };
    if !allowed.iter().any(same) {
        let values: Vec<String> = allowed
            .iter()
            .map(|a| match a {
                Value::String(s) => format!("{s:?}"),
                other => format!("{:?}", shown(other)),
            })
            .collect();
        out.push(Cause::new(
            "FieldValueNotSupported",
            path,
            format!(
                "Unsupported value: {}: supported values: {}",
                shown(v),
                values.join(", ")
            ),
        ));
    }
}

fn check_string(v: &Value, text: &str, s: &Value, path: &str, out: &mut Vec<Cause>) {
    let len = text.chars().count() as u64;
    if let Some(max) = s.get("maxLength").and_then(Value::as_u64)
        && len > max
    {
        out.push(Cause::new(
            "FieldValueTooLong",
            path,
            format!("Too long: may not be more than {max} bytes"),
        ));
    }
    if let Some(min) = s.get("minLength").and_then(Value::as_u64)
        && len < min
    {
        out.push(Cause::invalid(
            path,
            v,
            &format!("should be at least {min} chars long"),
        ));
    }
    if let Some(p) = s.get("pattern").and_then(Value::as_str)
        && let Some(re) = compiled(p)
        && !re.is_match(text)
    {
        out.push(Cause::invalid(path, v, &format!("should match '{p}'")));
    }
    if let Some(format) = s.get("format").and_then(Value::as_str)
        && !format_ok(format, text)
    {
        out.push(Cause::invalid(
            path,
            v,
            &format!("must be of type {format}: {text:?}"),
        ));
    }
}

/// The string formats checked; any other format is accepted, as kube-apiserver does for unknown ones.
fn format_ok(format: &str, text: &str) -> bool {
    match format {
        "date-time" | "datetime" => text.parse::<jiff::Timestamp>().is_ok(),
        "date" => text.parse::<jiff::civil::Date>().is_ok(),
        "byte" => base64::engine::general_purpose::STANDARD
            .decode(text)
            .is_ok(),
        "ipv4" => text.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => text.parse::<std::net::Ipv6Addr>().is_ok(),
        "uuid" => {
            text.len() == 36
                && text.char_indices().all(|(i, c)| match i {
                    8 | 13 | 18 | 23 => c == '-',
                    _ => c.is_ascii_hexdigit(),
                })
        }
        _ => true,
    }
}

fn check_number(v: &Value, s: &Value, path: &str, out: &mut Vec<Cause>) {
    let Some(x) = v.as_f64() else { return };
    if let Some(max) = s.get("maximum").and_then(Value::as_f64) {
        let exclusive = flag(s, "exclusiveMaximum");
        if x > max || (exclusive && x == max) {
            let rel = if exclusive {
                "less than"
            } else {
                "less than or equal to"
            };
            out.push(Cause::invalid(
                path,
                v,
                &format!("should be {rel} {}", shown(&s["maximum"])),
            ));
        }
    }
    if let Some(min) = s.get("minimum").and_then(Value::as_f64) {
        let exclusive = flag(s, "exclusiveMinimum");
        if x < min || (exclusive && x == min) {
            let rel = if exclusive {
                "greater than"
            } else {
                "greater than or equal to"
            };
            out.push(Cause::invalid(
                path,
                v,
                &format!("should be {rel} {}", shown(&s["minimum"])),
            ));
        }
    }
    if let Some(m) = s.get("multipleOf").and_then(Value::as_f64)
        && m > 0.0
        && (x / m).fract() != 0.0
    {
        out.push(Cause::invalid(
            path,
            v,
            &format!("should be a multiple of {}", shown(&s["multipleOf"])),
        ));
    }
}

fn check_array(items: &[Value], s: &Value, path: &str, out: &mut Vec<Cause>) {
    let n = items.len() as u64;
    if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
        && n > max
    {
        out.push(Cause::new(
            "FieldValueTooMany",
            path,
            format!("Too many: {n}: must have at most {max} items"),
        ));
    }
    if let Some(min) = s.get("minItems").and_then(Value::as_u64)
        && n < min
    {
        let v = Value::Array(items.to_vec());
        out.push(Cause::invalid(
            path,
            &v,
            &format!("should have at least {min} items"),
        ));
    }
    check_list_type(items, s, path, out);
    if let Some(is) = s.get("items") {
        for (i, item) in items.iter().enumerate() {
            validate(item, is, &format!("{path}[{i}]"), out);
        }
    }
}

/// `x-kubernetes-list-type: set` (items unique) and `map` (object items unique by
/// `x-kubernetes-list-map-keys`).
fn check_list_type(items: &[Value], s: &Value, path: &str, out: &mut Vec<Cause>) {
    let keys: Vec<&str> = s
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let identity = |item: &Value| -> Option<Value> {
        match s.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("set") => Some(item.clone()),
            Some("map") => {
                let o = item.as_object()?;
                let picked: Map<String, Value> = keys
                    .iter()
                    .filter_map(|k| Some((k.to_string(), o.get(*k)?.clone())))
                    .collect();
                Some(Value::Object(picked))
            }
            _ => None,
        }
    };
    let ids: Vec<Option<Value>> = items.iter().map(identity).collect();
    for (i, id) in ids.iter().enumerate() {
        if let Some(id) = id
            && ids[..i].iter().any(|earlier| earlier.as_ref() == Some(id))
        {
            out.push(Cause::new(
                "FieldValueDuplicate",
                &format!("{path}[{i}]"),
                format!("Duplicate value: {}", shown(id)),
            ));
        }
    }
}

fn check_object(m: &Map<String, Value>, s: &Value, path: &str, out: &mut Vec<Cause>) {
    for r in s
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !m.contains_key(r) {
            out.push(Cause::new(
                "FieldValueRequired",
                &child(path, r),
                "Required value".into(),
            ));
        }
    }
    let n = m.len() as u64;
    if let Some(max) = s.get("maxProperties").and_then(Value::as_u64)
        && n > max
    {
        out.push(Cause::new(
            "FieldValueTooMany",
            path,
            format!("Too many: {n}: must have at most {max} items"),
        ));
    }
    if let Some(min) = s.get("minProperties").and_then(Value::as_u64)
        && n < min
    {
        let v = Value::Object(m.clone());
        out.push(Cause::invalid(
            path,
            &v,
            &format!("should have at least {min} properties"),
        ));
    }
    if flag(s, "x-kubernetes-embedded-resource") {
        for k in ["apiVersion", "kind"] {
            if m.get(k).and_then(Value::as_str).is_none_or(str::is_empty) {
                out.push(Cause::new(
                    "FieldValueRequired",
                    &child(path, k),
                    "Required value: must not be empty".into(),
                ));
            }
        }
    }
    for (k, v) in m {
        if path.is_empty() && ENVELOPE.contains(&k.as_str()) && k != "metadata" {
            continue;
        }
        if let Some(Some(fs)) = field_schema(s, k) {
            validate(v, fs, &child(path, k), out);
        }
    }
}

/// `allOf`, `anyOf`, `oneOf` and `not` over the same value, with kube-openapi's messages.
fn check_composition(v: &Value, s: &Value, path: &str, out: &mut Vec<Cause>) {
    let branches = |name: &str| -> Vec<Vec<Cause>> {
        s.get(name)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|b| {
                let mut errs = Vec::new();
                validate(v, b, path, &mut errs);
                errs
            })
            .collect()
    };
    for errs in branches("allOf") {
        out.extend(errs);
    }
    let fewest = |rs: Vec<Vec<Cause>>| rs.into_iter().min_by_key(Vec::len).unwrap_or_default();
    let any = branches("anyOf");
    if !any.is_empty() && !any.iter().any(Vec::is_empty) {
        out.push(Cause::invalid(
            path,
            &Value::String(String::new()),
            "must validate at least one schema (anyOf)",
        ));
        out.extend(fewest(any));
    }
    let one = branches("oneOf");
    let passing = one.iter().filter(|e| e.is_empty()).count();
    if !one.is_empty() && passing != 1 {
        out.push(Cause::invalid(
            path,
            &Value::String(String::new()),
            "must validate one and only one schema (oneOf)",
        ));
        if passing == 0 {
            out.extend(fewest(one));
        }
    }
    if let Some(not) = s.get("not") {
        let mut errs = Vec::new();
        validate(v, not, path, &mut errs);
        if errs.is_empty() {
            out.push(Cause::invalid(
                path,
                &Value::String(String::new()),
                "must not validate the schema (not)",
            ));
        }
    }
}

fn patterns() -> &'static Mutex<HashMap<String, Option<Regex>>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Option<Regex>>>> = OnceLock::new();
    CACHE.get_or_init(Mutex::default)
}

/// The pattern compiled by the `regex` crate; `None` (the pattern is not checked) when Rust's dialect
/// cannot express it (Go's RE2 and Rust's differ in a few escapes and classes).
fn compiled(p: &str) -> Option<Regex> {
    let mut cache = patterns().lock().unwrap_or_else(|e| e.into_inner());
    cache
        .entry(p.to_string())
        .or_insert_with(|| Regex::new(p).ok())
        .clone()
}

/// The `pattern`s met so far that could not be compiled and so were not checked, sorted.
pub fn skipped_patterns() -> Vec<String> {
    let cache = patterns().lock().unwrap_or_else(|e| e.into_inner());
    let mut out: Vec<String> = cache
        .iter()
        .filter(|(_, re)| re.is_none())
        .map(|(p, _)| p.clone())
        .collect();
    out.sort();
    out
}

/// The `fieldValidation` query parameter: what a write's unknown fields cause.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    /// Pruned silently.
    Ignore,
    /// Pruned, each named in a `Warning` header: kube-apiserver's default.
    #[default]
    Warn,
    /// The write is refused (400 BadRequest, `strict decoding error: unknown field "…"`).
    Strict,
}

impl FieldValidation {
    pub fn parse(q: Option<&str>) -> Result<Self, String> {
        match q.unwrap_or("") {
            "" | "Warn" => Ok(FieldValidation::Warn),
            "Ignore" => Ok(FieldValidation::Ignore),
            "Strict" => Ok(FieldValidation::Strict),
            other => Err(format!(
                "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
            )),
        }
    }
}
