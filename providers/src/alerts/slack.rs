//! Slack's incoming-webhook payload: one attachment colored by severity. Discord (`/slack`
//! endpoint) and Rocket.Chat accept the same shape.

use serde_json::{Value, json};

use super::{Alert, Severity};

pub fn payload(alert: &Alert, channel: &str, username: &str) -> Value {
    let color = match alert.severity {
        Severity::Info => "good",
        Severity::Warn => "warning",
        Severity::Error => "danger",
    };
    let fields: Vec<Value> = alert
        .fields()
        .into_iter()
        .map(|(title, value)| json!({"title": title, "value": value, "short": title != "Checks"}))
        .collect();
    json!({
        "channel": channel,
        "username": username,
        "icon_emoji": ":rocket:",
        "text": "",
        "attachments": [{
            "color": color,
            "author_name": alert.title(),
            "text": alert.message,
            "mrkdwn_in": ["text"],
            "fields": fields,
        }],
    })
}
