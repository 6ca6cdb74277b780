//! Each router on the in-memory API server: the object it writes at each weight, the weights read
//! back, and the provider-specific rules (NGINX's weight-0 rule and header A/B, Istio's
//! DestinationRules and mirroring, GAMMA's Service parentRef).

mod support;

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use serde_json::{Value, json};
use serin_analysis::Routes;
use serin_api::Canary;
use serin_api::provider::{SmiVersion, TrafficProvider};
use serin_controller::router::Router;
use serin_testkit::apiserver::ApiServer;

const NS: &str = "prod";

fn crd(group: &str, version: &str, kind: &str, plural: &str) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}")},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"kind": kind, "plural": plural, "singular": kind.to_lowercase(), "listKind": format!("{kind}List")},
                 "versions": [{"name": version, "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    })
}

fn server() -> ApiServer {
    let api = ApiServer::default();
    for c in [
        crd("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes"),
        crd(
            "traefik.io",
            "v1alpha1",
            "TraefikService",
            "traefikservices",
        ),
        crd(
            "networking.istio.io",
            "v1",
            "VirtualService",
            "virtualservices",
        ),
        crd(
            "networking.istio.io",
            "v1",
            "DestinationRule",
            "destinationrules",
        ),
        crd(
            "split.smi-spec.io",
            "v1alpha2",
            "TrafficSplit",
            "trafficsplits",
        ),
        crd("projectcontour.io", "v1", "HTTPProxy", "httpproxies"),
    ] {
        api.seed(c).unwrap();
    }
    api.seed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}))
        .unwrap();
    api
}

fn canary(provider: &str, extra: Value) -> Canary {
    let mut v = json!({
        "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
        "metadata": {"name": "web", "namespace": NS, "uid": "c-1"},
        "spec": {"provider": provider, "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "ingressRef": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "web"},
                 "service": {"port": 80, "gatewayRefs": [{"name": "web", "kind": "Service", "group": ""}]},
                 "analysis": {"interval": "1m", "threshold": 2, "stepWeight": 10, "maxWeight": 50}}
    });
    merge(&mut v["spec"], &extra);
    serde_json::from_value(v).unwrap()
}

