//! NGINX ingress: the user's Ingress (`ingressRef`) is left untouched; serin writes
//! `<ingress>-canary`, a copy whose backends point at the canary Service, with NGINX's canary
//! annotations: `canary-weight`, or for A/B `canary-by-header[-value|-pattern]` /
//! `canary-by-cookie`. At weight 0 the copy keeps `canary: "true"` and `canary-weight: "0"`
//! so NGINX's admission webhook still accepts it (Flagger #787).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use serin_analysis::Routes;
use serin_api::Canary;
use serin_api::canary::{Strategy, StringMatch};

use super::{backend_names, regex_escape};

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
        // Validation allows at most one header and one cookie over all matches (NGINX has one
        // annotation each), so every condition of the Canary is written.
        let headers = canary
            .spec
            .analysis()
            .and_then(|a| a.match_.as_ref())
            .into_iter()
            .flatten()
            .flat_map(|m| m.headers.iter().flatten());
        for (name, sm) in headers {
            if name.eq_ignore_ascii_case("cookie") {
                out.insert(key("canary-by-cookie"), Some(cookie_name(sm)));
                continue;
            }
            out.insert(key("canary-by-header"), Some(name.clone()));
            if let Some(v) = &sm.exact {
                out.insert(key("canary-by-header-value"), Some(v.clone()));
            } else if let Some(pattern) = header_pattern(sm) {
                out.insert(key("canary-by-header-pattern"), Some(pattern));
            }
        }
    } else {
        out.insert(key("canary-weight"), Some(routes.canary.to_string()));
    }
    out
}

/// NGINX routes a request whose cookie `<name>` is `always`; users write the cookie's name
/// (`exact: canary`) or Flagger's regex over the Cookie header (`^(.*?;)?(canary=always)(;.*)?$`).
fn cookie_name(sm: &StringMatch) -> String {
    let written = sm
        .exact
        .clone()
        .or_else(|| sm.regex.clone())
        .unwrap_or_default();
    written
        .split('=')
        .next()
        .unwrap_or("canary")
        .trim_matches(|c: char| !c.is_alphanumeric() && c != '_' && c != '-')
        .to_string()
}

/// A header match other than exact, as NGINX's `canary-by-header-pattern` regex.
fn header_pattern(sm: &StringMatch) -> Option<String> {
    sm.regex
        .clone()
        .or_else(|| sm.prefix.as_ref().map(|p| format!("^{}", regex_escape(p))))
        .or_else(|| sm.suffix.as_ref().map(|p| format!("{}$", regex_escape(p))))
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
