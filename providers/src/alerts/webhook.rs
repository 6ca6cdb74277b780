//! serin's generic JSON alert: every field of the [`Alert`], for a receiver of one's own.

use serde_json::Value;

use super::Alert;

pub fn payload(alert: &Alert) -> Value {
    serde_json::to_value(alert).unwrap_or(Value::Null)
}
