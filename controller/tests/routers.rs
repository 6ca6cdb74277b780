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
use serin_testkit::support::crd_fixture;

const NS: &str = "prod";

/// The real CRDs of the projects the routers write to (tests/fixtures/crds/README.md); TrafficSplit
/// v1alpha3 comes from its own CRD, so it is seeded apart (`smi_fixture`).
const FIXTURES: [&str; 5] = [
    "gateway-api-v1.6.1-httproutes.yaml",
    "traefik-v3.7.9-traefikservices.yaml",
    "istio-1.30.3-virtualservices.yaml",
    "istio-1.30.3-destinationrules.yaml",
    "contour-v1.33.6-httpproxies.yaml",
];
const SMI_V1ALPHA2: &str = "linkerd-smi-v0.2.7-trafficsplits.yaml";
const SMI_V1ALPHA3: &str = "smi-sdk-go-v0.4.1-trafficsplits.yaml";

/// A CRD that keeps whatever it is given: the API server then stores exactly what serin wrote.
fn loose_crd(group: &str, versions: &[&str], kind: &str, plural: &str) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .enumerate()
        .map(|(i, v)| json!({"name": v, "served": true, "storage": i == 0,
            "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}))
        .collect();
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}")},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"kind": kind, "plural": plural, "singular": kind.to_lowercase(), "listKind": format!("{kind}List")},
                 "versions": versions}
    })
}

fn with_namespace(api: ApiServer) -> ApiServer {
    api.seed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}))
        .unwrap();
    api
}

