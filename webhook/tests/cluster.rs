//! Against the in-memory Kubernetes API server of `serin-testkit`, which calls admission webhooks
//! the way kube-apiserver does (HTTPS to the Service's DNS name, trusting only the caBundle):
//! `--self-signed` sets the caBundle, then real writes through the API are held and validated,
//! and the Canary index follows the cluster's Canaries.

use std::time::{Duration, Instant};

use base64::Engine as _;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DynamicObject, PostParams};
use serde_json::{Value, json};
use serin_api::hash::template_hash;
use serin_api::labels::{CANARY_LABEL, STABLE_HASH_ANNOTATION};
use serin_testkit::ApiServer;
use serin_webhook::selfsigned::{CaBundleReport, dns_names, generate, patch_ca_bundle};
use serin_webhook::{AppState, CanaryIndex, KubeCanaryIndex, ReloadingCert};

const SERVICE: &str = "serin-webhook";
const NAMESPACE: &str = "serin-system";

fn configurations() -> (Value, Value) {
    let hook = |name: &str, path: &str, rules: Value| {
        json!({"name": name, "admissionReviewVersions": ["v1"], "sideEffects": "None",
               "failurePolicy": "Fail",
               "clientConfig": {"service": {"name": SERVICE, "namespace": NAMESPACE, "path": path, "port": 443}},
               "rules": rules})
    };
    let mutating = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "serin"},
        "webhooks": [hook("hold.deployments.serin.dev", "/mutate",
            json!([{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["deployments"]}]))]
    });
    let validating = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "serin"},
        "webhooks": [hook("validate.flagger.app.serin.dev", "/validate",
            json!([{"apiGroups": ["flagger.app"], "apiVersions": ["v1beta1"], "operations": ["CREATE", "UPDATE"],
                    "resources": ["canaries", "metrictemplates", "alertproviders"]}]))]
    });
    (mutating, validating)
}

fn template(image: &str) -> Value {
    json!({"metadata": {"labels": {"app": "web"}},
           "spec": {"containers": [{"name": "web", "image": image}]}})
}

fn deployment(image: &str, stable: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "prod",
                     "labels": {"app": "web", CANARY_LABEL: "web"},
                     "annotations": {STABLE_HASH_ANNOTATION: stable}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": template(image)}
    }))
    .unwrap()
}

fn canary(name: &str, max_weight: i64) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
        "metadata": {"name": name, "namespace": "prod"},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "service": {"port": 80},
                 "analysis": {"interval": "1m", "threshold": 5, "maxWeight": max_weight, "stepWeight": 10}}
    }))
    .unwrap()
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn self_signed_ca_bundle_then_holds_and_validates_through_the_api() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let api = ApiServer::default();
    for crd in serin_api::crd::crds() {
        api.seed(serde_json::to_value(crd).unwrap()).unwrap();
    }
    api.seed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}}))
        .unwrap();
    let client = api.client();

    // No configuration yet: a clear error naming the flag.
    let made = generate(dns_names(SERVICE, NAMESPACE)).unwrap();
    let err = patch_ca_bundle(client.clone(), "serin", &made.ca_pem)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("--webhook-config-name"), "{err}");

    let (mutating, validating) = configurations();
    api.seed(mutating).unwrap();
    api.seed(validating).unwrap();
    let report = patch_ca_bundle(client.clone(), "serin", &made.ca_pem)
        .await
        .unwrap();
    assert_eq!(
        report,
        CaBundleReport {
            mutating: Some(1),
            validating: Some(1)
        }
    );
    let expected = base64::engine::general_purpose::STANDARD.encode(&made.ca_pem);
    let m = Api::<MutatingWebhookConfiguration>::all(client.clone())
        .get("serin")
        .await
        .unwrap();
    let v = Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .get("serin")
        .await
        .unwrap();
    for bundle in [
        &m.webhooks.unwrap()[0].client_config.ca_bundle,
        &v.webhooks.unwrap()[0].client_config.ca_bundle,
    ] {
        let bundle = bundle.as_ref().expect("caBundle set");
        assert_eq!(
            base64::engine::general_purpose::STANDARD.encode(&bundle.0),
            expected
        );
    }

    // The webhook, serving the generated certificate, reached by the API server via the Service.
    let (index, drive) = KubeCanaryIndex::watch(client.clone(), None);
    tokio::spawn(drive);
    let cert = ReloadingCert::from_pem(&made.cert_pem, &made.key_pem).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(serin_webhook::serve_tls(
        listener,
        cert.server_config().unwrap(),
        AppState::new(index.clone()),
        std::future::pending(),
    ));
    api.set_service_address(&format!("{SERVICE}.{NAMESPACE}"), addr);
    wait_for("the Canary index to sync", || index.is_ready()).await;

    // Hold: the adopted Deployment runs; its next image is paused by the webhook.
    let deployments = Api::<Deployment>::namespaced(client.clone(), "prod");
    let stable = template_hash(&template("web:1"));
    let created = deployments
        .create(&PostParams::default(), &deployment("web:1", &stable))
        .await
        .unwrap();
    assert_ne!(created.spec.as_ref().unwrap().paused, Some(true));
    let image_update = json!({"spec": {"template": template("web:2")}});
    let held = deployments
        .patch(
            "web",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&image_update),
        )
        .await
        .unwrap();
    assert_eq!(held.spec.unwrap().paused, Some(true));

    // Validation: an invalid Canary is refused with its field path; a valid one is stored; a
    // second Canary on the same Deployment is refused once the index has seen the first.
    let resource = kube::api::ApiResource {
        group: "flagger.app".into(),
        version: "v1beta1".into(),
        api_version: "flagger.app/v1beta1".into(),
        kind: "Canary".into(),
        plural: "canaries".into(),
    };
    let canaries = Api::<DynamicObject>::namespaced_with(client.clone(), "prod", &resource);
    let err = canaries
        .create(&PostParams::default(), &canary("web", 150))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("spec.analysis.maxWeight"), "{err}");
    canaries
        .create(&PostParams::default(), &canary("web", 50))
        .await
        .unwrap();
    wait_for("the index to see canary prod/web", || {
        index.targeting("prod", "Deployment", "web") == ["web"]
    })
    .await;
    let err = canaries
        .create(&PostParams::default(), &canary("web-again", 50))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("deployment/web is already the target of canary prod/web"),
        "{err}"
    );
    server.abort();
}
