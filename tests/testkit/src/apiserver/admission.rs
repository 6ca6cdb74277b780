//! Calls Mutating/ValidatingWebhookConfigurations like kube-apiserver: AdmissionReview v1 over HTTPS, trusting
//! `caBundle`, honouring `timeoutSeconds`, `failurePolicy`, `objectSelector` and the rules; applies returned
//! JSON patches and passes denials and warnings back.

use super::error::ApiError;
use super::patch::{PatchKind, apply};
use super::registry::ResourceType;
use super::selector::LabelSelector;
use base64::Engine;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

/// The webhook configurations in force when a write was prepared.
#[derive(Debug, Default, Clone)]
pub struct Configs {
    pub mutating: Vec<Value>,
    pub validating: Vec<Value>,
}

impl Configs {
    pub fn is_empty(&self) -> bool {
        self.mutating.is_empty() && self.validating.is_empty()
    }
}

pub struct Attributes<'a> {
    pub operation: &'static str,
    pub rt: &'a ResourceType,
    pub sub: Option<&'a str>,
    pub namespace: &'a str,
    pub name: &'a str,
    pub old: Option<&'a Value>,
    pub uid_seed: u64,
}

fn strings(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Rule matching as kube-apiserver does it: `*` is every resource but no subresource, `*/*` everything,
/// `deployments/*` every subresource of deployments.
fn rule_matches(rule: &Value, a: &Attributes) -> bool {
    let any = |list: Vec<&str>, want: &str| list.iter().any(|x| *x == "*" || *x == want);
    if !any(strings(rule.get("operations")), a.operation)
        || !any(strings(rule.get("apiGroups")), &a.rt.group)
        || !any(strings(rule.get("apiVersions")), &a.rt.version)
    {
        return false;
    }
    match rule.get("scope").and_then(Value::as_str) {
        Some("Namespaced") if !a.rt.namespaced => return false,
        Some("Cluster") if a.rt.namespaced => return false,
        _ => {}
    }
    let sub = a.sub.unwrap_or("");
    strings(rule.get("resources")).iter().any(|r| {
        let (res, rsub) = r.split_once('/').unwrap_or((r, ""));
        (res == "*" || res == a.rt.plural)
            && (rsub == sub || (rsub == "*" && !sub.is_empty()) || (*r == "*/*"))
    })
}

fn hook_matches(hook: &Value, a: &Attributes, obj: Option<&Value>) -> bool {
    let rules = hook
        .get("rules")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !rules.iter().any(|r| rule_matches(r, a)) {
        return false;
    }
    match hook.get("objectSelector") {
        Some(sel) if sel.is_object() && sel.as_object().is_some_and(|m| !m.is_empty()) => {
            let s = LabelSelector::from_object(sel);
            obj.is_some_and(|o| s.matches(o)) || a.old.is_some_and(|o| s.matches(o))
        }
        _ => true,
    }
}

/// Runs the mutating webhooks (each sees the previous one's result), then the validating ones.
/// Returns the warnings to hand back to the client.
pub async fn admit(
    configs: &Configs,
    services: &HashMap<String, SocketAddr>,
    a: &Attributes<'_>,
    obj: &mut Option<Value>,
) -> Result<Vec<String>, ApiError> {
    let mut warnings = Vec::new();
    for (mutating, list) in [(true, &configs.mutating), (false, &configs.validating)] {
        for config in list {
            for hook in config
                .get("webhooks")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if !hook_matches(hook, a, obj.as_ref()) {
                    continue;
                }
                let name = hook
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("<unnamed>");
                let ignore = hook.get("failurePolicy").and_then(Value::as_str) == Some("Ignore");
                let response = match call(hook, services, a, obj.as_ref()).await {
                    Ok(r) => r,
                    Err(_) if ignore => continue,
                    Err(e) => {
                        return Err(ApiError::internal(format!(
                            "Internal error occurred: failed calling webhook \"{name}\": {e}"
                        )));
                    }
                };
                warnings.extend(
                    strings(response.get("warnings"))
                        .into_iter()
                        .map(str::to_string),
                );
                if response.get("allowed").and_then(Value::as_bool) != Some(true) {
                    let status = response
                        .get("result")
                        .or_else(|| response.get("status"))
                        .cloned()
                        .unwrap_or(json!({}));
                    let code = status
                        .get("code")
                        .and_then(Value::as_u64)
                        .filter(|c| *c >= 400)
                        .unwrap_or(403) as u16;
                    let msg = status.get("message").and_then(Value::as_str).unwrap_or("");
                    let mut err = ApiError::from_code(
                        code,
                        format!("admission webhook \"{name}\" denied the request: {msg}"),
                    );
                    if let Some(r) = status
                        .get("reason")
                        .and_then(Value::as_str)
                        .filter(|r| !r.is_empty())
                    {
                        err.reason = r.to_string();
                    }
                    return Err(err);
                }
                if !mutating {
                    continue;
                }
                if let Some(patch) = decode_patch(&response).map_err(|e| {
                    ApiError::internal(format!("Internal error occurred: webhook \"{name}\" returned an unusable patch: {e}"))
                })? {
                    let target = obj.as_mut().ok_or_else(|| ApiError::internal(format!("webhook \"{name}\" patched a DELETE")))?;
                    apply(PatchKind::Json, target, &patch).map_err(|e| {
                        ApiError::internal(format!("Internal error occurred: webhook \"{name}\" returned a patch that does not apply: {}", e.message))
                    })?;
                }
            }
        }
    }
    Ok(warnings)
}