fn merge(a: &mut Value, b: &Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                if v.is_null() {
                    a.remove(k);
                } else {
                    merge(a.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (a, b) => *a = b.clone(),
    }
}

fn w(primary: u32, canary: u32) -> Routes {
    Routes {
        primary,
        canary,
        mirror: false,
    }
}

fn stored(api: &ApiServer, api_version: &str, kind: &str, name: &str) -> Value {
    api.object(api_version, kind, NS, name)
        .unwrap_or_else(|| panic!("{kind} {name} not written"))
}

async fn step_through(api: &ApiServer, router: Router, c: &Canary, check: impl Fn(u32, &Value)) {
    let client = api.client();
    for canary_weight in [0, 10, 50, 0] {
        router
            .set_routes(&client, c, w(100 - canary_weight, canary_weight))
            .await
            .unwrap();
        let read = router.get_routes(&client, c).await.unwrap();
        assert_eq!(
            read,
            Some(w(100 - canary_weight, canary_weight)),
            "{router:?} at {canary_weight}"
        );
        check(canary_weight, &Value::Null);
    }
}

#[tokio::test]
async fn gateway_api_gamma_uses_the_service_parent() {
    let api = server();
    let c = canary("gatewayapi:v1beta1", json!({}));
    step_through(
        &api,
        Router::GatewayApi { v1beta1: false },
        &c,
        |weight, _| {
            let route = stored(&api, "gateway.networking.k8s.io/v1", "HTTPRoute", "web");
            assert_eq!(route["spec"]["parentRefs"][0]["kind"], "Service");
            assert_eq!(
                route["spec"]["rules"][0]["backendRefs"][1]["weight"],
                weight
            );
            assert_eq!(route["metadata"]["ownerReferences"][0]["uid"], "c-1");
        },
    )
    .await;
}

#[tokio::test]
async fn traefik_leaves_the_canary_out_at_zero() {
    let api = server();
    let c = canary("traefik", json!({}));
    step_through(&api, Router::Traefik, &c, |weight, _| {
        let ts = stored(&api, "traefik.io/v1alpha1", "TraefikService", "web");
        let services = ts["spec"]["weighted"]["services"].as_array().unwrap();
        assert_eq!(services.len(), if weight == 0 { 1 } else { 2 });
        assert_eq!(services[0]["name"], "web-primary");
        assert_eq!(services[0]["weight"], 100 - weight);
    })
    .await;
}

#[tokio::test]
async fn istio_virtual_service_destination_rules_and_mirror() {
    let api = server();
    let c = canary(
        "istio",
        json!({"service": {"port": 80, "hosts": ["web.example.com"], "gateways": ["public-gw"],
        "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}}),
    );
    step_through(&api, Router::Istio, &c, |weight, _| {
        let vs = stored(&api, "networking.istio.io/v1", "VirtualService", "web");
        assert_eq!(vs["spec"]["hosts"], json!(["web.example.com", "web"]));
        assert_eq!(vs["spec"]["gateways"], json!(["public-gw"]));
        assert_eq!(
            vs["spec"]["http"][0]["route"][1]["destination"]["host"],
            "web-canary"
        );
        assert_eq!(vs["spec"]["http"][0]["route"][1]["weight"], weight);
    })
    .await;
    for dr in ["web-primary", "web-canary"] {
        let obj = stored(&api, "networking.istio.io/v1", "DestinationRule", dr);
        assert_eq!(obj["spec"]["host"], dr);
        assert_eq!(obj["spec"]["trafficPolicy"]["tls"]["mode"], "ISTIO_MUTUAL");
    }
    let client = api.client();
    let mirrored = Routes {
        primary: 100,
        canary: 0,
        mirror: true,
    };
    Router::Istio
        .set_routes(&client, &c, mirrored)
        .await
        .unwrap();
    let vs = stored(&api, "networking.istio.io/v1", "VirtualService", "web");
    assert_eq!(vs["spec"]["http"][0]["mirror"]["host"], "web-canary");
    assert_eq!(
        Router::Istio.get_routes(&client, &c).await.unwrap(),
        Some(mirrored)
    );
}

#[tokio::test]
async fn istio_ab_routes_matches_to_the_canary_only() {
    let api = server();
    let c = canary(
        "istio",
        json!({"analysis": {"stepWeight": null, "maxWeight": null, "iterations": 3,
        "match": [{"headers": {"x-canary": {"exact": "insider"}}}]}}),
    );
    Router::Istio
        .set_routes(&api.client(), &c, w(0, 100))
        .await
        .unwrap();
    let vs = stored(&api, "networking.istio.io/v1", "VirtualService", "web");
    assert_eq!(
        vs["spec"]["http"][0]["match"][0]["headers"]["x-canary"]["exact"],
        "insider"
    );
    assert_eq!(vs["spec"]["http"][0]["route"][1]["weight"], 100);
    assert_eq!(
        vs["spec"]["http"][1]["route"][0]["weight"], 100,
        "everyone else stays on the primary"
    );
    assert_eq!(vs["spec"]["http"][1]["route"][1]["weight"], 0);
}

#[tokio::test]
async fn smi_traffic_split() {
    let api = server();
    let c = canary("linkerd", json!({}));
    step_through(&api, Router::Smi(SmiVersion::V1alpha2), &c, |weight, _| {
        let ts = stored(&api, "split.smi-spec.io/v1alpha2", "TrafficSplit", "web");
        assert_eq!(ts["spec"]["service"], "web");
        assert_eq!(
            ts["spec"]["backends"][1],
            json!({"service": "web-canary", "weight": weight})
        );
    })
    .await;
}

#[tokio::test]
async fn contour_http_proxy() {
    let api = server();
    let c = canary("contour", json!({}));
    step_through(&api, Router::Contour, &c, |weight, _| {
        let p = stored(&api, "projectcontour.io/v1", "HTTPProxy", "web");
        assert_eq!(p["spec"]["routes"][0]["services"][1]["name"], "web-canary");
        assert_eq!(p["spec"]["routes"][0]["services"][1]["weight"], weight);
    })
    .await;
}

#[tokio::test]
async fn nginx_canary_ingress_weight_zero_rule_and_header_ab() {
    let api = server();
    let user_ingress = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "web", "namespace": NS, "annotations": {"kubernetes.io/ingress.class": "nginx"}},
        "spec": {"ingressClassName": "nginx", "rules": [{"host": "web.example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}
    });
    let client = api.client();
    let ingresses: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        NS,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("networking.k8s.io", "v1", "Ingress"),
            "ingresses",
        ),
    );
    ingresses
        .create(
            &PostParams::default(),
            &serde_json::from_value(user_ingress.clone()).unwrap(),
        )
        .await
        .unwrap();
    let c = canary("nginx", json!({}));
    step_through(&api, Router::Nginx, &c, |weight, _| {
        let ing = stored(&api, "networking.k8s.io/v1", "Ingress", "web-canary");
        let a = &ing["metadata"]["annotations"];
        assert_eq!(
            a["nginx.ingress.kubernetes.io/canary"], "true",
            "kept at weight 0 too (NGINX admission)"
        );
        assert_eq!(
            a["nginx.ingress.kubernetes.io/canary-weight"],
            weight.to_string()
        );
        assert_eq!(
            ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"],
            "web-canary"
        );
    })
    .await;
    let user = stored(&api, "networking.k8s.io/v1", "Ingress", "web");
    assert_eq!(
        user["spec"], user_ingress["spec"],
        "the user's Ingress is untouched"
    );

    let ab = canary(
        "nginx",
        json!({"analysis": {"stepWeight": null, "maxWeight": null, "iterations": 3,
        "match": [{"headers": {"x-canary": {"regex": "^insider-.*"}}}]}}),
    );
    Router::Nginx
        .set_routes(&client, &ab, w(0, 100))
        .await
        .unwrap();
    let a =
        stored(&api, "networking.k8s.io/v1", "Ingress", "web-canary")["metadata"]["annotations"]
            .clone();
    assert_eq!(
        a["nginx.ingress.kubernetes.io/canary-by-header"],
        "x-canary"
    );
    assert_eq!(
        a["nginx.ingress.kubernetes.io/canary-by-header-pattern"],
        "^insider-.*"
    );
    assert_eq!(
        Router::Nginx.get_routes(&client, &ab).await.unwrap(),
        Some(w(0, 100))
    );
    Router::Nginx
        .set_routes(&client, &ab, w(100, 0))
        .await
        .unwrap();
    let a =
        stored(&api, "networking.k8s.io/v1", "Ingress", "web-canary")["metadata"]["annotations"]
            .clone();
    assert!(
        a.get("nginx.ingress.kubernetes.io/canary-by-header")
            .is_none(),
        "A/B annotations removed at weight 0: {a}"
    );
    assert_eq!(a["nginx.ingress.kubernetes.io/canary-weight"], "0");
}

#[test]
fn unknown_providers_are_named() {
    let err = Router::for_provider(TrafficProvider::AppMesh)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("appmesh") && err.contains("gatewayapi"),
        "{err}"
    );
}
