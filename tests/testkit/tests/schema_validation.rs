//! Custom resources checked against their CRD's openAPIV3Schema on create, update and patch: each rule
//! refuses with a 422 naming the field, unknown fields are pruned with a warning, `fieldValidation=Strict`
//! refuses them. Over HTTP, so the Status bodies and Warning headers are the ones clients see.

#![recursion_limit = "256"]

use serde_json::{Value, json};
use serin_testkit::apiserver::{ApiServer, schema};

const ABSENT: &str = "<absent>";
const BASE: &str = "/apis/example.com/v1/namespaces/default/widgets";

fn widget_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "required": ["name"], "properties": {
                        "name": {"type": "string", "minLength": 1, "maxLength": 8, "pattern": "^[a-z]+$"},
                        "mode": {"type": "string", "enum": ["Fast", "Slow"]},
                        "weight": {"type": "integer", "minimum": 0, "maximum": 100},
                        "ratio": {"type": "number", "maximum": 1, "exclusiveMaximum": true},
                        "enabled": {"type": "boolean"},
                        "tags": {"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "string"}},
                        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                                  "items": {"type": "object", "required": ["name"],
                                            "properties": {"name": {"type": "string"}, "number": {"type": "integer"}}}},
                        "labels": {"type": "object", "maxProperties": 2, "additionalProperties": {"type": "string"}},
                        "when": {"type": "string", "format": "date-time"},
                        "note": {"type": "string", "nullable": true},
                        "port": {"x-kubernetes-int-or-string": true},
                        "match": {"type": "object", "properties": {"exact": {"type": "string"}, "prefix": {"type": "string"}},
                                  "oneOf": [{"required": ["exact"]}, {"required": ["prefix"]}]},
                        "target": {"type": "object", "properties": {"host": {"type": "string"}, "ip": {"type": "string"}},
                                   "anyOf": [{"required": ["host"]}, {"required": ["ip"]}]},
                        "solo": {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
                                 "not": {"required": ["a", "b"]}},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                                 "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}}},
                        "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                                     "properties": {"spec": {"type": "object", "properties": {"x": {"type": "string"}}}}},
                        "lookahead": {"type": "string", "pattern": "^(?!forbidden).*$"}
                    }},
                    "status": {"type": "object", "properties": {"phase": {"type": "string", "enum": ["Ready"]}}}
                }}}}]}
    })
}

struct Http {
    base: String,
    client: reqwest::Client,
    _task: tokio::task::JoinHandle<()>,
}

struct Reply {
    code: u16,
    body: Value,
    warnings: Vec<String>,
}

impl Http {
    async fn start(api: &ApiServer) -> Self {
        let (addr, task) = api.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
        Http {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            _task: task,
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, ctype: &str, body: &Value) -> Reply {
        let resp = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("content-type", ctype)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let code = resp.status().as_u16();
        let warnings = resp
            .headers()
            .get_all("warning")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        let body = resp.json().await.unwrap();
        Reply {
            code,
            body,
            warnings,
        }
    }

    async fn create(&self, obj: &Value) -> Reply {
        self.send(reqwest::Method::POST, BASE, "application/json", obj)
            .await
    }
}

fn widget(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec})
}

/// `base` with `over`'s fields set; `ABSENT` removes a field (a JSON `null` is a value here).
fn merged(mut base: Value, over: &Value) -> Value {
    for (k, v) in over.as_object().unwrap() {
        if *v == ABSENT {
            base.as_object_mut().unwrap().remove(k);
        } else {
            base[k] = v.clone();
        }
    }
    base
}

async fn server() -> (ApiServer, Http) {
    let api = ApiServer::default();
    api.seed(widget_crd()).unwrap();
    let http = Http::start(&api).await;
    (api, http)
}

