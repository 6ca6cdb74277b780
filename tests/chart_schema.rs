//! The chart offers exactly the traffic providers serin drives: its values schema and its RBAC
//! template are kept equal to `serin_api::provider::TrafficProvider`, so a provider cannot be
//! accepted by `helm install` and then refused (or silently ignored) by the controller.

use std::path::Path;

use serde_json::Value;
use serin_api::provider::{TRAFFIC_PROVIDER_NAMES, TrafficProvider};

fn chart_file(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("charts/serin")
        .join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn mesh_provider_enum_is_the_driven_providers() {
    let schema: Value = serde_json::from_str(&chart_file("values.schema.json")).unwrap();
    let listed: Vec<&str> = schema["properties"]["meshProvider"]["enum"]
        .as_array()
        .expect("meshProvider has an enum")
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mut expected = vec![""];
    expected.extend(TrafficProvider::cluster_names());
    assert_eq!(
        listed, expected,
        "charts/serin/values.schema.json meshProvider.enum differs from TrafficProvider"
    );
}

#[test]
fn rbac_grants_every_driven_router_and_no_refused_one() {
    let rbac = chart_file("templates/_rbac.tpl");
    for name in TRAFFIC_PROVIDER_NAMES {
        let p = TrafficProvider::parse(name).unwrap();
        let family = p.family();
        let granted = rbac.contains(&format!("\"{family}\""));
        let driven = TrafficProvider::cluster_names().any(|n| n == name);
        if driven && p != TrafficProvider::Kubernetes {
            assert!(granted, "_rbac.tpl grants nothing for {name}");
        }
        if !driven && TrafficProvider::cluster_names().all(|n| !n.starts_with(family)) {
            assert!(!granted, "_rbac.tpl grants {name}, which serin refuses");
        }
    }
}
