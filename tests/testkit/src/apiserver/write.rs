//! Writes in two locked phases around admission: `prepare` computes the object the write would store (what the
//! webhooks see), `commit` stores it if nothing changed in between (else the caller retries or gets 409).

use super::admission::Configs;
use super::error::{ApiError, ApiResult};
use super::patch::{self, PatchKind};
use super::registry::{Registry, ResourceType};
use super::schema::{self, FieldValidation};
use super::store::{ObjKey, Store, key_of, meta_mut, meta_str, now_rfc3339};
use serde_json::{Value, json};

pub enum Verb {
    Create(Value),
    Update(Value),
    Patch {
        kind: PatchKind,
        body: Value,
        field_manager: Option<String>,
    },
    Delete(Option<Value>),
}

pub struct Target {
    pub rt: ResourceType,
    pub ns: String,
    pub name: String,
    pub sub: Option<String>,
    /// What unknown fields in the written object cause (`?fieldValidation=`).
    pub field_validation: FieldValidation,
}

pub struct Prepared {
    pub operation: &'static str,
    pub key: ObjKey,
    pub old: Option<Value>,
    pub new: Option<Value>,
    /// The resourceVersion the client required (PUT body, patch body); a mismatch at commit is a 409.
    pub precondition: Option<String>,
    pub configs: Configs,
    /// `unknown field "…"` for each field pruned from the object (fieldValidation=Warn).
    pub warnings: Vec<String>,
}

pub enum Outcome {
    /// Stored (or deleted); HTTP code and the object to return.
    Done(u16, Value),
    /// The object changed since `prepare`; prepare again.
    Retry,
}

fn not_found(t: &Target) -> ApiError {
    ApiError::not_found(&t.rt.qualified(), &t.name)
}

/// The parts of an object whose change bumps `metadata.generation`.
fn spec_part(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        for k in ["metadata", "status", "apiVersion", "kind"] {
            m.remove(k);
        }
    }
    o
}

/// Status subresource rules and server-owned metadata, applied to what a client wants to store.
fn shape(rt: &ResourceType, old: Option<&Value>, mut new: Value, sub: Option<&str>) -> Value {
    if rt.status && sub == Some("status") {
        let mut kept = old.cloned().unwrap_or(json!({}));
        match new.get("status") {
            Some(s) => kept["status"] = s.clone(),
            None => {
                kept.as_object_mut().map(|m| m.remove("status"));
            }
        }
        return kept;
    }
    if rt.status {
        match old.and_then(|o| o.get("status")) {
            Some(s) => new["status"] = s.clone(),
            None => {
                new.as_object_mut().map(|m| m.remove("status"));
            }
        }
    }
    new["apiVersion"] = json!(rt.api_version());
    new["kind"] = json!(rt.kind);
    if let Some(old) = old {
        let m = meta_mut(&mut new);
        for f in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "resourceVersion",
            "name",
            "namespace",
        ] {
            match old.get("metadata").and_then(|om| om.get(f)) {
                Some(v) => m.insert(f.into(), v.clone()),
                None => m.remove(f),
            };
        }
    }
    new
}

fn webhook_configs(store: &Store, rt: &ResourceType) -> Configs {
    if rt.group == "admissionregistration.k8s.io" {
        return Configs::default();
    }
    let g = "admissionregistration.k8s.io";
    Configs {
        mutating: store
            .list(g, "mutatingwebhookconfigurations", None)
            .into_iter()
            .cloned()
            .collect(),
        validating: store
            .list(g, "validatingwebhookconfigurations", None)
            .into_iter()
            .cloned()
            .collect(),
    }
}

fn rv_of(obj: &Value) -> Option<String> {
    Some(meta_str(obj, "resourceVersion").to_string()).filter(|s| !s.is_empty())
}

/// The object the write would store, pruned and validated against its schema (as kube-apiserver does
/// between decoding the request and calling the webhooks).
pub fn prepare(store: &mut Store, t: &mut Target, verb: &Verb) -> ApiResult<Prepared> {
    let mut p = prepare_verb(store, t, verb)?;
    if t.sub.as_deref() != Some("scale")
        && let Some(new) = p.new.as_mut()
    {
        p.warnings = conform(t, new, t.field_validation)?;
    }
    Ok(p)
}