/// An API server with the real CRDs (TrafficSplit from `smi_fixture`).
fn real_server(smi_fixture: &str) -> ApiServer {
    let api = ApiServer::default();
    for file in FIXTURES.iter().chain([&smi_fixture]) {
        api.seed(crd_fixture(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    with_namespace(api)
}

fn server() -> ApiServer {
    real_server(SMI_V1ALPHA2)
}

/// An API server whose CRDs keep unknown fields, the reference for "nothing was pruned".
fn loose_server() -> ApiServer {
    let api = ApiServer::default();
    for c in [
        loose_crd(
            "gateway.networking.k8s.io",
            &["v1", "v1beta1"],
            "HTTPRoute",
            "httproutes",
        ),
        loose_crd(
            "traefik.io",
            &["v1alpha1"],
            "TraefikService",
            "traefikservices",
        ),
        loose_crd(
            "networking.istio.io",
            &["v1"],
            "VirtualService",
            "virtualservices",
        ),
        loose_crd(
            "networking.istio.io",
            &["v1"],
            "DestinationRule",
            "destinationrules",
        ),
        loose_crd(
            "split.smi-spec.io",
            &["v1alpha2", "v1alpha1", "v1alpha3"],
            "TrafficSplit",
            "trafficsplits",
        ),
        loose_crd("projectcontour.io", &["v1"], "HTTPProxy", "httpproxies"),
    ] {
        api.seed(c).unwrap();
    }
    with_namespace(api)
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

/// Every router run against two servers: one with the real CRDs (which must accept every object) and
/// one that keeps what it is given. The stored objects must be equal: the real schemas pruned nothing.
struct Pair {
    real: ApiServer,
    loose: ApiServer,
}

impl Pair {
    fn new(smi_fixture: &str) -> Self {
        Pair {
            real: real_server(smi_fixture),
            loose: loose_server(),
        }
    }

    async fn set(&self, router: Router, c: &Canary, routes: Routes) {
        for (which, api) in [("real", &self.real), ("loose", &self.loose)] {
            router
                .set_routes(&api.client(), c, routes)
                .await
                .unwrap_or_else(|e| panic!("{router:?} at {routes:?} refused ({which} CRDs): {e}"));
        }
        for (api_version, kind) in kinds(router) {
            let real = written(&self.real, &api_version, kind);
            assert!(!real.is_empty(), "no {kind} written by {router:?}");
            assert_eq!(
                real,
                written(&self.loose, &api_version, kind),
                "the real {kind} schema pruned what {router:?} wrote at {routes:?}"
            );
        }
        assert_eq!(
            router.get_routes(&self.real.client(), c).await.unwrap(),
            Some(routes),
            "{router:?} reads its routes back"
        );
    }
}

/// The kinds (in the version it writes) a router's objects are stored as.
fn kinds(router: Router) -> Vec<(String, &'static str)> {
    let one = |av: &str, kind| vec![(av.to_string(), kind)];
    match router {
        Router::GatewayApi { v1beta1: false } => one("gateway.networking.k8s.io/v1", "HTTPRoute"),
        Router::GatewayApi { v1beta1: true } => {
            one("gateway.networking.k8s.io/v1beta1", "HTTPRoute")
        }
        Router::Traefik => one("traefik.io/v1alpha1", "TraefikService"),
        Router::Istio => vec![
            ("networking.istio.io/v1".into(), "VirtualService"),
            ("networking.istio.io/v1".into(), "DestinationRule"),
        ],
        Router::Nginx => one("networking.k8s.io/v1", "Ingress"),
        Router::Smi(v) => one(&format!("split.smi-spec.io/{}", v.as_str()), "TrafficSplit"),
        Router::Contour => one("projectcontour.io/v1", "HTTPProxy"),
        Router::Kubernetes => vec![],
    }
}

/// What serin decides in each stored object: name, labels, annotations, spec (not the server's fields).
fn written(api: &ApiServer, api_version: &str, kind: &str) -> Vec<Value> {
    api.objects(api_version, kind)
        .into_iter()
        .map(|o| {
            json!({"name": o["metadata"]["name"], "labels": o["metadata"]["labels"],
                   "annotations": o["metadata"]["annotations"], "spec": o["spec"]})
        })
        .collect()
}

fn mirrored() -> Routes {
    Routes {
        primary: 100,
        canary: 0,
        mirror: true,
    }
}

fn ab(matches: Value) -> Value {
    json!({"analysis": {"stepWeight": null, "maxWeight": null, "iterations": 3, "match": matches}})
}

/// The A/B conditions Gateway API and Istio both express: headers exact/regex/prefix/suffix, the
/// cookie header, method, uri exact/prefix/regex and query parameters.
fn http_matches() -> Value {
    json!([
        {"headers": {"x-canary": {"exact": "insider"}, "x-region": {"prefix": "eu-"}}, "method": {"exact": "POST"}},
        {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}},
        {"uri": {"regex": "/api/v[0-9]+"}, "queryParams": {"beta": {"exact": "1"}, "cohort": {"regex": "^[ab]$"}}},
        {"uri": {"prefix": "/v2"}, "headers": {"x-build": {"suffix": "-rc"}}},
        {"uri": {"exact": "/login"}}
    ])
}

async fn steps(pair: &Pair, router: Router, c: &Canary) {
    for canary_weight in [0, 10, 50, 100, 0] {
        pair.set(router, c, w(100 - canary_weight, canary_weight))
            .await;
    }
}

#[tokio::test]
async fn gateway_api_objects_fit_the_real_httproute_schema() {
    for v1beta1 in [false, true] {
        let router = Router::GatewayApi { v1beta1 };
        let pair = Pair::new(SMI_V1ALPHA2);
        let gateway = json!({"service": {"port": 8080, "hosts": ["web.example.com"],
            "gatewayRefs": [{"name": "public", "namespace": "infra", "sectionName": "https"}]}});
        steps(&pair, router, &canary("gatewayapi:v1", gateway.clone())).await;
        let gamma = Pair::new(SMI_V1ALPHA2);
        steps(&gamma, router, &canary("gatewayapi:v1", json!({}))).await;

        let ab_pair = Pair::new(SMI_V1ALPHA2);
        let ab_canary = canary("gatewayapi:v1", ab(http_matches()));
        ab_pair.set(router, &ab_canary, w(0, 100)).await;
        ab_pair.set(router, &ab_canary, w(100, 0)).await;

        let mirror_pair = Pair::new(SMI_V1ALPHA2);
        for extra in [
            json!({"analysis": {"mirror": true, "mirrorWeight": 50}}),
            json!({"analysis": {"mirror": true}}),
        ] {
            let c = canary("gatewayapi:v1", extra);
            mirror_pair.set(router, &c, mirrored()).await;
            mirror_pair.set(router, &c, w(90, 10)).await;
        }
    }
}

#[tokio::test]
async fn traefik_objects_fit_the_real_traefikservice_schema() {
    let pair = Pair::new(SMI_V1ALPHA2);
    steps(&pair, Router::Traefik, &canary("traefik", json!({}))).await;
    let c = canary(
        "traefik",
        json!({"analysis": {"mirror": true, "mirrorWeight": 25}}),
    );
    pair.set(Router::Traefik, &c, mirrored()).await;
    pair.set(Router::Traefik, &c, w(90, 10)).await;
    pair.set(Router::Traefik, &c, mirrored()).await;
}

#[tokio::test]
async fn istio_objects_fit_the_real_virtualservice_and_destinationrule_schemas() {
    let service = json!({"service": {"port": 80, "hosts": ["web.example.com"], "gateways": ["public-gw"],
        "match": [{"uri": {"prefix": "/"}}], "timeout": "30s",
        "retries": {"attempts": 3, "perTryTimeout": "5s", "retryOn": "gateway-error,connect-failure"},
        "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}, "connectionPool": {"http": {"http1MaxPendingRequests": 100}}}}});
    let pair = Pair::new(SMI_V1ALPHA2);
    steps(&pair, Router::Istio, &canary("istio", service.clone())).await;

    let mut ab_extra = ab(http_matches());
    ab_extra["service"] = service["service"].clone();
    let ab_pair = Pair::new(SMI_V1ALPHA2);
    ab_pair
        .set(Router::Istio, &canary("istio", ab_extra), w(0, 100))
        .await;
    let vs = stored(
        &ab_pair.real,
        "networking.istio.io/v1",
        "VirtualService",
        "web",
    );
    assert_eq!(
        vs["spec"]["http"][0]["match"][3]["headers"]["x-build"],
        json!({"regex": ".*-rc"}),
        "Istio has no suffix match: written as a regex, not pruned to {{}} (any value)"
    );

    let mirror_pair = Pair::new(SMI_V1ALPHA2);
    let c = canary(
        "istio",
        json!({"analysis": {"mirror": true, "mirrorWeight": 50}}),
    );
    mirror_pair.set(Router::Istio, &c, mirrored()).await;
    mirror_pair.set(Router::Istio, &c, w(90, 10)).await;
}

#[tokio::test]
async fn contour_objects_fit_the_real_httpproxy_schema() {
    let pair = Pair::new(SMI_V1ALPHA2);
    let timeout = json!({"service": {"port": 80, "timeout": "15s"}});
    steps(&pair, Router::Contour, &canary("contour", timeout)).await;
    let ab_pair = Pair::new(SMI_V1ALPHA2);
    let matches = json!([
        {"headers": {"x-canary": {"exact": "insider"}}},
        {"headers": {"x-region": {"prefix": "eu-"}, "x-build": {"suffix": "-rc"}}},
        {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}}
    ]);
    let c = canary("contour", ab(matches));
    ab_pair.set(Router::Contour, &c, w(0, 100)).await;
    ab_pair.set(Router::Contour, &c, w(100, 0)).await;
}

#[tokio::test]
async fn smi_objects_fit_the_real_trafficsplit_schemas() {
    for (fixture, version) in [
        (SMI_V1ALPHA2, SmiVersion::V1alpha1),
        (SMI_V1ALPHA2, SmiVersion::V1alpha2),
        (SMI_V1ALPHA3, SmiVersion::V1alpha3),
    ] {
        let pair = Pair::new(fixture);
        steps(&pair, Router::Smi(version), &canary("linkerd", json!({}))).await;
    }
}

#[tokio::test]
async fn nginx_canary_ingress_is_a_valid_ingress() {
    let pair = Pair::new(SMI_V1ALPHA2);
    let user_ingress = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["web.example.com"], "secretName": "web-tls"}],
                 "rules": [{"host": "web.example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}
    });
    for api in [&pair.real, &pair.loose] {
        api.seed(user_ingress.clone()).unwrap();
    }
    steps(&pair, Router::Nginx, &canary("nginx", json!({}))).await;
    for matches in [
        json!([{"headers": {"x-canary": {"exact": "insider"}}}, {"headers": {"cookie": {"exact": "canary"}}}]),
        json!([{"headers": {"x-canary": {"regex": "^insider-.*"}}}]),
    ] {
        let c = canary("nginx", ab(matches));
        pair.set(Router::Nginx, &c, w(0, 100)).await;
        pair.set(Router::Nginx, &c, w(100, 0)).await;
    }
}

/// The checks above mean something only if the real CRDs are enforced: a wrong type is refused and an
/// unknown field is dropped.
#[tokio::test]
async fn the_real_crds_refuse_and_prune() {
    let api = server();
    let routes: Api<DynamicObject> = Api::namespaced_with(
        api.client(),
        NS,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute"),
            "httproutes",
        ),
    );
    let route = |weight: Value| -> DynamicObject {
        serde_json::from_value(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "r", "namespace": NS},
            "spec": {"rules": [{"backendRefs": [{"name": "web", "port": 80, "weight": weight, "bogus": 1}]}]}}))
        .unwrap()
    };
    let err = routes
        .create(&PostParams::default(), &route(json!("ten")))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 422 && s.message.contains("spec.rules[0].backendRefs[0].weight")),
        "{err}"
    );
    let created = routes
        .create(&PostParams::default(), &route(json!(10)))
        .await
        .unwrap();
    assert_eq!(
        created.data["spec"]["rules"][0]["backendRefs"][0],
        json!({"name": "web", "port": 80, "weight": 10})
    );
}
