//! Google Chat incoming webhook: a `text` message (Chat's own markup: `*bold*`).

use serde_json::{Value, json};

use super::Alert;

pub fn payload(alert: &Alert) -> Value {
    let mut text = format!(
        "*{}* ({})\n{}",
        alert.title(),
        alert.severity.as_str(),
        alert.message
    );
    for (k, v) in alert.fields() {
        text.push_str(&format!("\n*{k}:* {v}"));
    }
    json!({ "text": text })
}
