//! Linkerd / SMI: a TrafficSplit `<svc>` (split.smi-spec.io/v1alpha2) with the apex Service as
//! root and the primary and canary Services as weighted backends.

use serde_json::{Value, json};
use serin_analysis::Routes;
use serin_api::Canary;

use super::backend_names;

pub fn spec(canary: &Canary, routes: Routes) -> Value {
    let (primary, canary_svc) = backend_names(canary);
    json!({
        "service": canary.spec.service_name(),
        "backends": [
            {"service": primary, "weight": routes.primary},
            {"service": canary_svc, "weight": routes.canary},
        ]
    })
}

pub fn routes(canary: &Canary, spec: &Value) -> Option<Routes> {
    let (primary, canary_svc) = backend_names(canary);
    let backends = spec.get("backends")?.as_array()?;
    let weight = |name: &str| {
        backends
            .iter()
            .find(|b| b["service"] == name)
            .and_then(|b| {
                b["weight"]
                    .as_u64()
                    .or_else(|| b["weight"].as_str()?.parse().ok())
            })
            .unwrap_or(0) as u32
    };
    Some(Routes {
        primary: weight(&primary),
        canary: weight(&canary_svc),
        mirror: false,
    })
}
