//! Random input never panics the parser or the validator: it parses or fails with a message.

use proptest::prelude::*;
use serde_json::json;
use serin_api::validate::{parse_stream, validate_document, validate_stream};

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_text(text in "\\PC{0,400}") {
        if let Err(e) = validate_stream(&text) {
            prop_assert!(!e.message.is_empty());
        }
    }

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = validate_stream(&text);
    }

    /// YAML-looking noise: keys and indentation from the real vocabulary, random values.
    #[test]
    fn yaml_like(lines in proptest::collection::vec(
        ("[ ]{0,8}", prop::sample::select(vec!["apiVersion: flagger.app/v1beta1", "kind: Canary",
            "kind: MetricTemplate", "kind: AlertProvider", "spec:", "analysis:", "stepWeight:",
            "- name:", "metrics:", "---", "service:", "port:", "metadata:", "name: x", "query:",
            "provider:", "type:", "thresholdRange:", "webhooks:", "url:", "[", "{", "&a", "*a"]),
         "[a-z0-9 :\\-\"{}\\[\\],]{0,12}"), 0..30)) {
        let text: String = lines.into_iter().map(|(i, k, v)| format!("{i}{k}{v}\n")).collect();
        let _ = validate_stream(&text);
    }

    /// Any JSON value in any field position is judged, not panicked on.
    #[test]
    fn random_values_in_a_canary(value in json_value(), field in prop::sample::select(vec![
        "interval", "stepWeight", "stepWeights", "metrics", "webhooks", "match", "sessionAffinity",
        "alerts", "threshold", "maxWeight", "iterations"])) {
        let mut doc = json!({"apiVersion": "flagger.app/v1beta1", "kind": "Canary",
            "metadata": {"name": "web"},
            "spec": {"targetRef": {"kind": "Deployment", "name": "web"}, "service": {"port": 80},
                     "analysis": {"interval": "1m", "stepWeight": 10}}});
        doc["spec"]["analysis"][field] = value;
        let _ = validate_document(&doc);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// A real manifest with a few bytes changed, cut or repeated: near-valid input is where a
    /// validator meets odd shapes.
    #[test]
    fn mutated_seed(edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8)) {
        let mut bytes = SEED.as_bytes().to_vec();
        for (at, byte, op) in edits {
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => { bytes.truncate(i); if bytes.is_empty() { bytes.push(byte); } }
                _ => { let tail = bytes[i..].to_vec(); bytes.extend_from_slice(&tail[..tail.len().min(64)]); }
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(found) = validate_stream(&text) {
            for (doc, d) in found {
                prop_assert!(doc >= 1);
                prop_assert!(!d.message.is_empty());
            }
        }
    }
}

const SEED: &str = include_str!("../../tests/fixtures/valid/everything.yaml");

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        (-1e12f64..1e12).prop_map(serde_json::Value::from),
        "\\PC{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            proptest::collection::btree_map("[a-zA-Z]{1,10}", inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn deep_nesting_is_refused_with_a_message() {
    let yaml = format!("{}x\n", "- ".repeat(5000));
    let err = parse_stream(&yaml).expect_err("5000 levels of nesting");
    assert!(!err.message.is_empty());
    let flow = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(parse_stream(&flow).is_err());
    let json_like = format!(
        "{{\"a\":{}1{}}}",
        "{\"a\":".repeat(10_000),
        "}".repeat(10_000)
    );
    assert!(parse_stream(&json_like).is_err());
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let big = "a: b\n".repeat(4 * 1024 * 1024); // 20 MiB
    let err = parse_stream(&big).unwrap_err();
    assert!(err.message.contains("over the limit of 16 MiB"), "{err}");
}

#[test]
fn non_manifests_are_named() {
    let err = parse_stream("hello world\n").unwrap_err();
    assert!(
        err.message.contains("plain string, not a manifest"),
        "{err}"
    );
    let err = parse_stream("a: [1, 2\n").unwrap_err();
    assert!(err.line.is_some(), "{err:?}");
    let err = parse_stream("{\"kind\": \"Canary\",\n \"spec\": }").unwrap_err();
    assert_eq!(err.line, Some(2), "{err:?}");
    let err = parse_stream("kind: Canary\nkind: Canary\n").unwrap_err();
    assert_eq!(err.line, Some(2), "{err:?}");
    assert!(
        err.message
            .ends_with("duplicate mapping key: kind; keep only one of them"),
        "{err}"
    );
    assert!(parse_stream("").unwrap().is_empty());
    assert!(parse_stream("# only a comment\n---\n").unwrap().is_empty());
}

#[test]
fn lists_are_flattened() {
    let docs = parse_stream(
        "apiVersion: v1\nkind: List\nitems:\n  - kind: Canary\n    metadata: {name: a}\n  - kind: Canary\n    metadata: {name: b}\n",
    )
    .unwrap();
    assert_eq!(docs.len(), 2);
}

/// A dump of thousands of manifests is read whole: the parser's per-file budget is sized by the
/// input limit, not by its defaults for a single config file.
#[test]
fn many_documents_are_read() {
    let doc = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\n---\n";
    let docs = parse_stream(&doc.repeat(5000)).unwrap();
    assert_eq!(docs.len(), 5000);
}
