//! Traefik: a `TraefikService` named like the apex Service with `weighted.services` for the
//! primary and canary Services (the canary entry is left out at weight 0, as Flagger does).

use serde_json::{Value, json};
use serin_analysis::Routes;
use serin_api::Canary;

use super::backend_names;

pub fn spec(canary: &Canary, routes: Routes) -> Value {
    let (primary, canary_svc) = backend_names(canary);
    let port = canary.spec.service.port;
    let mut services = vec![json!({"name": primary, "port": port, "weight": routes.primary})];
    if routes.canary > 0 {
        services.push(json!({"name": canary_svc, "port": port, "weight": routes.canary}));
    }
    json!({ "weighted": { "services": services } })
}

pub fn routes(canary: &Canary, spec: &Value) -> Option<Routes> {
    let (primary, canary_svc) = backend_names(canary);
    let services = spec.pointer("/weighted/services")?.as_array()?;
    let weight = |name: &str| {
        services
            .iter()
            .find(|s| s["name"] == name)
            .and_then(|s| s["weight"].as_u64())
            .unwrap_or(0) as u32
    };
    Some(Routes {
        primary: weight(&primary),
        canary: weight(&canary_svc),
        mirror: false,
    })
}
