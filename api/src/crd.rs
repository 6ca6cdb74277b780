//! The three CustomResourceDefinitions, as `serin crds` prints them.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube_core::CustomResourceExt;

use crate::{AlertProvider, Canary, MetricTemplate};

/// Canary, MetricTemplate and AlertProvider CRDs.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![Canary::crd(), MetricTemplate::crd(), AlertProvider::crd()]
}

/// The CRDs as one multi-document YAML stream.
pub fn crds_yaml() -> String {
    crds()
        .iter()
        .map(|crd| serde_saphyr::to_string(crd).expect("a CRD serialises to YAML"))
        .map(|doc| format!("---\n{doc}"))
        .collect()
}
