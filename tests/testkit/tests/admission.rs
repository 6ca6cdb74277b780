//! Admission over real TLS: a small axum webhook (rcgen CA, rustls) registered through Mutating/Validating
//! WebhookConfigurations; the server calls it the way kube-apiserver does.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams, PostParams};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use serin_testkit::ApiServer;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

type Seen = Arc<Mutex<Vec<Value>>>;

struct Tls {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn certs(names: &[&str]) -> Tls {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    Tls {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

async fn serve_tls(router: Router, tls: &Tls) -> SocketAddr {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(tls.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_slice(tls.key_pem.as_bytes()).unwrap();
    let mut cfg = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, router) = (acceptor.clone(), router.clone());
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(router))
                    .await;
            });
        }
    });
    addr
}

fn response(review: &Value) -> Value {
    json!({"uid": review["request"]["uid"], "allowed": true})
}

/// Pauses Deployments (patch as base64, like Go webhooks) and warns.
async fn pause(State(seen): State<Seen>, Json(review): Json<Value>) -> Json<Value> {
    seen.lock().unwrap().push(review.clone());
    let patch = json!([{"op": "add", "path": "/spec/paused", "value": true}]);
    let mut r = response(&review);
    r["patchType"] = json!("JSONPatch");
    r["patch"] = json!(base64::engine::general_purpose::STANDARD.encode(patch.to_string()));
    r["warnings"] = json!(["web is held: paused until analysis"]);
    Json(json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": r}))
}

/// Annotates (patch as a JSON number array, like kube-rs webhooks).
async fn annotate(Json(review): Json<Value>) -> Json<Value> {
    let patch =
        json!([{"op": "add", "path": "/metadata/annotations", "value": {"serin.dev/seen": "yes"}}]);
    let mut r = response(&review);
    r["patchType"] = json!("JSONPatch");
    r["patch"] = json!(patch.to_string().into_bytes());
    Json(json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": r}))
}

/// Denies objects labelled deny=yes.
async fn validate(Json(review): Json<Value>) -> Json<Value> {
    let mut r = response(&review);
    if review.pointer("/request/object/metadata/labels/deny") == Some(&json!("yes")) {
        r["allowed"] = json!(false);
        r["status"] = json!({"code": 403, "message": "label deny=yes is not allowed"});
    }
    Json(json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": r}))
}

fn deployment(name: &str, labels: Value) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "web", "image": "web:1"}]}}}
    }))
    .unwrap()
}

fn rules() -> Value {
    json!([{"apiGroups": ["apps"], "apiVersions": ["v1"], "resources": ["deployments"], "operations": ["CREATE", "UPDATE"]}])
}

#[tokio::test]
async fn webhooks_mutate_deny_warn_over_tls() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let tls = certs(&["hook.test.svc", "localhost"]);
    let seen: Seen = Arc::default();
    let hook = Router::new()
        .route("/pause", post(pause))
        .route("/annotate", post(annotate))
        .route("/validate", post(validate))
        .with_state(seen.clone());
    let hook_addr = serve_tls(hook, &tls).await;

    let server = ApiServer::default();
    server.set_service_address("hook.test", hook_addr);
    let ca = base64::engine::general_purpose::STANDARD.encode(&tls.ca_pem);
    let (addr, _task) = server.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let client = server.client();
    let mutating = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration", "metadata": {"name": "serin"},
        "webhooks": [
            {"name": "pause.serin.dev", "rules": rules(), "objectSelector": {"matchLabels": {"hold": "yes"}},
             "clientConfig": {"service": {"name": "hook", "namespace": "test", "path": "/pause", "port": 443}, "caBundle": ca},
             "admissionReviewVersions": ["v1"], "sideEffects": "None", "failurePolicy": "Fail"},
            {"name": "annotate.serin.dev", "rules": rules(),
             "clientConfig": {"url": format!("https://localhost:{}/annotate", hook_addr.port()), "caBundle": ca},
             "admissionReviewVersions": ["v1"], "sideEffects": "None"},
        ]
    });
    let validating = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "serin"},
        "webhooks": [{"name": "validate.serin.dev", "rules": rules(),
                      "clientConfig": {"service": {"name": "hook", "namespace": "test", "path": "/validate", "port": 443}, "caBundle": ca},
                      "admissionReviewVersions": ["v1"], "sideEffects": "None"}]
    });
    let http = reqwest::Client::new();
    for (plural, body) in [
        ("mutatingwebhookconfigurations", &mutating),
        ("validatingwebhookconfigurations", &validating),
    ] {
        let r = http
            .post(format!(
                "http://{addr}/apis/admissionregistration.k8s.io/v1/{plural}"
            ))
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }

    // Held: both mutations applied, the warning comes back as a Warning header.
    let r = http
        .post(format!(
            "http://{addr}/apis/apps/v1/namespaces/default/deployments"
        ))
        .json(&deployment("web", json!({"app": "web", "hold": "yes"})))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let warnings: Vec<String> = r
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(warnings, ["299 - \"web is held: paused until analysis\""]);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["spec"]["paused"], true);
    assert_eq!(created["metadata"]["annotations"]["serin.dev/seen"], "yes");

    // What the webhook received looks like kube-apiserver's AdmissionReview.
    let review = seen.lock().unwrap()[0].clone();
    assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
    let req = &review["request"];
    assert_eq!(req["operation"], "CREATE");
    assert_eq!(
        req["kind"],
        json!({"group": "apps", "version": "v1", "kind": "Deployment"})
    );
    assert_eq!(
        req["resource"],
        json!({"group": "apps", "version": "v1", "resource": "deployments"})
    );
    assert_eq!(
        (req["namespace"].as_str(), req["name"].as_str()),
        (Some("default"), Some("web"))
    );
    assert!(
        req["uid"].as_str().is_some_and(|u| !u.is_empty())
            && req["userInfo"]["username"].is_string()
    );
    assert!(req["oldObject"].is_null());

    // objectSelector: no hold label, no pause; the unselective webhook still ran.
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let free = api
        .create(
            &PostParams::default(),
            &deployment("free", json!({"app": "free"})),
        )
        .await
        .unwrap();
    assert_eq!(free.spec.unwrap().paused, None);
    assert_eq!(free.metadata.annotations.unwrap()["serin.dev/seen"], "yes");

    // UPDATE carries oldObject; an update that matches the selector is paused too.
    api.patch(
        "free",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"hold": "yes"}}})),
    )
    .await
    .unwrap();
    assert_eq!(
        api.get("free").await.unwrap().spec.unwrap().paused,
        Some(true)
    );
    let last = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last["request"]["operation"], "UPDATE");
    assert_eq!(last["request"]["oldObject"]["metadata"]["name"], "free");

    // Denial: a 4xx Status with the webhook's message, nothing stored.
    let err = api
        .create(
            &PostParams::default(),
            &deployment("bad", json!({"app": "bad", "deny": "yes"})),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("expected a Status")
    };
    assert_eq!(status.code, 403);
    assert!(
        status.message.contains("validate.serin.dev")
            && status.message.contains("label deny=yes is not allowed"),
        "{}",
        status.message
    );
    assert!(
        server
            .object("apps/v1", "Deployment", "default", "bad")
            .is_none()
    );
}

