//! Traefik: a `TraefikService` named like the apex Service with `weighted.services` for the
//! primary and canary Services (the canary entry is left out at weight 0, as Flagger does).
//! Mirroring (`analysis.mirror`) makes it a `mirroring` service: the primary answers and the
//! canary gets a copy of `mirrorWeight` percent (all by default) of the requests.

use serde_json::{Value, json};
use serin_analysis::Routes;
use serin_api::Canary;

use super::backend_names;

pub fn spec(canary: &Canary, routes: Routes) -> Value {
    let (primary, canary_svc) = backend_names(canary);
    let port = canary.spec.service.port;
    if routes.mirror {
        let percent = canary
            .spec
            .analysis()
            .and_then(|a| a.mirror_weight)
            .unwrap_or(100)
            .clamp(0, 100);
        // `weighted: null` removes the other kind when this is applied as a merge patch.
        return json!({
            "weighted": null,
            "mirroring": {
                "name": primary, "port": port,
                "mirrors": [{"name": canary_svc, "port": port, "percent": percent}],
            },
        });
    }
    let mut services = vec![json!({"name": primary, "port": port, "weight": routes.primary})];
    if routes.canary > 0 {
        services.push(json!({"name": canary_svc, "port": port, "weight": routes.canary}));
    }
    json!({ "mirroring": null, "weighted": { "services": services } })
}

pub fn routes(canary: &Canary, spec: &Value) -> Option<Routes> {
    let (primary, canary_svc) = backend_names(canary);
    if spec.get("mirroring").is_some_and(Value::is_object) {
        return Some(Routes {
            primary: 100,
            canary: 0,
            mirror: true,
        });
    }
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
