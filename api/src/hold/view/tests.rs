use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::hash::workload_template_hash;

/// A member that may be absent, or of the expected shape, or of another one.
/// Boxed: nested unboxed strategies overflow a test thread's stack in debug builds.
fn member(expected: impl Strategy<Value = Value> + 'static) -> BoxedStrategy<Option<Value>> {
    prop_oneof![
        Just(None),
        expected.prop_map(Some),
        prop_oneof![
            Just(Value::Null),
            Just(json!(3)),
            Just(json!(true)),
            Just(json!(["x", {"y": 1}])),
            Just(json!({"z": "w"})),
            Just(json!("text")),
        ]
        .prop_map(Some),
    ]
    .boxed()
}

fn object(members: Vec<(&'static str, Option<Value>)>) -> Value {
    Value::Object(
        members
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
            .collect(),
    )
}

fn text() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("web")),
        Just(json!("0123456789abcdef")),
        Just(json!("é\"\\n"))
    ]
}

fn workload() -> impl Strategy<Value = Value> {
    let labels = member(
        (member(text()), member(text()))
            .prop_map(|(canary, app)| object(vec![(CANARY_LABEL, canary), ("app", app)])),
    );
    let annotations = member((member(text()), member(text()), member(text())).prop_map(
        |(stable, saved, other)| {
            object(vec![
                (STABLE_HASH_ANNOTATION, stable),
                (UPDATE_STRATEGY_ANNOTATION, saved),
                ("other", other),
            ])
        },
    ));
    let metadata = member(
        (member(text()), member(text()), labels, annotations).prop_map(
            |(name, namespace, labels, annotations)| {
                object(vec![
                    ("name", name),
                    ("namespace", namespace),
                    ("labels", labels),
                    ("annotations", annotations),
                    ("managedFields", Some(json!([{"manager": "kubectl"}]))),
                ])
            },
        ),
    );
    let template = prop_oneof![
        Just(
            json!({"metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "web:1", "resources": {}}]}})
        ),
        Just(json!({"spec": {"containers": [{"image": "web:2", "name": "web", "args": []}]}})),
        Just(json!({})),
    ];
    let spec = member(
        (
            member(any::<bool>().prop_map(Value::Bool)),
            member(Just(json!({"type": "OnDelete"}))),
            member(template),
        )
            .prop_map(|(paused, strategy, template)| {
                object(vec![
                    ("paused", paused),
                    ("updateStrategy", strategy),
                    ("template", template),
                    ("replicas", Some(json!(3))),
                ])
            }),
    );
    (member(text()), metadata, spec).prop_map(|(kind, metadata, spec)| {
        object(vec![
            ("kind", kind),
            ("metadata", metadata),
            ("spec", spec),
            ("status", Some(json!({"replicas": 3}))),
        ])
    })
}

fn view_of(text: &str) -> WorkloadView<'_> {
    serde_json::from_str(text).unwrap()
}

proptest! {
    #[test]
    fn view_reads_what_a_value_reads(value in workload()) {
        let text = value.to_string();
        let view = view_of(&text);
        prop_assert_eq!(view.facts(), Facts::of(&value));
        prop_assert_eq!(view.revision(), workload_template_hash(&value));
        let str_at = |pointer: &str| value.pointer(pointer).and_then(Value::as_str);
        prop_assert_eq!(view.kind.as_deref(), str_at("/kind"));
        prop_assert_eq!(view.name.as_deref(), str_at("/metadata/name"));
        prop_assert_eq!(view.namespace.as_deref(), str_at("/metadata/namespace"));
    }
}

#[test]
fn of_duplicate_keys_the_last_counts() {
    let text = r#"{"metadata": {"labels": {"serin.dev/canary": "a", "serin.dev/canary": 3},
                                "annotations": {"serin.dev/stable-hash": "x"}},
                   "metadata": {"labels": {"serin.dev/canary": "web"}},
                   "spec": {"paused": true, "template": {"a": 1}},
                   "spec": {"template": {"a": 1}, "template": {"a": 2}}}"#;
    let value: Value = serde_json::from_str(text).unwrap();
    let view = view_of(text);
    assert_eq!(view.facts(), Facts::of(&value));
    assert_eq!(view.facts().canary, Some("web"));
    assert_eq!(view.facts().stable_hash, None);
    assert!(!view.facts().paused);
    assert_eq!(view.revision(), workload_template_hash(&value));

    let text = r#"{"metadata": {"labels": {"serin.dev/canary": "web", "serin.dev/canary": 3},
                                "annotations": {"serin.dev/stable-hash": 1, "serin.dev/stable-hash": "x"}}}"#;
    let value: Value = serde_json::from_str(text).unwrap();
    let view = view_of(text);
    assert_eq!(view.facts(), Facts::of(&value));
    assert_eq!(view.facts().canary, None);
    assert_eq!(view.facts().stable_hash, Some("x"));
}

#[test]
fn anything_but_an_object_is_a_workload_with_nothing() {
    for text in ["null", "3", "\"web\"", "[1, {\"metadata\": {}}]", "true"] {
        let view = view_of(text);
        assert_eq!(view.facts(), Facts::default(), "{text}");
        assert_eq!(view.revision(), crate::hash::template_hash(&Value::Null));
    }
}

#[test]
fn malformed_text_is_an_error_even_where_nothing_is_read() {
    for text in [
        r#"{"status": {"replicas": 3,]}}"#,
        r#"{"metadata": {"managedFields": [{"a": }]}}"#,
        r#"{"spec": {"template": {"a" 1}}}"#,
        r#"{"metadata": {"labels": "#,
    ] {
        assert!(
            serde_json::from_str::<WorkloadView>(text).is_err(),
            "{text}"
        );
    }
}