/// Prunes the fields the version's schema does not know and validates the rest (custom resources), or
/// checks the types of a built-in kind serin writes. Returns the warnings for pruned fields.
pub fn conform(t: &Target, obj: &mut Value, fv: FieldValidation) -> ApiResult<Vec<String>> {
    let Some(schema) = t.rt.schema.clone() else {
        return builtin_types(&t.rt, obj).map(|()| Vec::new());
    };
    let unknown: Vec<String> = schema::prune(obj, &schema)
        .into_iter()
        .map(|f| format!("unknown field {f:?}"))
        .collect();
    if fv == FieldValidation::Strict && !unknown.is_empty() {
        return Err(ApiError::bad_request(format!(
            "{kind} in version {:?} cannot be handled as a {kind}: strict decoding error: {}",
            t.rt.version,
            unknown.join(", "),
            kind = t.rt.kind
        )));
    }
    let mut causes = Vec::new();
    schema::validate(obj, &schema, "", &mut causes);
    if !causes.is_empty() {
        let name = Some(meta_str(obj, "name")).filter(|n| !n.is_empty());
        return Err(ApiError::invalid_fields(
            &t.rt.kind,
            &t.rt.group,
            name.unwrap_or(&t.name),
            &causes,
        ));
    }
    Ok(if fv == FieldValidation::Warn {
        unknown
    } else {
        Vec::new()
    })
}

/// Built-in kinds have no CRD schema; an Ingress (which the nginx router writes) is decoded into its
/// Rust type, so a field of the wrong type is refused as kube-apiserver's decoder refuses it (400).
fn builtin_types(rt: &ResourceType, obj: &Value) -> ApiResult<()> {
    if rt.group == "networking.k8s.io" && rt.plural == "ingresses" {
        serde_json::from_value::<k8s_openapi::api::networking::v1::Ingress>(obj.clone()).map_err(
            |e| {
                ApiError::bad_request(format!(
                    "Ingress in version \"v1\" cannot be handled as a Ingress: {e}"
                ))
            },
        )?;
    }
    Ok(())
}

fn prepare_verb(store: &mut Store, t: &mut Target, verb: &Verb) -> ApiResult<Prepared> {
    let configs = webhook_configs(store, &t.rt);
    let key = key_of(&t.rt, &t.ns, &t.name);
    let old = store.get(&key).cloned();
    let prepared = |operation, key, old, new, precondition| Prepared {
        operation,
        key,
        old,
        new,
        precondition,
        configs: configs.clone(),
        warnings: Vec::new(),
    };
    match verb {
        Verb::Create(body) => {
            let new = prepare_create(store, t, body.clone())?;
            let key = key_of(&t.rt, &t.ns, &t.name);
            Ok(prepared("CREATE", key, None, Some(new), None))
        }
        Verb::Update(body) => {
            let old = old.ok_or_else(|| not_found(t))?;
            if !body.is_object() {
                return Err(ApiError::bad_request(
                    "the request body must be a JSON object",
                ));
            }
            let body_name = meta_str(body, "name");
            if !body_name.is_empty() && body_name != t.name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({body_name}) does not match the name on the URL ({})",
                    t.name
                )));
            }
            let precondition = rv_of(body);
            let new = if t.sub.as_deref() == Some("scale") {
                scale_update(&t.rt, &old, body)?
            } else {
                shape(&t.rt, Some(&old), body.clone(), t.sub.as_deref())
            };
            Ok(prepared("UPDATE", key, Some(old), Some(new), precondition))
        }
        Verb::Patch {
            kind,
            body,
            field_manager,
        } => {
            if *kind == PatchKind::Apply && field_manager.as_deref().unwrap_or("").is_empty() {
                return Err(ApiError::bad_request(
                    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                ));
            }
            let Some(old) = old else {
                if *kind == PatchKind::Apply && t.sub.is_none() {
                    let mut body = body.clone();
                    meta_mut(&mut body).insert("name".into(), json!(t.name));
                    let new = prepare_create(store, t, body)?;
                    return Ok(prepared("CREATE", key, None, Some(new), None));
                }
                return Err(not_found(t));
            };
            let new = if t.sub.as_deref() == Some("scale") {
                let mut scale = scale_of(&old);
                patch::apply(*kind, &mut scale, body)?;
                scale_update(&t.rt, &old, &scale)?
            } else {
                let mut patched = old.clone();
                patch::apply(*kind, &mut patched, body)?;
                if !patched.is_object() {
                    return Err(ApiError::bad_request(
                        "the patch turns the object into a non-object",
                    ));
                }
                patched
            };
            let precondition = rv_of(&new).filter(|rv| Some(rv) != rv_of(&old).as_ref());
            let new = if t.sub.as_deref() == Some("scale") {
                new
            } else {
                shape(&t.rt, Some(&old), new, t.sub.as_deref())
            };
            Ok(prepared("UPDATE", key, Some(old), Some(new), precondition))
        }
        Verb::Delete(options) => {
            let old = old.ok_or_else(|| not_found(t))?;
            let pre = options.as_ref().and_then(|o| o.get("preconditions"));
            if let Some(uid) = pre.and_then(|p| p.get("uid")).and_then(Value::as_str)
                && uid != meta_str(&old, "uid")
            {
                return Err(ApiError::new(
                    409,
                    "Conflict",
                    format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        meta_str(&old, "uid")
                    ),
                ));
            }
            let precondition = pre
                .and_then(|p| p.get("resourceVersion"))
                .and_then(Value::as_str)
                .map(str::to_string);
            Ok(prepared("DELETE", key, Some(old), None, precondition))
        }
    }
}

