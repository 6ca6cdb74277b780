//! The four PATCH flavours: JSON patch (RFC 6902), merge patch (RFC 7386), apply (approximated as merge) and
//! strategic merge patch (approximated: the list fields kubectl patches are merged by their Kubernetes merge key).

use super::error::ApiError;
use json_patch::PatchOperation;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchKind {
    pub fn from_content_type(ct: &str) -> Result<Self, ApiError> {
        let base = ct.split(';').next().unwrap_or_default().trim();
        match base {
            "application/json-patch+json" => Ok(Self::Json),
            "application/merge-patch+json" => Ok(Self::Merge),
            "application/strategic-merge-patch+json" => Ok(Self::Strategic),
            "application/apply-patch+yaml"
            | "application/apply-patch+json"
            | "application/apply-patch+cbor" => Ok(Self::Apply),
            other => Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format ({other:?}) - accepted media types include: \
                     application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, \
                     application/strategic-merge-patch+json"
                ),
            )),
        }
    }
}

/// Parses a patch body; apply patches may be YAML.
pub fn parse_body(kind: PatchKind, body: &[u8]) -> Result<Value, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => Ok(v),
        Err(e) if kind == PatchKind::Apply => {
            let text = std::str::from_utf8(body)
                .map_err(|_| ApiError::bad_request("apply patch body is not UTF-8"))?;
            serde_saphyr::from_str::<Value>(text).map_err(|y| {
                ApiError::bad_request(format!(
                    "error decoding apply patch as JSON ({e}) or YAML ({y})"
                ))
            })
        }
        Err(e) => Err(ApiError::bad_request(format!(
            "error decoding patch body: {e}"
        ))),
    }
}

pub fn apply(kind: PatchKind, target: &mut Value, patch: &Value) -> Result<(), ApiError> {
    match kind {
        PatchKind::Json => json_patch(target, patch),
        PatchKind::Merge | PatchKind::Apply => {
            json_patch::merge(target, patch);
            Ok(())
        }
        PatchKind::Strategic => {
            if !patch.is_object() {
                return Err(ApiError::bad_request(
                    "strategic merge patch must be a JSON object",
                ));
            }
            strategic(target, patch);
            Ok(())
        }
    }
}

/// RFC 6902, except that `test` of a missing path against `null` succeeds, as in kube-apiserver
/// (kube-runtime's `finalizer()` relies on it for the first finalizer).
fn json_patch(target: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let ops: Vec<PatchOperation> = serde_json::from_value(patch.clone())
        .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
    let mut doc = target.clone();
    for (i, op) in ops.iter().enumerate() {
        if let PatchOperation::Test(t) = op {
            let got = doc.pointer(t.path.as_str()).unwrap_or(&Value::Null);
            if *got != t.value {
                return Err(ApiError::invalid(format!(
                    "the server rejected our request due to an error in our request: testing value {} failed (operation {i})",
                    t.path.as_str()
                )));
            }
            continue;
        }
        json_patch::patch(&mut doc, std::slice::from_ref(op))
            .map_err(|e| ApiError::invalid(format!("the server rejected our request due to an error in our request: {e} (operation {i})")))?;
    }
    *target = doc;
    Ok(())
}

/// The merge key of a list field (Kubernetes `patchMergeKey`), for the lists kubectl's patches touch.
fn merge_key(field: &str, items: &[Value]) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "hostAliases" => "ip",
        "ports" if items.iter().any(|i| i.get("containerPort").is_some()) => "containerPort",
        "ports" => "port",
        _ => return None,
    })
}

