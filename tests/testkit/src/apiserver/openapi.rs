//! Just enough OpenAPI v3 for kubectl: for each group/version, one PATCH operation per kind that declares the
//! `fieldValidation` query parameter. kubectl then leaves validation to the server (which does not validate
//! schemas) instead of downloading schemas; no component schemas are served.

use super::registry::Registry;
use serde_json::{Value, json};
use std::hash::{DefaultHasher, Hash, Hasher};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

pub fn gv_doc(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let mut paths = serde_json::Map::new();
    for t in reg
        .all()
        .filter(|t| t.group == group && t.version == version)
    {
        let prefix = format!("/{}", gv_path(group, version));
        let path = if t.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", t.plural)
        } else {
            format!("{prefix}/{}/{{name}}", t.plural)
        };
        paths.insert(
            path,
            json!({
                "patch": {
                    "parameters": [
                        {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
                        {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
                    ],
                    "operationId": format!("patch{}", t.kind),
                    "x-kubernetes-action": "patch",
                    "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": t.kind},
                    "responses": {"200": {"description": "OK"}},
                },
            }),
        );
    }
    if paths.is_empty() {
        return None;
    }
    Some(
        json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.33.0"}, "paths": paths, "components": {}}),
    )
}

pub fn root(reg: &Registry) -> Value {
    let mut gvs: Vec<(String, String)> = reg
        .all()
        .map(|t| (t.group.clone(), t.version.clone()))
        .collect();
    gvs.dedup();
    let mut paths = serde_json::Map::new();
    for (g, v) in gvs {
        let mut h = DefaultHasher::new();
        gv_doc(reg, &g, &v).map(|d| d.to_string()).hash(&mut h);
        let p = gv_path(&g, &v);
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={:016X}", h.finish())}),
        );
    }
    json!({"paths": paths})
}
