//! kube-apiserver stores one Event and serves it as both core/v1 and events.k8s.io/v1. Here they are stored
//! apart; core/v1 lists (what `kubectl describe` reads) also show the events.k8s.io ones, converted.

use serde_json::{Value, json};

pub fn to_core(e: &Value) -> Value {
    let f = |k: &str| e.get(k).cloned().unwrap_or(Value::Null);
    let controller = f("reportingController");
    let count = e
        .pointer("/series/count")
        .cloned()
        .or_else(|| e.get("deprecatedCount").cloned())
        .unwrap_or(json!(1));
    let last = e
        .pointer("/series/lastObservedTime")
        .cloned()
        .or_else(|| e.get("deprecatedLastTimestamp").cloned())
        .unwrap_or(Value::Null);
    let mut core = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": f("metadata"),
        "involvedObject": f("regarding"),
        "related": f("related"),
        "reason": f("reason"),
        "message": f("note"),
        "type": f("type"),
        "action": f("action"),
        "eventTime": f("eventTime"),
        "series": f("series"),
        "count": count,
        "firstTimestamp": f("deprecatedFirstTimestamp"),
        "lastTimestamp": last,
        "source": e.get("deprecatedSource").cloned().unwrap_or_else(|| json!({"component": controller})),
        "reportingComponent": controller,
        "reportingInstance": f("reportingInstance"),
    });
    if let Some(m) = core.as_object_mut() {
        m.retain(|_, v| !v.is_null());
    }
    core
}