/// `patch` is base64 in the API; kube-rs sends a JSON number array (kube-rs #1781), which Go also decodes.
fn decode_patch(response: &Value) -> Result<Option<Value>, String> {
    let bytes = match response.get("patch") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|e| format!("patch is not base64: {e}"))?,
        Some(Value::Array(nums)) => nums
            .iter()
            .map(|n| {
                n.as_u64()
                    .filter(|n| *n < 256)
                    .map(|n| n as u8)
                    .ok_or("patch array holds a non-byte")
            })
            .collect::<Result<Vec<u8>, _>>()?,
        Some(other) => return Err(format!("patch must be a base64 string, got {other}")),
    };
    match response.get("patchType").and_then(Value::as_str) {
        Some("JSONPatch") => {}
        other => return Err(format!("patchType must be \"JSONPatch\", got {other:?}")),
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| format!("patch is not JSON: {e}"))
}

async fn call(
    hook: &Value,
    services: &HashMap<String, SocketAddr>,
    a: &Attributes<'_>,
    obj: Option<&Value>,
) -> Result<Value, String> {
    let cc = hook.get("clientConfig").ok_or("clientConfig is missing")?;
    let timeout = hook
        .get("timeoutSeconds")
        .and_then(Value::as_u64)
        .unwrap_or(10)
        .clamp(1, 30);
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(timeout));
    if let Some(ca) = cc
        .get("caBundle")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        let pem = base64::engine::general_purpose::STANDARD
            .decode(ca)
            .map_err(|e| format!("caBundle is not base64: {e}"))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("caBundle holds no PEM certificate: {e}"))?;
        builder = builder.tls_certs_only(certs);
    }
    let url = if let Some(url) = cc.get("url").and_then(Value::as_str) {
        url.to_string()
    } else if let Some(svc) = cc.get("service") {
        let name = svc
            .get("name")
            .and_then(Value::as_str)
            .ok_or("clientConfig.service.name is missing")?;
        let ns = svc
            .get("namespace")
            .and_then(Value::as_str)
            .ok_or("clientConfig.service.namespace is missing")?;
        let port = svc.get("port").and_then(Value::as_u64).unwrap_or(443);
        let path = svc.get("path").and_then(Value::as_str).unwrap_or("/");
        // No cluster DNS: the service's DNS name resolves to the configured address, and TLS still verifies
        // the certificate against that DNS name, as kube-apiserver does.
        let host = format!("{name}.{ns}.svc");
        let addr = services
            .get(&format!("{name}.{ns}"))
            .or_else(|| services.get(&host))
            .ok_or_else(|| format!("no address for service {ns}/{name}: register one with --service-address {name}.{ns}=127.0.0.1:PORT"))?;
        builder = builder.resolve(&host, *addr);
        format!("https://{host}:{port}{path}")
    } else {
        return Err("clientConfig needs url or service".into());
    };
    let client = builder.build().map_err(|e| e.to_string())?;
    let uid = format!(
        "{:08x}-0000-4000-8000-{:012x}",
        a.uid_seed as u32, a.uid_seed
    );
    let kind = json!({"group": a.rt.group, "version": a.rt.version, "kind": a.rt.kind});
    let resource = json!({"group": a.rt.group, "version": a.rt.version, "resource": a.rt.plural});
    let options_kind = match a.operation {
        "CREATE" => "CreateOptions",
        "DELETE" => "DeleteOptions",
        _ => "UpdateOptions",
    };
    let mut request = json!({
        "uid": uid,
        "kind": kind, "resource": resource, "requestKind": kind, "requestResource": resource,
        "name": a.name,
        "operation": a.operation,
        "userInfo": {"username": "system:admin", "groups": ["system:masters", "system:authenticated"]},
        "object": obj,
        "oldObject": a.old,
        "dryRun": false,
        "options": {"kind": options_kind, "apiVersion": "meta.k8s.io/v1"},
    });
    if a.rt.namespaced {
        request["namespace"] = json!(a.namespace);
    }
    if let Some(sub) = a.sub {
        request["subResource"] = json!(sub);
        request["requestSubResource"] = json!(sub);
    }
    let review =
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request});
    let resp = client
        .post(&url)
        .json(&review)
        .send()
        .await
        .map_err(|e| format!("Post \"{url}\": {}", error_chain(&e)))?;
    let status = resp.status();
    let body: Value = resp
        .json()
        .await
        .map_err(|e| format!("Post \"{url}\": response is not an AdmissionReview: {e}"))?;
    if !status.is_success() {
        return Err(format!("Post \"{url}\": HTTP {status}"));
    }
    let response = body
        .get("response")
        .cloned()
        .ok_or("AdmissionReview has no response")?;
    if response.get("uid").and_then(Value::as_str) != Some(uid.as_str()) {
        return Err(format!(
            "expected response.uid={uid:?}, got {:?}",
            response.get("uid")
        ));
    }
    Ok(response)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::registry::Registry;

    #[test]
    fn rules_and_subresources() {
        let reg = Registry::with_builtins();
        let rt = reg.get("apps", "v1", "deployments").unwrap();
        let a = |sub, op| Attributes {
            operation: op,
            rt,
            sub,
            namespace: "ns",
            name: "web",
            old: None,
            uid_seed: 1,
        };
        let rule = |res: &str| json!({"apiGroups":["apps"],"apiVersions":["v1"],"resources":[res],"operations":["CREATE","UPDATE"]});
        assert!(rule_matches(&rule("deployments"), &a(None, "UPDATE")));
        assert!(!rule_matches(
            &rule("deployments"),
            &a(Some("status"), "UPDATE")
        ));
        assert!(!rule_matches(&rule("deployments"), &a(None, "DELETE")));
        assert!(rule_matches(
            &rule("deployments/*"),
            &a(Some("scale"), "UPDATE")
        ));
        assert!(rule_matches(&rule("*"), &a(None, "CREATE")));
        assert!(!rule_matches(&rule("*"), &a(Some("status"), "CREATE")));
        assert!(rule_matches(&rule("*/*"), &a(Some("status"), "CREATE")));
        assert!(!rule_matches(&rule("services"), &a(None, "CREATE")));
    }

    #[test]
    fn patch_accepts_base64_and_number_arrays() {
        let p = br#"[{"op":"add","path":"/a","value":1}]"#;
        let b64 = json!({"patchType":"JSONPatch","patch": base64::engine::general_purpose::STANDARD.encode(p)});
        let nums = json!({"patchType":"JSONPatch","patch": p.to_vec()});
        assert_eq!(decode_patch(&b64).unwrap(), decode_patch(&nums).unwrap());
        assert!(decode_patch(&json!({"patch":"!!"})).is_err());
        assert_eq!(decode_patch(&json!({"allowed":true})).unwrap(), None);
    }
}
