//! Istio: a VirtualService `<svc>` routing to the primary and canary hosts by weight (mirroring
//! and A/B match routes included), with DestinationRules `<svc>-primary` and `<svc>-canary`
//! carrying `service.trafficPolicy`.

use serde_json::{Value, json};
use serin_analysis::Routes;
use serin_api::Canary;
use serin_api::canary::{HttpMatchRequest, Strategy};

use super::{backend_names, regex_escape};

fn destinations(canary: &Canary, p: u32, c: u32) -> Value {
    let (primary, canary_svc) = backend_names(canary);
    json!([
        {"destination": {"host": primary}, "weight": p},
        {"destination": {"host": canary_svc}, "weight": c},
    ])
}

/// The matches as Istio's `HTTPMatchRequest`s. Istio's StringMatch has `exact`, `prefix` and `regex`
/// only: its CRD prunes a `suffix`, which leaves `{}`, a condition every value meets. So a suffix is
/// written as the regex it means (Istio's regexes match the whole value).
fn istio_matches(matches: &[HttpMatchRequest]) -> Value {
    let mut v = json!(matches);
    for m in v.as_array_mut().into_iter().flatten() {
        for field in ["uri", "scheme", "method", "authority"] {
            if let Some(sm) = m.get_mut(field) {
                suffix_as_regex(sm);
            }
        }
        for map in ["headers", "queryParams", "withoutHeaders"] {
            let entries = m.get_mut(map).and_then(Value::as_object_mut);
            entries
                .into_iter()
                .flatten()
                .for_each(|(_, sm)| suffix_as_regex(sm));
        }
    }
    v
}

fn suffix_as_regex(sm: &mut Value) {
    let suffix = sm.as_object_mut().and_then(|o| o.remove("suffix"));
    if let Some(suffix) = suffix.as_ref().and_then(Value::as_str) {
        sm["regex"] = json!(format!(".*{}", regex_escape(suffix)));
    }
}

pub fn spec(canary: &Canary, routes: Routes) -> Value {
    let s = &canary.spec.service;
    let apex = canary.spec.service_name().to_string();
    let mut hosts: Vec<String> = s.hosts.clone().unwrap_or_default();
    if !hosts.iter().any(|h| h == &apex || h == "*") {
        hosts.push(apex);
    }
    let gateways = s
        .gateways
        .clone()
        .filter(|g| !g.is_empty())
        .unwrap_or_else(|| vec!["mesh".into()]);
    let base_match = s.match_.clone().unwrap_or_default();
    let mut default_route = json!({"route": destinations(canary, routes.primary, routes.canary)});
    if !base_match.is_empty() {
        default_route["match"] = istio_matches(&base_match);
    }
    if let Some(t) = &s.timeout {
        default_route["timeout"] = json!(t);
    }
    if let Some(r) = &s.retries {
        default_route["retries"] = json!(r);
    }
    if routes.mirror {
        let (_, canary_svc) = backend_names(canary);
        default_route["mirror"] = json!({"host": canary_svc});
        if let Some(w) = canary.spec.analysis().and_then(|a| a.mirror_weight) {
            default_route["mirrorPercentage"] = json!({"value": w});
        }
    }
    let mut http = Vec::new();
    let ab = canary
        .spec
        .analysis()
        .and_then(|a| a.match_.clone())
        .filter(|_| canary.spec.strategy() == Strategy::AbTesting);
    if let Some(matches) = ab {
        let mut r = json!({"match": istio_matches(&matches), "route": destinations(canary, routes.primary, routes.canary)});
        if let Some(t) = &s.timeout {
            r["timeout"] = json!(t);
        }
        http.push(r);
        default_route["route"] = destinations(canary, 100, 0);
    }
    http.push(default_route);
    json!({"hosts": hosts, "gateways": gateways, "http": http})
}

pub fn routes(canary: &Canary, spec: &Value) -> Option<Routes> {
    let (primary, canary_svc) = backend_names(canary);
    let first = spec.pointer("/http/0")?;
    let route = first.get("route")?.as_array()?;
    let weight = |host: &str| {
        route
            .iter()
            .find(|d| d["destination"]["host"] == host)
            .and_then(|d| d["weight"].as_u64())
            .unwrap_or(0) as u32
    };
    Some(Routes {
        primary: weight(&primary),
        canary: weight(&canary_svc),
        mirror: first.get("mirror").is_some(),
    })
}

/// The DestinationRules, created once next to the VirtualService.
pub fn destination_rules(canary: &Canary) -> Vec<(String, Value)> {
    let (primary, canary_svc) = backend_names(canary);
    let policy = canary.spec.service.traffic_policy.clone();
    [primary, canary_svc]
        .into_iter()
        .map(|host| {
            let mut spec = json!({"host": host});
            if let Some(p) = &policy {
                spec["trafficPolicy"] = json!(p);
            }
            (host, spec)
        })
        .collect()
}
