//! Go-style durations (`10s`, `1m`, `1m30s`, `500ms`, `1h`), as Flagger's fields take them.
//!
//! Fields keep the text the user wrote ([`GoDuration`] wraps a `String`) so that a manifest
//! round-trips byte for byte and validation can report every bad duration with its field path
//! instead of failing the whole document at deserialisation.

use std::fmt;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration: write a number and a unit, e.g. 30s, 1m or 1m30s")]
    Empty,
    #[error(
        "invalid duration {0:?}: expected a number and a unit (ns, us, ms, s, m, h), e.g. 30s, 1m or 1m30s"
    )]
    Invalid(String),
    #[error("invalid duration {0:?}: missing unit after {1}; write e.g. {1}s or {1}m")]
    MissingUnit(String, String),
    #[error("invalid duration {0:?}: unknown unit {1:?}; use ns, us, ms, s, m or h")]
    UnknownUnit(String, String),
    #[error("invalid duration {0:?}: negative durations are not allowed")]
    Negative(String),
    #[error("invalid duration {0:?}: too large")]
    Overflow(String),
}

/// Parses a Go `time.ParseDuration` string. Negative values are refused because no field of a
/// Canary means anything with them.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if s.starts_with('-') {
        return Err(DurationError::Negative(text.to_string()));
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut total: u128 = 0; // nanoseconds
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        let number = &s[start..i];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(DurationError::Invalid(text.to_string()));
        }
        let ustart = i;
        while i < bytes.len() && !(bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        let unit = &s[ustart..i];
        let scale: u128 = match unit {
            "" => {
                return Err(DurationError::MissingUnit(
                    text.to_string(),
                    number.to_string(),
                ));
            }
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            other => {
                return Err(DurationError::UnknownUnit(
                    text.to_string(),
                    other.to_string(),
                ));
            }
        };
        let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
        let int: u128 = if int_part.is_empty() {
            0
        } else {
            int_part
                .parse()
                .map_err(|_| DurationError::Overflow(text.to_string()))?
        };
        let mut value = int
            .checked_mul(scale)
            .ok_or_else(|| DurationError::Overflow(text.to_string()))?;
        let mut frac_scale = scale;
        for d in frac_part.bytes().take(18) {
            frac_scale /= 10;
            value += u128::from(d - b'0') * frac_scale;
        }
        total = total
            .checked_add(value)
            .ok_or_else(|| DurationError::Overflow(text.to_string()))?;
    }
    let secs = u64::try_from(total / 1_000_000_000)
        .map_err(|_| DurationError::Overflow(text.to_string()))?;
    Ok(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// Formats a duration the way Go prints it (`1m30s`, `500ms`, `1h0m0s` is shortened to `1h`).
pub fn format(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    let nanos = d.as_nanos();
    if nanos < 1_000_000_000 {
        return if nanos.is_multiple_of(1_000_000) {
            format!("{}ms", nanos / 1_000_000)
        } else if nanos.is_multiple_of(1_000) {
            format!("{}us", nanos / 1_000)
        } else {
            format!("{nanos}ns")
        };
    }
    let mut out = String::new();
    let total_secs = d.as_secs();
    let (h, m, s) = (total_secs / 3600, (total_secs % 3600) / 60, total_secs % 60);
    let sub = d.subsec_nanos();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || sub > 0 {
        if sub > 0 {
            let frac = format!("{:09}", sub);
            out.push_str(&format!("{s}.{}s", frac.trim_end_matches('0')));
        } else {
            out.push_str(&format!("{s}s"));
        }
    }
    out
}

/// A duration field as written in the manifest. Parse it with [`GoDuration::parse`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct GoDuration(pub String);

impl GoDuration {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }
    pub fn parse(&self) -> Result<Duration, DurationError> {
        parse(&self.0)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for GoDuration {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

impl From<Duration> for GoDuration {
    fn from(d: Duration) -> Self {
        Self(format(d))
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_forms() {
        assert_eq!(parse("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse("2h45m").unwrap(), Duration::from_secs(9900));
        assert_eq!(parse("0").unwrap(), Duration::ZERO);
        assert_eq!(parse("250us").unwrap(), Duration::from_micros(250));
    }

    #[test]
    fn rejects_bad_forms_with_reason() {
        assert!(matches!(parse(""), Err(DurationError::Empty)));
        assert!(matches!(parse("10"), Err(DurationError::MissingUnit(..))));
        assert!(matches!(parse("10x"), Err(DurationError::UnknownUnit(..))));
        assert!(matches!(parse("-1s"), Err(DurationError::Negative(..))));
        assert!(matches!(parse("ten"), Err(DurationError::Invalid(..))));
        assert!(matches!(parse("1..2s"), Err(DurationError::Invalid(..))));
        assert!(matches!(
            parse("99999999999999999999999h"),
            Err(DurationError::Overflow(..))
        ));
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format(Duration::from_secs(90)), "1m30s");
        assert_eq!(format(Duration::from_millis(500)), "500ms");
        assert_eq!(format(Duration::from_secs(3600)), "1h");
        assert_eq!(format(Duration::from_secs(10)), "10s");
        assert_eq!(format(Duration::from_millis(1500)), "1.5s");
        for text in ["10s", "1m30s", "500ms", "1h", "2h45m10s"] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
    }
}
