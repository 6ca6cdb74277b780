//! Microsoft Teams' legacy connector MessageCard; red theme for errors, as Flagger's.

use serde_json::{Value, json};

use super::{Alert, Severity};

pub fn payload(alert: &Alert) -> Value {
    let theme = match alert.severity {
        Severity::Error => "FF0000",
        Severity::Warn => "FFA500",
        Severity::Info => "0076D7",
    };
    let facts: Vec<Value> = alert
        .fields()
        .into_iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect();
    json!({
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "themeColor": theme,
        "summary": alert.title(),
        "sections": [{
            "activityTitle": alert.title(),
            "activitySubtitle": alert.message,
            "facts": facts,
        }],
    })
}
