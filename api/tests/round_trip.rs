//! YAML ↔ JSON ↔ typed round trips of all three kinds: nothing a user writes is lost.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serin_api::validate::{Kind, parse_stream};
use serin_api::{AlertProvider, Canary, MetricTemplate};

fn manifests() -> Vec<(String, Value)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    let mut out = Vec::new();
    for dir in ["seeds", "valid"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            for doc in parse_stream(&text).unwrap() {
                out.push((path.display().to_string(), doc));
            }
        }
    }
    out
}

/// raw JSON → typed → JSON equals the raw JSON, and typed → YAML → typed equals typed.
fn round_trip<T>(file: &str, raw: &Value)
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    let typed: T = serde_json::from_value(raw.clone()).unwrap_or_else(|e| panic!("{file}: {e}"));
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(
        numbers_as_floats(back),
        numbers_as_floats(raw.clone()),
        "{file}: typed → JSON lost or changed something"
    );

    let yaml = serde_saphyr::to_string(&typed).unwrap();
    let again: T = serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("{file}: {e}\n{yaml}"));
    assert_eq!(
        again, typed,
        "{file}: typed → YAML → typed differs:\n{yaml}"
    );

    let json = serde_json::to_string(&typed).unwrap();
    let again: T = serde_json::from_str(&json).unwrap();
    assert_eq!(again, typed, "{file}: typed → JSON text → typed differs");
}

/// `max: 1` in a threshold reads back as `1.0` (an f64 field): the same number, compared as such.
fn numbers_as_floats(value: Value) -> Value {
    match value {
        Value::Number(n) => Value::from(n.as_f64().unwrap()),
        Value::Array(items) => Value::Array(items.into_iter().map(numbers_as_floats).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, numbers_as_floats(v)))
                .collect(),
        ),
        other => other,
    }
}

#[test]
fn every_kind_round_trips_without_loss() {
    let mut seen = Vec::new();
    for (file, doc) in manifests() {
        let kind = Kind::of(&doc).unwrap_or_else(|| panic!("{file}: not a serin kind"));
        match kind {
            Kind::Canary => round_trip::<Canary>(&file, &doc),
            Kind::MetricTemplate => round_trip::<MetricTemplate>(&file, &doc),
            Kind::AlertProvider => round_trip::<AlertProvider>(&file, &doc),
        }
        seen.push(kind);
    }
    for kind in Kind::ALL {
        assert!(seen.contains(&kind), "no fixture of kind {kind:?}");
    }
}

/// The rich fixture really sets the fields it claims to (a round trip of empty objects would
/// prove nothing).
#[test]
fn rich_fixture_keeps_nested_fields() {
    let canary = manifests()
        .into_iter()
        .find(|(_, d)| d.pointer("/metadata/name") == Some(&Value::from("shop")))
        .map(|(_, d)| serde_json::from_value::<Canary>(d).unwrap())
        .expect("the shop Canary in tests/fixtures/valid");
    let a = canary.spec.analysis.as_ref().unwrap();
    assert_eq!(a.step_weight, Some(20));
    assert_eq!(
        a.session_affinity
            .as_ref()
            .unwrap()
            .primary_cookie_name
            .as_deref(),
        Some("shop-primary")
    );
    let retries = canary.spec.service.retries.as_ref().unwrap();
    assert_eq!(retries.per_try_timeout.as_ref().unwrap().as_str(), "1s");
    let policy = canary.spec.service.traffic_policy.as_ref().unwrap();
    assert_eq!(policy.0["tls"]["mode"], "ISTIO_MUTUAL");
    assert_eq!(canary.spec.webhooks()[1].retries, Some(2));
}
