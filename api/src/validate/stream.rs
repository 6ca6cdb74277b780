//! Text to documents: multi-document YAML (`---`), or JSON, with a size limit and parse errors
//! that carry the line.

use std::fmt;

use serde_json::Value;

/// Inputs larger than this are refused before parsing: manifests are kilobytes, and a parser
/// given hundreds of megabytes would only burn memory. 16 MiB is above anything `kubectl apply`
/// accepts in one object (etcd's limit is 1.5 MiB).
pub const MAX_INPUT_BYTES: usize = 16 * 1024 * 1024;

/// Why a text could not be read as manifests, with the 1-based line and column when known.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    pub line: Option<u64>,
    pub column: Option<u64>,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => {
                write!(f, "line {line}, column {column}: {}", self.message)
            }
            (Some(line), None) => write!(f, "line {line}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl ParseError {
    fn whole(message: impl Into<String>) -> Self {
        Self {
            line: None,
            column: None,
            message: message.into(),
        }
    }
}

/// Parses the documents of a text: JSON when it starts with `{` or `[` (a `List` or an array
/// is flattened into its items), else multi-document YAML. Empty documents are skipped, so
/// indices count the non-empty ones. Every document must be a mapping.
pub fn parse_stream(text: &str) -> Result<Vec<Value>, ParseError> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(ParseError::whole(format!(
            "input is {} bytes, over the limit of {} MiB; split it into smaller files",
            text.len(),
            MAX_INPUT_BYTES / (1024 * 1024)
        )));
    }
    if let Some(offset) = text.find('\0') {
        let line = text[..offset].matches('\n').count() as u64 + 1;
        return Err(ParseError {
            line: Some(line),
            column: None,
            message: "binary data (a NUL byte): expected YAML or JSON text".into(),
        });
    }
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    let raw = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        parse_json(text)?
    } else {
        parse_yaml(text)?
    };
    let mut docs = Vec::new();
    for (index, doc) in raw.into_iter().enumerate() {
        flatten(doc, index + 1, &mut docs)?;
    }
    Ok(docs)
}

fn parse_json(text: &str) -> Result<Vec<Value>, ParseError> {
    let mut docs = Vec::new();
    for item in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
        match item {
            Ok(doc) => docs.push(doc),
            Err(err) => {
                return Err(ParseError {
                    line: Some(err.line() as u64),
                    column: Some(err.column() as u64),
                    message: format!("invalid JSON: {}", strip_position(&err.to_string())),
                });
            }
        }
    }
    Ok(docs)
}

fn parse_yaml(text: &str) -> Result<Vec<Value>, ParseError> {
    // The parser's default budget (1024 documents, 250k nodes) is sized for one config file;
    // a manifest dump has more. The input size limit bounds the work instead; the depth limit
    // (64) stays, no manifest nests deeper.
    let options = serde_saphyr::options! {
        with_snippet: false,
        budget: serde_saphyr::budget! {
            max_documents: MAX_INPUT_BYTES / 16,
            max_nodes: MAX_INPUT_BYTES / 2,
            max_events: MAX_INPUT_BYTES,
        },
    };
    serde_saphyr::from_multiple_with_options::<Value>(text, options).map_err(|err| {
        let location = err.location().filter(|l| l.line() > 0);
        ParseError {
            line: location.map(|l| l.line()),
            column: location.map(|l| l.column()),
            message: format!("invalid YAML: {}", strip_position(&err.to_string())),
        }
    })
}

/// Parsers append "at line X column Y"; the position is reported separately. The parser's
/// resource limits are put in the user's terms.
fn strip_position(message: &str) -> String {
    let first = message.lines().next().unwrap_or(message);
    if first.contains("budget breached") {
        return if first.contains("Depth") {
            "nested deeper than 64 levels; no manifest is that deep, is this the right file?".into()
        } else {
            format!("too large or too complex for a manifest ({first})")
        };
    }
    let first = match first.find(" at line ") {
        Some(i) => &first[..i],
        None => first,
    };
    // The parser's advice addresses programmers; the user needs the fix in the file.
    match first.split_once(", set DuplicateKeyPolicy") {
        Some((head, _)) => format!("{head}; keep only one of them"),
        None => first.to_string(),
    }
}

/// A `kind: List` (what `kubectl get -o yaml` prints) or a JSON array stands for its items.
fn flatten(doc: Value, index: usize, out: &mut Vec<Value>) -> Result<(), ParseError> {
    match doc {
        Value::Null => Ok(()),
        Value::Array(items) => items.into_iter().try_for_each(|d| flatten(d, index, out)),
        Value::Object(mut map) => {
            let is_list = map.get("kind").and_then(Value::as_str) == Some("List");
            match map.remove("items") {
                Some(Value::Array(items)) if is_list => {
                    items.into_iter().try_for_each(|d| flatten(d, index, out))
                }
                Some(items) => {
                    map.insert("items".into(), items);
                    out.push(Value::Object(map));
                    Ok(())
                }
                None => {
                    out.push(Value::Object(map));
                    Ok(())
                }
            }
        }
        other => Err(ParseError::whole(format!(
            "document {index} is a {}, not a manifest: expected a mapping with apiVersion, kind, \
             metadata and spec",
            match other {
                Value::String(_) => "plain string",
                Value::Number(_) => "number",
                Value::Bool(_) => "boolean",
                _ => "value",
            }
        ))),
    }
}
