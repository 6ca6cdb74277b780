//! Gateway API: an HTTPRoute named like the apex Service, whose rule sends traffic to the
//! primary and canary Services by `backendRefs[].weight`. For A/B testing the first rule carries
//! `analysis.match` and the weights; a second rule keeps everything else on the primary.
//! Mirroring (`analysis.mirror`) is a `RequestMirror` filter on the rule that carries the
//! traffic, copying it (or `mirrorWeight` percent of it) to the canary Service.

use serde_json::{Value, json};
use serin_analysis::Routes;
use serin_api::Canary;
use serin_api::canary::{HttpMatchRequest, Strategy, StringMatch};

use super::{backend_names, regex_escape};

fn backends(canary: &Canary, primary_w: u32, canary_w: u32) -> Value {
    let (primary, canary_svc) = backend_names(canary);
    let port = canary.spec.service.port;
    json!([
        {"name": primary, "port": port, "weight": primary_w},
        {"name": canary_svc, "port": port, "weight": canary_w},
    ])
}

fn string_match(m: &StringMatch) -> Option<(&'static str, String)> {
    if let Some(v) = &m.exact {
        Some(("Exact", v.clone()))
    } else if let Some(v) = &m.regex {
        Some(("RegularExpression", v.clone()))
    } else if let Some(v) = &m.prefix {
        Some(("RegularExpression", format!("^{}.*", regex_escape(v))))
    } else {
        m.suffix
            .as_ref()
            .map(|v| ("RegularExpression", format!(".*{}$", regex_escape(v))))
    }
}

fn http_match(m: &HttpMatchRequest) -> Value {
    let mut out = serde_json::Map::new();
    if let Some(headers) = &m.headers {
        let hs: Vec<Value> = headers
            .iter()
            .filter_map(|(name, sm)| {
                string_match(sm).map(|(t, v)| json!({"name": name, "type": t, "value": v}))
            })
            .collect();
        out.insert("headers".into(), Value::Array(hs));
    }
    if let Some(q) = &m.query_params {
        let qs: Vec<Value> = q
            .iter()
            .filter_map(|(name, sm)| {
                string_match(sm).map(|(t, v)| json!({"name": name, "type": t, "value": v}))
            })
            .collect();
        out.insert("queryParams".into(), Value::Array(qs));
    }
    if let Some(method) = m.method.as_ref().and_then(|sm| sm.exact.as_ref()) {
        out.insert("method".into(), json!(method));
    }
    let path = match &m.uri {
        Some(StringMatch {
            prefix: Some(p), ..
        }) => json!({"type": "PathPrefix", "value": p}),
        Some(StringMatch { exact: Some(p), .. }) => json!({"type": "Exact", "value": p}),
        Some(other) => match string_match(other) {
            Some((_, v)) => json!({"type": "RegularExpression", "value": v}),
            None => json!({"type": "PathPrefix", "value": "/"}),
        },
        None => json!({"type": "PathPrefix", "value": "/"}),
    };
    out.insert("path".into(), path);
    Value::Object(out)
}

/// The `RequestMirror` filter that copies the rule's traffic to the canary Service.
fn mirror_filter(canary: &Canary) -> Value {
    let (_, canary_svc) = backend_names(canary);
    let mut mirror = json!({"backendRef": {"name": canary_svc, "port": canary.spec.service.port}});
    if let Some(w) = canary.spec.analysis().and_then(|a| a.mirror_weight) {
        mirror["percent"] = json!(w.clamp(0, 100));
    }
    json!([{"type": "RequestMirror", "requestMirror": mirror}])
}

pub fn spec(canary: &Canary, routes: Routes) -> Value {
    let s = &canary.spec.service;
    let parent_refs: Vec<Value> = s
        .gateway_refs
        .iter()
        .flatten()
        .map(|g| serde_json::to_value(g).unwrap_or_default())
        .collect();
    let default_match = json!([{"path": {"type": "PathPrefix", "value": "/"}}]);
    let mut rules = Vec::new();
    let ab_matches = canary
        .spec
        .analysis()
        .and_then(|a| a.match_.as_ref())
        .filter(|_| canary.spec.strategy() == Strategy::AbTesting);
    if let Some(matches) = ab_matches {
        let ms: Vec<Value> = matches.iter().map(http_match).collect();
        rules.push(
            json!({"matches": ms, "backendRefs": backends(canary, routes.primary, routes.canary)}),
        );
        rules.push(json!({"matches": default_match, "backendRefs": backends(canary, 100, 0)}));
    } else {
        rules.push(json!({"matches": default_match, "backendRefs": backends(canary, routes.primary, routes.canary)}));
    }
    if routes.mirror {
        rules[0]["filters"] = mirror_filter(canary);
    }
    let mut spec = json!({ "parentRefs": parent_refs, "rules": rules });
    if let Some(hosts) = &s.hosts {
        spec["hostnames"] = json!(hosts);
    }
    spec
}

