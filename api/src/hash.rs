//! The pod-template hash of the hold model (DESIGN.md): the webhook and the controller must
//! compute the same value for the same `spec.template`, whether they see it as raw JSON from an
//! AdmissionReview or as a typed object read through kube.
//!
//! Definition: take `spec.template` as JSON; recursively drop `null` values, then empty objects
//! and empty arrays (a typed client omits what a raw one may send as `null`, `{}` or `[]`, e.g.
//! kubectl's `creationTimestamp: null` and `resources: {}`); serialise with object keys sorted by
//! byte order and no whitespace; SHA-256; the first 16 hex digits (64 bits) are the hash.

use sha2::{Digest, Sha256};

/// Length in hex digits of a template hash.
pub const HASH_LEN: usize = 16;

/// Hash of a pod template given as JSON (the value of `spec.template`).
pub fn template_hash(template: &serde_json::Value) -> String {
    let mut out = String::new();
    if let Some(v) = normalise(template) {
        write_canonical(&v, &mut out);
    }
    let digest = Sha256::digest(out.as_bytes());
    hex::encode(digest)[..HASH_LEN].to_string()
}

/// Hash of any serialisable pod template (e.g. `k8s_openapi`'s `PodTemplateSpec`).
pub fn template_hash_of<T: serde::Serialize>(template: &T) -> Result<String, serde_json::Error> {
    Ok(template_hash(&serde_json::to_value(template)?))
}

/// Hash of a Deployment (or DaemonSet/StatefulSet) given as JSON: the hash of its `spec.template`.
pub fn workload_template_hash(workload: &serde_json::Value) -> String {
    template_hash(
        workload
            .pointer("/spec/template")
            .unwrap_or(&serde_json::Value::Null),
    )
}

/// The canonical text that is hashed, exposed for documentation and tests.
pub fn canonical_json(value: &serde_json::Value) -> String {
    let mut out = String::new();
    if let Some(v) = normalise(value) {
        write_canonical(&v, &mut out);
    }
    out
}

fn normalise(value: &serde_json::Value) -> Option<serde_json::Value> {
    use serde_json::Value;
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
            // Array elements keep their positions: a null element is kept as null.
            let cleaned: Vec<Value> = items
                .iter()
                .map(|v| normalise(v).unwrap_or(Value::Null))
                .collect();
            (!cleaned.is_empty()).then_some(Value::Array(cleaned))
        }
        other => Some(other.clone()),
    }
}

fn write_canonical(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).expect("string serialises"));
                out.push(':');
                write_canonical(&map[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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

    #[test]
    fn canonical_form_is_documented_shape() {
        assert_eq!(
            canonical_json(&json!({"b": 1, "a": [null, {}], "c": null})),
            r#"{"a":[null,null],"b":1}"#
        );
    }
}