fn prepare_create(store: &mut Store, t: &mut Target, mut body: Value) -> ApiResult<Value> {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    let av = t.rt.api_version();
    if let Some(got) = body
        .get("apiVersion")
        .and_then(Value::as_str)
        .filter(|g| *g != av)
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({got}) does not match the expected API version ({av})"
        )));
    }
    if let Some(got) = body
        .get("kind")
        .and_then(Value::as_str)
        .filter(|g| *g != t.rt.kind)
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({got}) does not match the expected kind ({})",
            t.rt.kind
        )));
    }
    let body_ns = meta_str(&body, "namespace").to_string();
    if t.rt.namespaced {
        if t.ns.is_empty() {
            return Err(ApiError::bad_request(format!(
                "{} is namespaced: POST to .../namespaces/NS/{}",
                t.rt.kind, t.rt.plural
            )));
        }
        if !body_ns.is_empty() && body_ns != t.ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
    }
    let mut name = meta_str(&body, "name").to_string();
    if name.is_empty() {
        let prefix = meta_str(&body, "generateName").to_string();
        if prefix.is_empty() {
            return Err(ApiError::invalid(format!(
                "{} \"\" is invalid: metadata.name: Required value: name or generateName is required",
                t.rt.kind
            )));
        }
        name = format!("{prefix}{}", store.name_suffix());
    }
    if t.rt.group == "apiextensions.k8s.io" {
        let mut probe = body.clone();
        meta_mut(&mut probe).insert("name".into(), json!(name));
        Registry::default().register_crd(&probe).map_err(|e| {
            ApiError::invalid(format!(
                "CustomResourceDefinition.apiextensions.k8s.io \"{name}\" is invalid: {e}"
            ))
        })?;
    }
    let m = meta_mut(&mut body);
    m.insert("name".into(), json!(name));
    m.remove("resourceVersion");
    m.remove("uid");
    m.remove("deletionTimestamp");
    if t.rt.namespaced {
        m.insert("namespace".into(), json!(t.ns));
    } else {
        m.remove("namespace");
    }
    t.name = name;
    if store.get(&key_of(&t.rt, &t.ns, &t.name)).is_some() {
        return Err(ApiError::already_exists(&t.rt.qualified(), &t.name));
    }
    Ok(shape(&t.rt, None, body, None))
}

