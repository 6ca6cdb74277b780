//! Each alert target against a local server: the payload shape its service documents.

mod support;

use std::collections::BTreeMap;

use serin_api::alert::AlertProviderSpec;
use serin_providers::alerts::{Alert, AlertError, Kind, Notifier, Severity};
use support::Fake;

fn alert(severity: Severity) -> Alert {
    Alert {
        name: "web".into(),
        namespace: "shop".into(),
        cluster: "prod-eu".into(),
        severity,
        message: "Canary analysis failed: 5 failed checks, rolling back".into(),
        reason: "RollbackThreshold".into(),
        checks: vec!["request-success-rate: 91.2 < 99".into()],
        revision: "5d4f8c".into(),
        images: vec!["ghcr.io/acme/web:1.2.0".into()],
    }
}

fn notifier(type_: &str, fake: &Fake, token: Option<&str>) -> Notifier {
    let spec = AlertProviderSpec {
        type_: type_.into(),
        channel: Some("deploys".into()),
        address: Some("http://wrong.invalid/".into()),
        ..Default::default()
    };
    // The Secret's address wins over spec.address, as in Flagger.
    let mut secret = BTreeMap::new();
    secret.insert("address".to_string(), fake.address.clone().into_bytes());
    if let Some(t) = token {
        secret.insert("token".to_string(), t.as_bytes().to_vec());
    }
    Notifier::from_spec(&spec, &secret).unwrap()
}

fn body(fake: &Fake) -> serde_json::Value {
    serde_json::from_str(&fake.last().body).unwrap()
}

#[tokio::test]
async fn slack_attachment_colored_by_severity_with_token() {
    let fake = Fake::start().await;
    let n = notifier("slack", &fake, Some("xoxb-1"));
    n.send(&alert(Severity::Error)).await.unwrap();
    let seen = fake.last();
    assert_eq!(seen.headers["authorization"], "Bearer xoxb-1");
    let b = body(&fake);
    assert_eq!(b["channel"], "deploys");
    assert_eq!(b["username"], "flagger");
    let a = &b["attachments"][0];
    assert_eq!(a["color"], "danger");
    assert_eq!(a["author_name"], "web.shop");
    assert!(a["text"].as_str().unwrap().contains("rolling back"));
    let fields = a["fields"].as_array().unwrap();
    let field = |t: &str| {
        fields
            .iter()
            .find(|f| f["title"] == t)
            .unwrap_or_else(|| panic!("no field {t}: {fields:?}"))["value"]
            .clone()
    };
    assert_eq!(field("Cluster"), "prod-eu");
    assert_eq!(field("Reason"), "RollbackThreshold");
    assert_eq!(field("Revision"), "5d4f8c");
    assert_eq!(field("Images"), "ghcr.io/acme/web:1.2.0");
    assert!(field("Checks").as_str().unwrap().contains("91.2"));

    n.send(&alert(Severity::Info)).await.unwrap();
    assert_eq!(body(&fake)["attachments"][0]["color"], "good");
}

#[tokio::test]
async fn msteams_message_card() {
    let fake = Fake::start().await;
    let n = notifier("msteams", &fake, None);
    n.send(&alert(Severity::Error)).await.unwrap();
    assert!(!fake.last().headers.contains_key("authorization"));
    let b = body(&fake);
    assert_eq!(b["@type"], "MessageCard");
    assert_eq!(b["themeColor"], "FF0000");
    let s = &b["sections"][0];
    assert_eq!(s["activityTitle"], "web.shop");
    assert!(s["activitySubtitle"].as_str().unwrap().contains("failed"));
    assert!(
        s["facts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "Cluster" && f["value"] == "prod-eu")
    );
}

#[tokio::test]
async fn discord_posts_slack_payload_to_slack_endpoint() {
    let fake = Fake::start().await;
    let n = notifier("discord", &fake, None);
    assert_eq!(n.kind(), Kind::Discord);
    n.send(&alert(Severity::Warn)).await.unwrap();
    assert_eq!(fake.last().path, "/slack");
    assert_eq!(body(&fake)["attachments"][0]["color"], "warning");
}

#[tokio::test]
async fn rocket_and_gchat() {
    let fake = Fake::start().await;
    notifier("rocket", &fake, None)
        .send(&alert(Severity::Info))
        .await
        .unwrap();
    let b = body(&fake);
    assert_eq!(b["channel"], "deploys");
    assert_eq!(b["attachments"][0]["author_name"], "web.shop");

    notifier("gchat", &fake, None)
        .send(&alert(Severity::Error))
        .await
        .unwrap();
    let text = body(&fake)["text"].as_str().unwrap().to_string();
    for part in [
        "*web.shop*",
        "rolling back",
        "prod-eu",
        "5d4f8c",
        "RollbackThreshold",
    ] {
        assert!(text.contains(part), "{part} missing from {text}");
    }
}

#[tokio::test]
async fn generic_webhook_has_every_field() {
    let fake = Fake::start().await;
    notifier("webhook", &fake, None)
        .send(&alert(Severity::Warn))
        .await
        .unwrap();
    let b = body(&fake);
    assert_eq!(b["name"], "web");
    assert_eq!(b["namespace"], "shop");
    assert_eq!(b["cluster"], "prod-eu");
    assert_eq!(b["severity"], "warn");
    assert_eq!(b["reason"], "RollbackThreshold");
    assert_eq!(b["revision"], "5d4f8c");
    assert_eq!(b["images"][0], "ghcr.io/acme/web:1.2.0");
    assert_eq!(b["checks"][0], "request-success-rate: 91.2 < 99");
}

#[tokio::test]
async fn failures_are_errors_with_the_service_answer() {
    let fake = Fake::start().await;
    fake.answer(404, "no_team");
    let err = notifier("slack", &fake, None)
        .send(&alert(Severity::Info))
        .await
        .unwrap_err();
    assert!(matches!(err, AlertError::Status { status: 404, .. }));
    assert!(err.to_string().contains("no_team"));
    assert_eq!(fake.count(), 1);

    let down = Notifier::new(Kind::Slack, "http://127.0.0.1:1", "c", "u", None, None).unwrap();
    assert!(matches!(
        down.send(&alert(Severity::Info)).await,
        Err(AlertError::Unreachable { .. })
    ));
}

#[tokio::test]
async fn proxy_is_used() {
    // The fake plays the proxy: a plain-HTTP request through a proxy arrives there with the
    // absolute URL of the real target.
    let proxy = Fake::start().await;
    let n = Notifier::new(
        Kind::Webhook,
        "http://alerts.example.invalid/hook",
        "c",
        "u",
        Some(&proxy.address),
        None,
    )
    .unwrap();
    n.send(&alert(Severity::Info)).await.unwrap();
    assert_eq!(proxy.last().path, "/hook");
    assert_eq!(proxy.last().headers["host"], "alerts.example.invalid");
}

#[test]
fn bad_configuration_is_named() {
    let spec = AlertProviderSpec {
        type_: "pagerduty".into(),
        ..Default::default()
    };
    let err = Notifier::from_spec(&spec, &BTreeMap::new()).unwrap_err();
    assert!(err.to_string().contains("slack, msteams"), "{err}");
    let spec = AlertProviderSpec {
        type_: "slack".into(),
        ..Default::default()
    };
    let err = Notifier::from_spec(&spec, &BTreeMap::new()).unwrap_err();
    assert!(matches!(err, AlertError::MissingAddress));
}
