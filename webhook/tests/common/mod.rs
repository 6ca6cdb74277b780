//! Test support: the webhook served in-process over real TLS on 127.0.0.1 with a certificate
//! from a CA made with rcgen, and a reqwest client that trusts only that CA.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Value, json};
use serin_webhook::{AppState, CanaryIndex, Limits, ReloadingCert};

pub struct Ca {
    pub pem: String,
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let issuer =
            rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap())
                .unwrap();
        Ca {
            pem: issuer.pem(),
            issuer,
        }
    }

    /// A serving certificate for 127.0.0.1 and localhost: (cert PEM, key PEM).
    pub fn issue(&self) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(self.pem.as_bytes()).unwrap()])
            .build()
            .unwrap()
    }
}

pub struct Server {
    pub url: String,
    pub ca: Ca,
    pub client: reqwest::Client,
    pub cert: Arc<ReloadingCert>,
    pub dir: tempfile::TempDir,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub state: Arc<AppState>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the webhook over TLS with certificate files in a temporary directory.
pub async fn start(index: Arc<dyn CanaryIndex>) -> Server {
    start_with(index, Limits::default()).await
}

/// [`start`] within `limits`.
pub async fn start_with(index: Arc<dyn CanaryIndex>, limits: Limits) -> Server {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let ca = Ca::new("test CA");
    let (cert_pem, key_pem) = ca.issue();
    let dir = tempfile::tempdir().unwrap();
    let cert_file = dir.path().join("tls.crt");
    let key_file = dir.path().join("tls.key");
    std::fs::write(&cert_file, cert_pem).unwrap();
    std::fs::write(&key_file, key_pem).unwrap();
    let cert = ReloadingCert::from_files(&cert_file, &key_file).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let state = AppState::with_limits(index, limits);
    let task = tokio::spawn(serin_webhook::serve_tls(
        listener,
        cert.server_config().unwrap(),
        state.clone(),
        std::future::pending(),
    ));
    let client = ca.client();
    Server {
        url,
        ca,
        client,
        cert,
        dir,
        cert_file,
        key_file,
        state,
        task,
    }
}

impl Server {
    /// POSTs `body` to `path`; returns the status and the JSON body.
    pub async fn post(&self, path: &str, body: Vec<u8>) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap();
        let value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "HTTP {status}: body is not JSON: {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        (status, value)
    }

    /// Sends a review and returns its `response`, checking the envelope on the way.
    pub async fn review(&self, path: &str, review: &Value) -> Value {
        let (status, body) = self.post(path, serde_json::to_vec(review).unwrap()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(body["kind"], "AdmissionReview");
        assert_eq!(body["response"]["uid"], review["request"]["uid"]);
        body["response"].clone()
    }
}

/// An AdmissionReview for `object` of kind `group/kind`.
pub fn review(
    group: &str,
    kind: &str,
    operation: &str,
    object: Option<Value>,
    old: Option<Value>,
) -> Value {
    let namespace = object
        .as_ref()
        .and_then(|o| o.pointer("/metadata/namespace"))
        .cloned()
        .unwrap_or(json!("prod"));
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": format!("uid-{kind}-{operation}"),
            "kind": {"group": group, "version": "v1", "kind": kind},
            "resource": {"group": group, "version": "v1", "resource": format!("{}s", kind.to_lowercase())},
            "operation": operation,
            "namespace": namespace,
            "name": object.as_ref().and_then(|o| o.pointer("/metadata/name")).cloned(),
            "userInfo": {"username": "kubernetes-admin"},
            "object": object,
            "oldObject": old,
            "dryRun": false
        }
    })
}

/// The JSON Patch a response carries (base64, patchType JSONPatch), or `None`.
pub fn patch_of(response: &Value) -> Option<Value> {
    let patch = response.get("patch")?.as_str()?;
    assert_eq!(response["patchType"], "JSONPatch");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(patch)
        .unwrap();
    Some(serde_json::from_slice(&bytes).unwrap())
}

/// Applies a response's patch to `object` the way the API server does.
pub fn apply(object: &Value, response: &Value) -> Value {
    let mut out = object.clone();
    if let Some(patch) = patch_of(response) {
        let patch: json_patch::Patch = serde_json::from_value(patch).unwrap();
        json_patch::patch(&mut out, &patch).unwrap();
    }
    out
}

pub fn warnings(response: &Value) -> Vec<String> {
    response["warnings"]
        .as_array()
        .map(|w| w.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}
