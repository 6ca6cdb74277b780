//! NGINX ingress: the user's Ingress (`ingressRef`) is left untouched; serin writes
//! `<ingress>-canary`, a copy whose backends point at the canary Service, with NGINX's canary
//! annotations: `canary-weight`, or for A/B `canary-by-header[-value|-pattern]` /
//! `canary-by-cookie`. At weight 0 the copy keeps `canary: "true"` and `canary-weight: "0"`
//! so NGINX's admission webhook still accepts it (Flagger #787).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use serin_analysis::Routes;
use serin_api::Canary;
use serin_api::canary::Strategy;

use super::backend_names;

pub const PREFIX: &str = "nginx.ingress.kubernetes.io";

/// The canary Ingress's name.
pub fn canary_ingress_name(canary: &Canary) -> Option<String> {
    canary
        .spec
        .ingress_ref
        .as_ref()
        .map(|r| format!("{}-canary", r.name))
}

/// The canary Ingress's spec: the user's, with every backend Service `<svc>` or
/// `<svc>-primary` replaced by `<svc>-canary`.
pub fn spec(canary: &Canary, user_spec: &Value) -> Value {
    let apex = canary.spec.service_name().to_string();
    let (primary, canary_svc) = backend_names(canary);
    let mut spec = user_spec.clone();
    rewrite_backends(&mut spec, &[apex.as_str(), primary.as_str()], &canary_svc);
    spec
}

fn rewrite_backends(v: &mut Value, from: &[&str], to: &str) {
    match v {
        Value::Object(m) => {
            if let Some(Value::Object(service)) = m.get_mut("service")
                && service
                    .get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| from.contains(&n))
            {
                service.insert("name".into(), json!(to));
            }
            for (_, child) in m.iter_mut() {
                rewrite_backends(child, from, to);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| rewrite_backends(i, from, to)),
        _ => {}
    }
}

/// The canary annotations for these routes.
pub fn annotations(canary: &Canary, routes: Routes) -> BTreeMap<String, Option<String>> {
    let key = |k: &str| format!("{PREFIX}/{k}");
    let mut out: BTreeMap<String, Option<String>> = BTreeMap::new();
    for k in [
        "canary-by-header",
        "canary-by-header-value",
        "canary-by-header-pattern",
        "canary-by-cookie",
    ] {
        out.insert(key(k), None);
    }
    out.insert(key("canary"), Some("true".into()));
    let ab = canary.spec.strategy() == Strategy::AbTesting && routes.canary > 0;
    if ab {
        out.insert(key("canary-weight"), Some("0".into()));
        let first = canary
            .spec
            .analysis()
            .and_then(|a| a.match_.as_ref())
            .and_then(|m| m.first());
        if let Some(m) = first
            && let Some((name, sm)) = m.headers.iter().flatten().next()
        {
            {
                if name.eq_ignore_ascii_case("cookie") {
                    // NGINX routes a cookie whose value is "always"; the cookie name is what users match on.
                    let cookie = sm
                        .exact
                        .clone()
                        .or_else(|| sm.regex.clone())
                        .unwrap_or_default();
                    let name = cookie
                        .split('=')
                        .next()
                        .unwrap_or("canary")
                        .trim_matches(|c: char| !c.is_alphanumeric() && c != '_' && c != '-');
                    out.insert(key("canary-by-cookie"), Some(name.to_string()));
                } else {
                    out.insert(key("canary-by-header"), Some(name.clone()));
                    if let Some(v) = &sm.exact {
                        out.insert(key("canary-by-header-value"), Some(v.clone()));
                    } else if let Some(v) = &sm.regex {
                        out.insert(key("canary-by-header-pattern"), Some(v.clone()));
                    }
                }
            }
        }
    } else {
        out.insert(key("canary-weight"), Some(routes.canary.to_string()));
    }
    out
}

pub fn routes(canary: &Canary, annotations: &BTreeMap<String, String>) -> Routes {
    let get = |k: &str| annotations.get(&format!("{PREFIX}/{k}"));
    let by_match = get("canary-by-header").is_some() || get("canary-by-cookie").is_some();
    let weight = if by_match && canary.spec.strategy() == Strategy::AbTesting {
        100
    } else {
        get("canary-weight")
            .and_then(|w| w.parse::<u32>().ok())
            .unwrap_or(0)
            .min(100)
    };
    Routes {
        primary: 100 - weight,
        canary: weight,
        mirror: false,
    }
}