/// The causes of a 422, as (field, reason) pairs.
fn causes(r: &Reply) -> Vec<(String, String)> {
    assert_eq!(r.code, 422, "expected 422 Invalid: {}", r.body);
    assert_eq!(r.body["reason"], "Invalid");
    assert_eq!(r.body["details"]["kind"], "Widget");
    assert_eq!(r.body["details"]["group"], "example.com");
    r.body["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["field"].as_str().unwrap().to_string(),
                c["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_valid_widget_is_stored_as_written() {
    let (api, http) = server().await;
    let spec = json!({"name": "web", "mode": "Fast", "weight": 100, "ratio": 0.5, "enabled": true,
        "tags": ["a", "b"], "ports": [{"name": "http", "number": 80}, {"name": "https", "number": 443}],
        "labels": {"a": "b"}, "when": "2024-05-01T10:00:00Z", "note": null, "port": "http",
        "match": {"exact": "x"}, "target": {"ip": "10.0.0.1"}, "solo": {"a": "x"},
        "free": {"anything": {"goes": [1, 2]}, "known": {"a": "b"}},
        "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"x": "y"}}, "spec": {"x": "y"}},
        "lookahead": "forbidden-but-unchecked"});
    let r = http.create(&widget("good", spec.clone())).await;
    assert_eq!(r.code, 201, "{}", r.body);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let stored = api
        .object("example.com/v1", "Widget", "default", "good")
        .unwrap();
    assert_eq!(stored["spec"], spec);
    let port_number = widget("num", json!({"name": "num", "port": 8080}));
    assert_eq!(http.create(&port_number).await.code, 201);
}

#[tokio::test]
async fn each_violation_is_a_422_naming_the_field() {
    let (api, http) = server().await;
    let base = json!({"name": "web"});
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({"name": 5}), "spec.name", "FieldValueTypeInvalid"),
        (json!({"name": ABSENT}), "spec.name", "FieldValueRequired"),
        (json!({"name": ""}), "spec.name", "FieldValueInvalid"),
        (
            json!({"name": "abcdefghij"}),
            "spec.name",
            "FieldValueTooLong",
        ),
        (json!({"name": "Web"}), "spec.name", "FieldValueInvalid"),
        (
            json!({"mode": "Medium"}),
            "spec.mode",
            "FieldValueNotSupported",
        ),
        (json!({"weight": 101}), "spec.weight", "FieldValueInvalid"),
        (json!({"weight": -1}), "spec.weight", "FieldValueInvalid"),
        (
            json!({"weight": 1.5}),
            "spec.weight",
            "FieldValueTypeInvalid",
        ),
        (json!({"ratio": 1}), "spec.ratio", "FieldValueInvalid"),
        (
            json!({"enabled": "yes"}),
            "spec.enabled",
            "FieldValueTypeInvalid",
        ),
        (
            json!({"enabled": null}),
            "spec.enabled",
            "FieldValueTypeInvalid",
        ),
        (json!({"tags": []}), "spec.tags", "FieldValueInvalid"),
        (
            json!({"tags": ["a", "b", "c"]}),
            "spec.tags",
            "FieldValueTooMany",
        ),
        (
            json!({"tags": [1]}),
            "spec.tags[0]",
            "FieldValueTypeInvalid",
        ),
        (
            json!({"ports": [{"name": "a"}, {"name": "a", "number": 2}]}),
            "spec.ports[1]",
            "FieldValueDuplicate",
        ),
        (
            json!({"ports": [{"number": 2}]}),
            "spec.ports[0].name",
            "FieldValueRequired",
        ),
        (
            json!({"labels": {"a": 1}}),
            "spec.labels.a",
            "FieldValueTypeInvalid",
        ),
        (
            json!({"labels": {"a": "1", "b": "2", "c": "3"}}),
            "spec.labels",
            "FieldValueTooMany",
        ),
        (
            json!({"when": "yesterday"}),
            "spec.when",
            "FieldValueInvalid",
        ),
        (json!({"port": true}), "spec.port", "FieldValueTypeInvalid"),
        (json!({"match": {}}), "spec.match", "FieldValueInvalid"),
        (
            json!({"match": {"exact": "a", "prefix": "b"}}),
            "spec.match",
            "FieldValueInvalid",
        ),
        (json!({"target": {}}), "spec.target", "FieldValueInvalid"),
        (
            json!({"solo": {"a": "x", "b": "y"}}),
            "spec.solo",
            "FieldValueInvalid",
        ),
        (
            json!({"template": {"spec": {"x": "y"}}}),
            "spec.template.apiVersion",
            "FieldValueRequired",
        ),
    ];
    for (i, (over, field, reason)) in cases.into_iter().enumerate() {
        let name = format!("w{i}");
        let r = http
            .create(&widget(&name, merged(base.clone(), &over)))
            .await;
        let found = causes(&r);
        assert!(
            found.iter().any(|(f, why)| f == field && why == reason),
            "{over} should fail {field} with {reason}; got {found:?}: {}",
            r.body["message"]
        );
        let message = r.body["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("Widget.example.com \"{name}\" is invalid: ")),
            "{message}"
        );
        assert!(message.contains(field), "{message}");
        assert!(
            api.object("example.com/v1", "Widget", "default", &name)
                .is_none(),
            "{over} was stored"
        );
    }
}