/// The `autoscaling/v1` Scale view of a workload.
pub fn scale_of(obj: &Value) -> Value {
    let selector = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let meta = obj.get("metadata").cloned().unwrap_or(json!({}));
    let pick = |f: &str| meta.get(f).cloned().unwrap_or(Value::Null);
    json!({
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {"name": pick("name"), "namespace": pick("namespace"), "uid": pick("uid"),
                     "resourceVersion": pick("resourceVersion"), "creationTimestamp": pick("creationTimestamp")},
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
        "status": {"replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)), "selector": selector},
    })
}

fn scale_update(rt: &ResourceType, old: &Value, scale: &Value) -> ApiResult<Value> {
    let replicas = scale
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .filter(|r| *r >= 0)
        .ok_or_else(|| ApiError::invalid(format!("Scale.autoscaling \"{}\" is invalid: spec.replicas: must be a non-negative integer", meta_str(old, "name"))))?;
    let mut new = old.clone();
    new["spec"]["replicas"] = json!(replicas);
    Ok(shape(rt, Some(old), new, None))
}

pub fn commit(
    store: &mut Store,
    t: &Target,
    p: Prepared,
    new: Option<Value>,
) -> ApiResult<Outcome> {
    let current = store.get(&p.key).cloned();
    let base_rv = p.old.as_ref().and_then(rv_of);
    if let Some(pre) = &p.precondition {
        let cur_rv = current.as_ref().and_then(rv_of);
        if cur_rv.as_ref() != Some(pre) {
            return Err(ApiError::conflict(&t.rt.qualified(), &t.name));
        }
    }
    match (&p.old, &current) {
        (None, Some(_)) if p.operation == "CREATE" => {
            return Err(ApiError::already_exists(&t.rt.qualified(), &t.name));
        }
        (None, Some(_)) | (Some(_), None) => return Ok(Outcome::Retry),
        (Some(_), Some(c)) if rv_of(c) != base_rv => return Ok(Outcome::Retry),
        _ => {}
    }
    if p.operation == "DELETE" {
        let obj = store.delete(&p.key).ok_or_else(|| not_found(t))?;
        return Ok(Outcome::Done(200, obj));
    }
    let mut new = new.ok_or_else(|| ApiError::internal("admission removed the object"))?;
    if t.sub.as_deref() != Some("scale") {
        // What mutating webhooks added is pruned and validated too (their warnings are not repeated).
        conform(t, &mut new, FieldValidation::Ignore)?;
    }
    // Webhooks may have touched server-owned fields; apply the rules again.
    new = match &p.old {
        Some(old) => shape(
            &t.rt,
            Some(old),
            new,
            if t.sub.as_deref() == Some("status") {
                Some("status")
            } else {
                None
            },
        ),
        None => shape(&t.rt, None, new, None),
    };
    let m = meta_mut(&mut new);
    match &p.old {
        None => {
            m.insert("uid".into(), json!(store.new_uid()));
            m.insert("creationTimestamp".into(), json!(now_rfc3339()));
            m.insert("generation".into(), json!(1));
        }
        Some(old) => {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let bump = spec_part(old) != spec_part(&new);
            meta_mut(&mut new).insert(
                "generation".into(),
                json!(if bump { generation + 1 } else { generation }),
            );
            if new.pointer("/metadata/deletionTimestamp").is_some()
                && new
                    .pointer("/metadata/finalizers")
                    .and_then(Value::as_array)
                    .is_none_or(|f| f.is_empty())
            {
                store
                    .objects
                    .insert(p.key.clone(), std::sync::Arc::new(new));
                let gone = store.remove(&p.key).ok_or_else(|| not_found(t))?;
                return Ok(Outcome::Done(200, gone));
            }
            if *old == new {
                // A no-op write keeps its resourceVersion and sends no event, as in kube-apiserver.
                return Ok(Outcome::Done(200, new));
            }
        }
    }
    let code = if p.old.is_none() { 201 } else { 200 };
    let stored = store.put(p.key.clone(), new);
    if t.sub.as_deref() != Some("status") {
        store.sync_workload(&p.key);
    }
    Ok(Outcome::Done(code, stored))
}
