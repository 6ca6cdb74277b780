//! `--self-signed`: a CA and a serving certificate made at start, and the CA written into the
//! `caBundle` of serin's webhook configurations, so the chart needs no cert-manager.

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

use crate::tls::TlsError;

/// A freshly made CA and the serving certificate it signed, all PEM.
pub struct SelfSigned {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// The DNS names the API server may use for Service `name` in `namespace`.
pub fn dns_names(name: &str, namespace: &str) -> Vec<String> {
    vec![
        name.to_string(),
        format!("{name}.{namespace}"),
        format!("{name}.{namespace}.svc"),
        format!("{name}.{namespace}.svc.cluster.local"),
    ]
}

/// Makes a CA and a serving certificate for `names` (DNS names or IP addresses).
pub fn generate(names: Vec<String>) -> Result<SelfSigned, TlsError> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "serin webhook CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key)?;

    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names.clone())?;
    params.distinguished_name.push(
        DnType::CommonName,
        names.first().cloned().unwrap_or_default(),
    );
    let cert = params.signed_by(&key, &ca)?;
    Ok(SelfSigned {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

#[derive(Debug, thiserror::Error)]
pub enum CaBundleError {
    #[error(
        "neither MutatingWebhookConfiguration nor ValidatingWebhookConfiguration {0:?} exists: install the chart's webhook configurations or pass --webhook-config-name"
    )]
    NotFound(String),
    #[error("{kind} {name}: {source}")]
    Api {
        kind: &'static str,
        name: String,
        source: kube::Error,
    },
}

/// What [`patch_ca_bundle`] changed: the number of webhooks updated per configuration (`None`
/// when that configuration does not exist).
#[derive(Debug, PartialEq, Eq)]
pub struct CaBundleReport {
    pub mutating: Option<usize>,
    pub validating: Option<usize>,
}

/// Writes `ca_pem` into `clientConfig.caBundle` of every webhook of the Mutating- and
/// ValidatingWebhookConfiguration named `name`. Read-modify-replace, retried on conflict.
pub async fn patch_ca_bundle(
    client: kube::Client,
    name: &str,
    ca_pem: &str,
) -> Result<CaBundleReport, CaBundleError> {
    let bundle = ByteString(ca_pem.as_bytes().to_vec());
    let mutating = update(
        kube::Api::<MutatingWebhookConfiguration>::all(client.clone()),
        "MutatingWebhookConfiguration",
        name,
        |config| {
            let hooks = config.webhooks.get_or_insert_with(Vec::new);
            for hook in hooks.iter_mut() {
                hook.client_config.ca_bundle = Some(bundle.clone());
            }
            hooks.len()
        },
    )
    .await?;
    let validating = update(
        kube::Api::<ValidatingWebhookConfiguration>::all(client),
        "ValidatingWebhookConfiguration",
        name,
        |config| {
            let hooks = config.webhooks.get_or_insert_with(Vec::new);
            for hook in hooks.iter_mut() {
                hook.client_config.ca_bundle = Some(bundle.clone());
            }
            hooks.len()
        },
    )
    .await?;
    if mutating.is_none() && validating.is_none() {
        return Err(CaBundleError::NotFound(name.to_string()));
    }
    Ok(CaBundleReport {
        mutating,
        validating,
    })
}

async fn update<K>(
    api: kube::Api<K>,
    kind: &'static str,
    name: &str,
    set: impl Fn(&mut K) -> usize,
) -> Result<Option<usize>, CaBundleError>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + serde::Serialize,
{
    const ATTEMPTS: usize = 5;
    let fail = |source| CaBundleError::Api {
        kind,
        name: name.to_string(),
        source,
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let Some(mut object) = api.get_opt(name).await.map_err(fail)? else {
            return Ok(None);
        };
        let count = set(&mut object);
        match api
            .replace(name, &kube::api::PostParams::default(), &object)
            .await
        {
            Ok(_) => return Ok(Some(count)),
            // Someone else wrote in between: read again and retry.
            Err(kube::Error::Api(status)) if status.code == 409 && attempt < ATTEMPTS => {}
            Err(err) => return Err(fail(err)),
        }
    }
}
