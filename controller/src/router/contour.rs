//! Contour: an HTTPProxy `<svc>` (projectcontour.io/v1) whose route sends traffic to the primary
//! and canary Services by weight; A/B puts the analysis' header matches in a first route, each
//! header as an `exact` or `regex` condition.

use serde_json::{Value, json};
use serin_analysis::Routes;
use serin_api::Canary;
use serin_api::canary::{Strategy, StringMatch};

use super::{backend_names, regex_escape};

/// A header condition: exact as Contour's `exact`, anything else as its `regex` (Contour 1.24+).
/// Validation refuses matches with fields other than headers, so no condition is dropped here.
fn header_condition(name: &str, sm: &StringMatch) -> Option<Value> {
    if let Some(v) = &sm.exact {
        return Some(json!({"header": {"name": name, "exact": v}}));
    }
    let regex = sm
        .regex
        .clone()
        .or_else(|| sm.prefix.as_ref().map(|p| format!("{}.*", regex_escape(p))))
        .or_else(|| sm.suffix.as_ref().map(|p| format!(".*{}", regex_escape(p))))?;
    Some(json!({"header": {"name": name, "regex": regex}}))
}

fn services(canary: &Canary, p: u32, c: u32) -> Value {
    let (primary, canary_svc) = backend_names(canary);
    let port = canary.spec.service.port;
    json!([
        {"name": primary, "port": port, "weight": p},
        {"name": canary_svc, "port": port, "weight": c},
    ])
}

pub fn spec(canary: &Canary, routes: Routes) -> Value {
    let prefix = json!([{"prefix": "/"}]);
    let mut out = Vec::new();
    let ab = canary
        .spec
        .analysis()
        .and_then(|a| a.match_.as_ref())
        .filter(|_| canary.spec.strategy() == Strategy::AbTesting);
    if let Some(matches) = ab {
        for m in matches {
            let conditions: Vec<Value> = m
                .headers
                .iter()
                .flatten()
                .filter_map(|(name, sm)| header_condition(name, sm))
                .chain(std::iter::once(json!({"prefix": "/"})))
                .collect();
            out.push(json!({"conditions": conditions, "services": services(canary, routes.primary, routes.canary)}));
        }
        out.push(json!({"conditions": prefix, "services": services(canary, 100, 0)}));
    } else {
        out.push(json!({"conditions": prefix, "services": services(canary, routes.primary, routes.canary)}));
    }
    let mut spec = json!({"routes": out});
    if let Some(t) = &canary.spec.service.timeout {
        for r in spec["routes"].as_array_mut().into_iter().flatten() {
            r["timeoutPolicy"] = json!({"response": t});
        }
    }
    spec
}

pub fn routes(canary: &Canary, spec: &Value) -> Option<Routes> {
    let (primary, canary_svc) = backend_names(canary);
    let services = spec.pointer("/routes/0/services")?.as_array()?;
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