#[tokio::test]
async fn messages_follow_kube_apiserver() {
    let (_api, http) = server().await;
    let r = http
        .create(&widget(
            "m",
            json!({"name": "web", "weight": 101, "mode": "Medium"}),
        ))
        .await;
    let message = r.body["message"].as_str().unwrap();
    assert!(
        message.contains(
            "spec.weight: Invalid value: 101: spec.weight in body should be less than or equal to 100"
        ),
        "{message}"
    );
    assert!(
        message.contains(
            r#"spec.mode: Unsupported value: "Medium": supported values: "Fast", "Slow""#
        ),
        "{message}"
    );
    assert!(
        message.starts_with(r#"Widget.example.com "m" is invalid: ["#),
        "two causes are listed in brackets: {message}"
    );
}

#[tokio::test]
async fn unknown_fields_are_pruned_with_a_warning() {
    let (api, http) = server().await;
    let obj = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "p"}, "extra": 1,
        "spec": {"name": "web", "unknown": {"deep": true}, "ports": [{"name": "a", "extra": 2}],
                 "free": {"kept": 1, "known": {"a": "b", "dropped": 3}},
                 "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": {"x": "y", "extra": 4}}}});
    let r = http.create(&obj).await;
    assert_eq!(r.code, 201, "{}", r.body);
    let mut warned = r.warnings.clone();
    warned.sort();
    let expected = [
        "extra",
        "spec.free.known.dropped",
        "spec.ports[0].extra",
        "spec.template.spec.extra",
        "spec.unknown",
    ]
    .map(|f| format!("299 - \"unknown field \\\"{f}\\\"\""));
    assert_eq!(warned, expected);
    let stored = api
        .object("example.com/v1", "Widget", "default", "p")
        .unwrap();
    assert!(stored.get("extra").is_none());
    assert_eq!(
        stored["spec"],
        json!({"name": "web", "ports": [{"name": "a"}], "free": {"kept": 1, "known": {"a": "b"}},
               "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": {"x": "y"}}})
    );
    assert_eq!(
        r.body["spec"], stored["spec"],
        "the response shows the pruned object"
    );
}

