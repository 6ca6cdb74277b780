//! Server-side printing: `kubectl get` asks for `application/json;as=Table;v=v1;g=meta.k8s.io`.

use super::registry::{PrinterColumn, ResourceType};
use super::selector::json_path;
use serde_json::{Value, json};

pub fn wants_table(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table"))
}

fn col(name: &str, type_: &str, format: &str, json_path: &str, description: &str) -> PrinterColumn {
    PrinterColumn {
        name: name.into(),
        type_: type_.into(),
        format: format.into(),
        description: description.into(),
        priority: 0,
        json_path: json_path.into(),
    }
}

/// Columns: NAME, then the CRD's additionalPrinterColumns (or a few built-in defaults), then AGE unless declared.
fn columns(rt: &ResourceType) -> Vec<PrinterColumn> {
    let mut cols = vec![col(
        "Name",
        "string",
        "name",
        ".metadata.name",
        "Name must be unique within a namespace.",
    )];
    let extra: Vec<PrinterColumn> = if rt.crd.is_some() {
        rt.columns.clone()
    } else {
        match rt.plural.as_str() {
            "deployments" | "statefulsets" | "replicasets" => vec![
                col(
                    "Ready",
                    "string",
                    "",
                    "@ready",
                    "Number of ready replicas out of the desired ones.",
                ),
                col(
                    "Up-to-date",
                    "integer",
                    "",
                    ".status.updatedReplicas",
                    "Replicas updated to the current template.",
                ),
                col(
                    "Available",
                    "integer",
                    "",
                    ".status.availableReplicas",
                    "Available replicas.",
                ),
            ],
            "services" => vec![
                col("Type", "string", "", ".spec.type", ""),
                col("Cluster-IP", "string", "", ".spec.clusterIP", ""),
            ],
            "configmaps" => vec![col("Data", "integer", "", "@data", "")],
            "events" => vec![
                col("Reason", "string", "", ".reason", ""),
                col("Message", "string", "", "@message", ""),
            ],
            _ => vec![],
        }
    };
    let declares_age = extra
        .iter()
        .any(|c| c.json_path == ".metadata.creationTimestamp");
    cols.extend(extra);
    if !declares_age {
        cols.push(col(
            "Age",
            "date",
            "",
            ".metadata.creationTimestamp",
            "CreationTimestamp",
        ));
    }
    cols
}

/// kubectl's relative ages: 42s, 3m12s, 17m, 5h3m, 2d.
pub fn human_age(since: &str) -> String {
    let Ok(t) = since.parse::<jiff::Timestamp>() else {
        return "<unknown>".into();
    };
    let s = (jiff::Timestamp::now().as_second() - t.as_second()).max(0);
    match s {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 8 * 3600 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn cell(obj: &Value, c: &PrinterColumn) -> Value {
    let v = match c.json_path.as_str() {
        "@ready" => {
            let ready = obj
                .pointer("/status/readyReplicas")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let want = obj
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            return json!(format!("{ready}/{want}"));
        }
        "@data" => {
            return json!(
                obj.get("data")
                    .and_then(Value::as_object)
                    .map_or(0, |m| m.len())
            );
        }
        "@message" => obj.get("message").or_else(|| obj.get("note")).cloned(),
        p => json_path(obj, p).cloned(),
    };
    match (v, c.type_.as_str()) {
        (Some(Value::String(s)), "date") => json!(human_age(&s)),
        (Some(v), _) => v,
        (None, "integer") if c.name == "Up-to-date" || c.name == "Available" => json!(0),
        (None, _) => Value::Null,
    }
}

fn row(obj: &Value, cols: &[PrinterColumn], include_object: &str) -> Value {
    let cells: Vec<Value> = cols.iter().map(|c| cell(obj, c)).collect();
    let object = match include_object {
        "None" => Value::Null,
        "Object" => obj.clone(),
        _ => {
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata").cloned().unwrap_or(json!({}))})
        }
    };
    json!({"cells": cells, "object": object})
}

pub fn table(
    rt: &ResourceType,
    objs: &[Value],
    resource_version: &str,
    cont: Option<&str>,
    include_object: &str,
) -> Value {
    let cols = columns(rt);
    let defs: Vec<Value> = cols
        .iter()
        .map(|c| json!({"name": c.name, "type": c.type_, "format": c.format, "description": c.description, "priority": c.priority}))
        .collect();
    let mut meta = json!({"resourceVersion": resource_version});
    if let Some(c) = cont {
        meta["continue"] = json!(c);
    }
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
        "columnDefinitions": defs,
        "rows": objs.iter().map(|o| row(o, &cols, include_object)).collect::<Vec<_>>(),
    })
}