fn strategic(target: &mut Value, patch: &Value) {
    let Some(p) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    match p.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut clean = p.clone();
            clean.remove("$patch");
            *target = Value::Object(clean);
            return;
        }
        Some("delete") => {
            *target = Value::Object(Map::new());
            return;
        }
        _ => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("made an object above");
    if let Some(keep) = p.get("$retainKeys").and_then(Value::as_array) {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        t.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (k, v) in p {
        if k.starts_with("$setElementOrder/") || k == "$patch" || k == "$retainKeys" {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(have)), Some(gone)) = (t.get_mut(field), v.as_array()) {
                have.retain(|x| !gone.contains(x));
            }
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        match v {
            Value::Array(items) => {
                if let Some(mk) = merge_key(k, items) {
                    let entry = t.entry(k.clone()).or_insert_with(|| Value::Array(vec![]));
                    if !entry.is_array() {
                        *entry = Value::Array(vec![]);
                    }
                    merge_list(entry.as_array_mut().expect("array"), items, mk);
                } else if k == "finalizers" {
                    let entry = t.entry(k.clone()).or_insert_with(|| Value::Array(vec![]));
                    if let Value::Array(have) = entry {
                        for i in items {
                            if !have.contains(i) {
                                have.push(i.clone());
                            }
                        }
                    }
                } else {
                    t.insert(k.clone(), v.clone());
                }
            }
            Value::Object(_) => strategic(t.entry(k.clone()).or_insert(Value::Null), v),
            _ => {
                t.insert(k.clone(), v.clone());
            }
        }
    }
}

fn merge_list(have: &mut Vec<Value>, items: &[Value], key: &str) {
    for item in items {
        let Some(kv) = item.get(key) else {
            have.push(item.clone());
            continue;
        };
        let pos = have.iter().position(|h| h.get(key) == Some(kv));
        match (item.get("$patch").and_then(Value::as_str), pos) {
            (Some("delete"), Some(i)) => {
                have.remove(i);
            }
            (Some("delete"), None) => {}
            (Some("replace"), Some(i)) => {
                let mut clean = item.clone();
                clean.as_object_mut().map(|m| m.remove("$patch"));
                have[i] = clean;
            }
            (_, Some(i)) => strategic(&mut have[i], item),
            (_, None) => {
                let mut fresh = Value::Null;
                strategic(&mut fresh, item);
                have.push(fresh);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_patch_test_missing_path_is_null() {
        let mut o = json!({"metadata":{"name":"a"}});
        let p = json!([{"op":"test","path":"/metadata/finalizers","value":null},{"op":"add","path":"/metadata/finalizers","value":["f"]}]);
        apply(PatchKind::Json, &mut o, &p).unwrap();
        assert_eq!(o["metadata"]["finalizers"], json!(["f"]));
        let e = apply(PatchKind::Json, &mut o, &p).unwrap_err();
        assert_eq!(e.code, 422);
        assert_eq!(
            o["metadata"]["finalizers"],
            json!(["f"]),
            "a failed patch leaves the object as it was"
        );
    }

    #[test]
    fn strategic_merges_containers_by_name_and_ports_by_container_port() {
        let mut o = json!({"spec":{"template":{"spec":{"containers":[
            {"name":"web","image":"web:1","ports":[{"containerPort":80,"name":"http"}],"env":[{"name":"A","value":"1"}]},
            {"name":"side","image":"side:1"}]}}}});
        let p = json!({"spec":{"template":{"spec":{
            "$setElementOrder/containers":[{"name":"web"},{"name":"side"}],
            "containers":[{"name":"web","image":"web:2","ports":[{"containerPort":81}],"env":[{"name":"B","value":"2"},{"name":"A","$patch":"delete"}]}]}}}});
        apply(PatchKind::Strategic, &mut o, &p).unwrap();
        let c = &o["spec"]["template"]["spec"]["containers"];
        assert_eq!(c[0]["image"], "web:2");
        assert_eq!(c[1]["image"], "side:1");
        assert_eq!(
            c[0]["ports"],
            json!([{"containerPort":80,"name":"http"},{"containerPort":81}])
        );
        assert_eq!(c[0]["env"], json!([{"name":"B","value":"2"}]));
        assert!(
            o["spec"]["template"]["spec"]
                .get("$setElementOrder/containers")
                .is_none()
        );
    }

    #[test]
    fn merge_patch_null_deletes_and_lists_replace() {
        let mut o = json!({"a":{"b":1,"c":2},"l":[1,2]});
        apply(PatchKind::Merge, &mut o, &json!({"a":{"b":null},"l":[3]})).unwrap();
        assert_eq!(o, json!({"a":{"c":2},"l":[3]}));
    }

    #[test]
    fn apply_body_may_be_yaml() {
        let v = parse_body(
            PatchKind::Apply,
            b"apiVersion: v1\nkind: ConfigMap\ndata:\n  a: b\n",
        )
        .unwrap();
        assert_eq!(v["data"]["a"], "b");
        assert!(parse_body(PatchKind::Merge, b"a: b").is_err());
    }
}