#[tokio::test]
async fn strict_field_validation_refuses_unknown_fields() {
    let (api, http) = server().await;
    let obj = widget("s", json!({"name": "web", "unknown": 1}));
    let r = http
        .send(
            reqwest::Method::POST,
            &format!("{BASE}?fieldValidation=Strict"),
            "application/json",
            &obj,
        )
        .await;
    assert_eq!(r.code, 400, "{}", r.body);
    assert_eq!(r.body["reason"], "BadRequest");
    let message = r.body["message"].as_str().unwrap();
    assert!(
        message.contains(r#"strict decoding error: unknown field "spec.unknown""#),
        "{message}"
    );
    assert!(
        api.object("example.com/v1", "Widget", "default", "s")
            .is_none()
    );
    let ignored = http
        .send(
            reqwest::Method::POST,
            &format!("{BASE}?fieldValidation=Ignore"),
            "application/json",
            &obj,
        )
        .await;
    assert_eq!(ignored.code, 201);
    assert!(ignored.warnings.is_empty(), "{:?}", ignored.warnings);
    let bad = http
        .send(
            reqwest::Method::POST,
            &format!("{BASE}?fieldValidation=Loud"),
            "application/json",
            &widget("t", json!({"name": "web"})),
        )
        .await;
    assert_eq!(bad.code, 400);
}

#[tokio::test]
async fn updates_and_patches_are_checked_after_they_apply() {
    let (api, http) = server().await;
    assert_eq!(
        http.create(&widget("u", json!({"name": "web", "weight": 5})))
            .await
            .code,
        201
    );
    let path = format!("{BASE}/u");
    let put = http
        .send(
            reqwest::Method::PUT,
            &path,
            "application/json",
            &widget("u", json!({"name": "web", "weight": 500})),
        )
        .await;
    assert_eq!(
        causes(&put),
        [("spec.weight".into(), "FieldValueInvalid".into())]
    );
    let merge = http
        .send(
            reqwest::Method::PATCH,
            &path,
            "application/merge-patch+json",
            &json!({"spec": {"name": null}}),
        )
        .await;
    assert_eq!(
        causes(&merge),
        [("spec.name".into(), "FieldValueRequired".into())]
    );
    let json_patch = http
        .send(
            reqwest::Method::PATCH,
            &path,
            "application/json-patch+json",
            &json!([{"op": "add", "path": "/spec/tags", "value": [1]}]),
        )
        .await;
    assert_eq!(
        causes(&json_patch),
        [("spec.tags[0]".into(), "FieldValueTypeInvalid".into())]
    );
    let stored = api
        .object("example.com/v1", "Widget", "default", "u")
        .unwrap();
    assert_eq!(
        stored["spec"],
        json!({"name": "web", "weight": 5}),
        "unchanged"
    );
    let pruned = http
        .send(
            reqwest::Method::PATCH,
            &path,
            "application/merge-patch+json",
            &json!({"spec": {"weight": 6, "bogus": true}}),
        )
        .await;
    assert_eq!(pruned.code, 200, "{}", pruned.body);
    assert_eq!(
        pruned.warnings,
        ["299 - \"unknown field \\\"spec.bogus\\\"\""]
    );
    let stored = api
        .object("example.com/v1", "Widget", "default", "u")
        .unwrap();
    assert_eq!(stored["spec"], json!({"name": "web", "weight": 6}));
    let status = http
        .send(
            reqwest::Method::PATCH,
            &format!("{path}/status"),
            "application/merge-patch+json",
            &json!({"status": {"phase": "Broken"}}),
        )
        .await;
    assert_eq!(
        causes(&status),
        [("status.phase".into(), "FieldValueNotSupported".into())]
    );
}

#[tokio::test]
async fn patterns_rust_cannot_compile_are_skipped_and_listed() {
    let (_api, http) = server().await;
    let r = http
        .create(&widget(
            "l",
            json!({"name": "web", "lookahead": "forbidden"}),
        ))
        .await;
    assert_eq!(r.code, 201, "the look-ahead pattern is not checked");
    assert!(
        schema::skipped_patterns().contains(&"^(?!forbidden).*$".to_string()),
        "{:?}",
        schema::skipped_patterns()
    );
}

#[tokio::test]
async fn ingress_fields_of_the_wrong_type_are_refused() {
    let api = ApiServer::default();
    let http = Http::start(&api).await;
    let ingress = |rules: Value| {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web"},
               "spec": {"rules": rules}})
    };
    let path = "/apis/networking.k8s.io/v1/namespaces/default/ingresses";
    let bad = http
        .send(
            reqwest::Method::POST,
            path,
            "application/json",
            &ingress(json!("everything")),
        )
        .await;
    assert_eq!(bad.code, 400, "{}", bad.body);
    assert!(
        bad.body["message"]
            .as_str()
            .unwrap()
            .contains("cannot be handled as a Ingress"),
        "{}",
        bad.body
    );
    let good = http
        .send(
            reqwest::Method::POST,
            path,
            "application/json",
            &ingress(json!([{"host": "web.example.com"}])),
        )
        .await;
    assert_eq!(good.code, 201, "{}", good.body);
}

#[test]
fn a_malformed_schema_checks_what_it_can_without_panicking() {
    let s = json!({"type": "object", "required": "spec", "properties": {
        "spec": {"type": "object", "properties": [], "additionalProperties": 5,
                 "maximum": "x", "items": 5, "enum": "a", "pattern": "([", "oneOf": {}},
        "list": {"type": "array", "items": 5, "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": 1},
        "count": {"type": "integer", "maximum": "ten"}}});
    let mut obj = json!({"spec": {"a": 1}, "list": [1, 1], "count": 11, "other": true});
    let pruned = schema::prune(&mut obj, &s);
    assert_eq!(pruned, ["other", "spec.a"]);
    let mut causes = Vec::new();
    schema::validate(&obj, &s, "", &mut causes);
    assert!(causes.is_empty(), "{causes:?}");
    schema::validate(&json!({"count": "11"}), &s, "", &mut causes);
    assert_eq!(causes.len(), 1);
    assert_eq!(causes[0].field, "count");
}
