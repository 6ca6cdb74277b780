//! The pod-template hash of the hold model (DESIGN.md): the webhook and the controller must
//! compute the same value for the same `spec.template`, whether they see it as raw JSON from an
//! AdmissionReview or as a typed object read through kube.
//!
//! Definition: take `spec.template` as JSON; recursively drop `null` values, then empty objects
//! and empty arrays (a typed client omits what a raw one may send as `null`, `{}` or `[]`, e.g.
//! kubectl's `creationTimestamp: null` and `resources: {}`); serialise with object keys sorted by
//! byte order and no whitespace; SHA-256; the first 16 hex digits (64 bits) are the hash.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Length in hex digits of a template hash.
pub const HASH_LEN: usize = 16;

/// Hash of a pod template given as JSON (the value of `spec.template`).
pub fn template_hash(template: &Value) -> String {
    digest_hex(&canonical_bytes(template))
}

/// The hash of canonical text: the first [`HASH_LEN`] hex digits of its SHA-256.
fn digest_hex(canonical: &[u8]) -> String {
    let digest = Sha256::digest(canonical);
    hex::encode(&digest[..HASH_LEN / 2])
}

/// Hash of any serialisable pod template (e.g. `k8s_openapi`'s `PodTemplateSpec`).
pub fn template_hash_of<T: serde::Serialize>(template: &T) -> Result<String, serde_json::Error> {
    Ok(template_hash(&serde_json::to_value(template)?))
}

/// Hash of a Deployment (or DaemonSet/StatefulSet) given as JSON: the hash of its `spec.template`.
pub fn workload_template_hash(workload: &Value) -> String {
    let template = workload
        .get("spec")
        .and_then(|spec| spec.get("template"))
        .unwrap_or(&Value::Null);
    template_hash(template)
}

/// The canonical text that is hashed, exposed for documentation and tests.
pub fn canonical_json(value: &Value) -> String {
    // serde_json writes UTF-8 only, so the lossy conversion never replaces anything.
    String::from_utf8_lossy(&canonical_bytes(value)).into_owned()
}

fn canonical_bytes(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    write_canonical(value, &mut out);
    out
}

/// Appends the canonical form of `value` to `out`; returns false, having appended nothing, when
/// normalisation drops `value` (null, an empty array, an object left empty once its dropped
/// members are gone). An array element that is dropped keeps its position as `null`.
fn write_canonical(value: &Value, out: &mut Vec<u8>) -> bool {
    match value {
        Value::Null => false,
        Value::Array(items) if items.is_empty() => false,
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                if !write_canonical(item, out) {
                    out.extend_from_slice(b"null");
                }
            }
            out.push(b']');
            true
        }
        Value::Object(map) => {
            // Sorted here rather than trusting the map's order: a crate in the build may turn on
            // serde_json's `preserve_order`.
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_unstable_by_key(|(key, _)| *key);
            let start = out.len();
            out.push(b'{');
            let mut written = false;
            for (key, value) in members {
                let mark = out.len();
                if written {
                    out.push(b',');
                }
                write_scalar(key.as_str(), out);
                out.push(b':');
                if write_canonical(value, out) {
                    written = true;
                } else {
                    out.truncate(mark);
                }
            }
            if written {
                out.push(b'}');
            } else {
                out.truncate(start);
            }
            written
        }
        scalar => {
            write_scalar(scalar, out);
            true
        }
    }
}