pub fn routes(canary: &Canary, spec: &Value) -> Option<Routes> {
    let (primary, canary_svc) = backend_names(canary);
    let rule = spec.pointer("/rules/0")?;
    let refs = rule.get("backendRefs")?.as_array()?;
    let mirror = rule
        .get("filters")
        .and_then(Value::as_array)
        .is_some_and(|fs| fs.iter().any(|f| f["type"] == "RequestMirror"));
    let weight = |name: &str| {
        refs.iter()
            .find(|b| b["name"] == name)
            .and_then(|b| b["weight"].as_u64())
            .unwrap_or(0) as u32
    };
    Some(Routes {
        primary: weight(&primary),
        canary: weight(&canary_svc),
        mirror,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canary(extra: Value) -> Canary {
        let mut v = json!({
            "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
            "metadata": {"name": "web", "namespace": "prod"},
            "spec": {"provider": "gatewayapi:v1", "targetRef": {"kind": "Deployment", "name": "web"},
                     "service": {"port": 80, "gatewayRefs": [{"name": "gw", "namespace": "infra"}], "hosts": ["web.example.com"]},
                     "analysis": {"interval": "1m", "threshold": 2, "stepWeight": 10}}
        });
        if let Some(a) = extra.as_object() {
            for (k, val) in a {
                v["spec"]["analysis"][k] = val.clone();
            }
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn weights_round_trip() {
        let c = canary(json!({}));
        let s = spec(
            &c,
            Routes {
                primary: 70,
                canary: 30,
                mirror: false,
            },
        );
        assert_eq!(s["parentRefs"][0]["name"], "gw");
        assert_eq!(s["hostnames"][0], "web.example.com");
        assert_eq!(s["rules"][0]["backendRefs"][1]["name"], "web-canary");
        assert_eq!(
            routes(&c, &s),
            Some(Routes {
                primary: 70,
                canary: 30,
                mirror: false
            })
        );
    }

    #[test]
    fn ab_puts_matches_first_and_keeps_default_on_primary() {
        let c = canary(json!({"stepWeight": null, "iterations": 5,
            "match": [{"headers": {"x-canary": {"exact": "insider"}}}, {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}}]}));
        let s = spec(
            &c,
            Routes {
                primary: 0,
                canary: 100,
                mirror: false,
            },
        );
        assert_eq!(
            s["rules"][0]["matches"][0]["headers"][0],
            json!({"name": "x-canary", "type": "Exact", "value": "insider"})
        );
        assert_eq!(
            s["rules"][0]["matches"][1]["headers"][0]["type"],
            "RegularExpression"
        );
        assert_eq!(s["rules"][0]["backendRefs"][1]["weight"], 100);
        assert_eq!(s["rules"][1]["backendRefs"][0]["weight"], 100);
        assert_eq!(s["rules"][1]["backendRefs"][1]["weight"], 0);
        assert_eq!(routes(&c, &s).unwrap().canary, 100);
    }

    #[test]
    fn mirroring_is_a_request_mirror_filter_read_back() {
        let c = canary(json!({"mirror": true, "mirrorWeight": 50}));
        let mirrored = Routes {
            primary: 100,
            canary: 0,
            mirror: true,
        };
        let s = spec(&c, mirrored);
        assert_eq!(
            s["rules"][0]["filters"][0],
            json!({"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "web-canary", "port": 80}, "percent": 50}})
        );
        assert_eq!(routes(&c, &s), Some(mirrored));
        let plain = spec(
            &c,
            Routes {
                mirror: false,
                ..mirrored
            },
        );
        assert!(plain["rules"][0].get("filters").is_none());
    }

    #[test]
    fn uri_regex_and_method_keep_their_condition() {
        let c = canary(json!({"stepWeight": null, "iterations": 5,
            "match": [{"uri": {"regex": "/api/v[0-9]+"}, "method": {"exact": "POST"}}]}));
        let s = spec(
            &c,
            Routes {
                primary: 0,
                canary: 100,
                mirror: false,
            },
        );
        assert_eq!(
            s["rules"][0]["matches"][0],
            json!({"method": "POST", "path": {"type": "RegularExpression", "value": "/api/v[0-9]+"}})
        );
    }
}
