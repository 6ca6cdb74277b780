//! The Services of the object model: `<svc>-primary` (the target's selector), `<svc>-canary`
//! (the same selector with the selector label's value `<value>-canary`) and the apex `<svc>`,
//! created only when absent so a Service the user already has keeps serving untouched. The
//! selector is the target workload's, whatever its kind.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serin_api::Canary;
use serin_api::labels::{CANARY_LABEL, CANARY_SUFFIX, PRIMARY_SUFFIX};

use crate::workload::owner_reference;

/// Creates or updates the primary and canary Services and creates the apex if absent.
pub async fn ensure(
    api: &Api<Service>,
    canary: &Canary,
    match_labels: &BTreeMap<String, String>,
    label: &(String, String),
) -> Result<(), kube::Error> {
    let svc = canary.spec.service_name().to_string();
    let selector = match_labels.clone();
    let mut canary_selector = selector.clone();
    canary_selector.insert(label.0.clone(), format!("{}{CANARY_SUFFIX}", label.1));

    let primary = service(
        canary,
        &format!("{svc}{PRIMARY_SUFFIX}"),
        selector.clone(),
        true,
    );
    let canary_svc = service(
        canary,
        &format!("{svc}{CANARY_SUFFIX}"),
        canary_selector,
        true,
    );
    for s in [primary, canary_svc] {
        upsert(api, s).await?;
    }
    match api.get_opt(&svc).await? {
        Some(_) => {}
        None => {
            api.create(
                &PostParams::default(),
                &service(canary, &svc, selector, true),
            )
            .await?;
        }
    }
    Ok(())
}

async fn upsert(api: &Api<Service>, svc: Service) -> Result<(), kube::Error> {
    let name = svc.name_any();
    match api.get_opt(&name).await? {
        None => {
            api.create(&PostParams::default(), &svc).await?;
        }
        Some(existing) => {
            let current = existing.spec.clone().unwrap_or_default();
            let wanted = svc.spec.clone().unwrap_or_default();
            if current.selector != wanted.selector || current.ports != wanted.ports {
                let patch = serde_json::json!({"spec": {"selector": wanted.selector, "ports": wanted.ports}});
                api.patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                    .await?;
            }
        }
    }
    Ok(())
}

fn service(
    canary: &Canary,
    name: &str,
    selector: BTreeMap<String, String>,
    owned: bool,
) -> Service {
    let s = &canary.spec.service;
    let port = ServicePort {
        name: Some(s.port_name.clone().unwrap_or_else(|| "http".into())),
        port: s.port,
        target_port: Some(s.target_port.clone().unwrap_or(IntOrString::Int(s.port))),
        app_protocol: s.app_protocol.clone(),
        protocol: Some("TCP".into()),
        ..Default::default()
    };
    let mut labels = BTreeMap::new();
    labels.insert(CANARY_LABEL.to_string(), canary.name_any());
    Service {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: canary.namespace(),
            labels: Some(labels),
            owner_references: if owned {
                owner_reference(canary).map(|o| vec![o])
            } else {
                None
            },
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            selector: Some(selector),
            ports: Some(vec![port]),
            type_: Some("ClusterIP".into()),
            cluster_ip: if s.headless.unwrap_or(false) {
                Some("None".into())
            } else {
                None
            },
            ..Default::default()
        }),
        status: None,
    }
}