#[tokio::test]
async fn failure_policy_and_untrusted_certificates() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let tls = certs(&["hook.test.svc"]);
    let other_ca = certs(&["x"]).ca_pem;
    let hook_addr = serve_tls(Router::new().route("/validate", post(validate)), &tls).await;
    let server = ApiServer::default();
    server.set_service_address("hook.test", hook_addr);
    let client = server.client();
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let configs: Api<k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration> =
        Api::all(client.clone());
    let cfg = |policy: &str,
               ca_pem: &str,
               svc: &str|
     -> k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration {
        serde_json::from_value(json!({
            "metadata": {"name": "v"},
            "webhooks": [{"name": "validate.serin.dev", "rules": rules(), "failurePolicy": policy, "timeoutSeconds": 2,
                          "clientConfig": {"service": {"name": svc, "namespace": "test", "path": "/validate"},
                                           "caBundle": base64::engine::general_purpose::STANDARD.encode(ca_pem)},
                          "admissionReviewVersions": ["v1"], "sideEffects": "None"}]
        }))
        .unwrap()
    };

    // A CA that did not sign the webhook's certificate: Fail refuses the write, naming the webhook.
    configs
        .create(&PostParams::default(), &cfg("Fail", &other_ca, "hook"))
        .await
        .unwrap();
    let err = api
        .create(
            &PostParams::default(),
            &deployment("a", json!({"app": "a"})),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("expected a Status")
    };
    assert_eq!(status.code, 500);
    assert!(
        status
            .message
            .contains("failed calling webhook \"validate.serin.dev\""),
        "{}",
        status.message
    );

    // The right CA: allowed.
    let mut right = cfg("Fail", &tls.ca_pem, "hook");
    right.metadata.resource_version = configs.get("v").await.unwrap().metadata.resource_version;
    configs
        .replace("v", &PostParams::default(), &right)
        .await
        .unwrap();
    api.create(
        &PostParams::default(),
        &deployment("a", json!({"app": "a"})),
    )
    .await
    .unwrap();

    // No address for the service: Ignore lets the write through, Fail does not.
    let mut ignore = cfg("Ignore", &tls.ca_pem, "nowhere");
    ignore.metadata.resource_version = configs.get("v").await.unwrap().metadata.resource_version;
    configs
        .replace("v", &PostParams::default(), &ignore)
        .await
        .unwrap();
    api.create(
        &PostParams::default(),
        &deployment("b", json!({"app": "b"})),
    )
    .await
    .unwrap();
    let mut fail = cfg("Fail", &tls.ca_pem, "nowhere");
    fail.metadata.resource_version = configs.get("v").await.unwrap().metadata.resource_version;
    configs
        .replace("v", &PostParams::default(), &fail)
        .await
        .unwrap();
    let err = api
        .create(
            &PostParams::default(),
            &deployment("c", json!({"app": "c"})),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("expected a Status")
    };
    assert!(
        status.message.contains("--service-address"),
        "{}",
        status.message
    );
}