/// serde_json's compact form of a string, number or boolean (escapes included).
fn write_scalar<T: serde::Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    // Writing a string, number or boolean into a Vec cannot fail.
    let _ = serde_json::to_writer(out, value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn key_order_and_empty_values_do_not_matter() {
        let a = json!({"metadata": {"labels": {"app": "web", "v": "1"}, "creationTimestamp": null},
                       "spec": {"containers": [{"name": "web", "image": "web:1", "resources": {}}]}});
        let b = json!({"spec": {"containers": [{"image": "web:1", "name": "web"}]},
                       "metadata": {"labels": {"v": "1", "app": "web"}}});
        assert_eq!(template_hash(&a), template_hash(&b));
        assert_eq!(template_hash(&a).len(), HASH_LEN);
    }

    #[test]
    fn image_change_changes_hash() {
        let a = json!({"spec": {"containers": [{"name": "web", "image": "web:1"}]}});
        let b = json!({"spec": {"containers": [{"name": "web", "image": "web:2"}]}});
        assert_ne!(template_hash(&a), template_hash(&b));
    }

    #[test]
    fn typed_and_raw_agree() {
        use k8s_openapi::api::core::v1::PodTemplateSpec;
        let raw = json!({"metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "web", "image": "web:1", "ports": [{"containerPort": 8080}]}]}});
        let typed: PodTemplateSpec = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(template_hash_of(&typed).unwrap(), template_hash(&raw));
    }

    /// The definition as stated: build the normalised tree, then serialise it with sorted keys.
    /// The writer, which normalises as it writes, must agree.
    fn reference_canonical(value: &Value) -> String {
        fn normalise(value: &Value) -> Option<Value> {
            match value {
                Value::Null => None,
                Value::Object(map) => {
                    let cleaned: serde_json::Map<String, Value> = map
                        .iter()
                        .filter_map(|(k, v)| normalise(v).map(|v| (k.clone(), v)))
                        .collect();
                    (!cleaned.is_empty()).then_some(Value::Object(cleaned))
                }
                Value::Array(items) => {
                    let cleaned: Vec<Value> = items
                        .iter()
                        .map(|v| normalise(v).unwrap_or(Value::Null))
                        .collect();
                    (!cleaned.is_empty()).then_some(Value::Array(cleaned))
                }
                other => Some(other.clone()),
            }
        }
        fn write(value: &Value, out: &mut String) {
            match value {
                Value::Object(map) => {
                    let mut keys: Vec<&String> = map.keys().collect();
                    keys.sort();
                    out.push('{');
                    for (i, k) in keys.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        out.push_str(&serde_json::to_string(k).unwrap());
                        out.push(':');
                        write(&map[k.as_str()], out);
                    }
                    out.push('}');
                }
                Value::Array(items) => {
                    out.push('[');
                    for (i, v) in items.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        write(v, out);
                    }
                    out.push(']');
                }
                other => out.push_str(&other.to_string()),
            }
        }
        let mut out = String::new();
        if let Some(v) = normalise(value) {
            write(&v, &mut out);
        }
        out
    }

    /// JSON values with the shapes normalisation cares about: nulls, empty and nested
    /// containers, keys needing escapes, numbers of every kind.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            "[a-z\\\\\"\\x00-\\x1f\\x7fé☃]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map("[a-zA-Z\\\\\"/~é\\x01]{0,4}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn writer_agrees_with_the_definition(value in json_value()) {
            prop_assert_eq!(canonical_json(&value), reference_canonical(&value));
        }
    }

    #[test]
    fn hash_values_are_stable() {
        // Stored in users' clusters as serin.dev/stable-hash: this value must never change.
        // Cross-checked with Python: json.dumps(normalised, sort_keys=True,
        // separators=(",", ":"), ensure_ascii=False), SHA-256, first 16 hex digits.
        let template = json!({
            "metadata": {"creationTimestamp": null, "labels": {"app": "web"}, "annotations": {}},
            "spec": {"containers": [{"name": "web", "image": "ghcr.io/acme/web:1.4.3", "args": [],
                                     "env": [null, {"name": "A", "value": "x\"y"}],
                                     "ports": [{"containerPort": 9898, "protocol": "TCP"}],
                                     "resources": {"limits": {}}}],
                     "terminationGracePeriodSeconds": 30, "hostNetwork": false}});
        assert_eq!(
            canonical_json(&template),
            r#"{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"env":[null,{"name":"A","value":"x\"y"}],"image":"ghcr.io/acme/web:1.4.3","name":"web","ports":[{"containerPort":9898,"protocol":"TCP"}]}],"hostNetwork":false,"terminationGracePeriodSeconds":30}}"#
        );
        assert_eq!(template_hash(&template), "1b508b72538fdf0a");
        assert_eq!(
            workload_template_hash(&json!({"spec": {"template": template}})),
            "1b508b72538fdf0a"
        );
        assert_eq!(canonical_json(&json!({"a": {"b": null}, "c": []})), "");
    }

    #[test]
    fn canonical_form_is_documented_shape() {
        assert_eq!(
            canonical_json(&json!({"b": 1, "a": [null, {}], "c": null})),
            r#"{"a":[null,null],"b":1}"#
        );
    }
}
