//! A/B conditions (`analysis.match`) compiled for the embedded router: a request matches when
//! every condition of at least one entry holds (Istio's semantics, which Flagger follows).
//! Cookies are matched as Flagger's docs do, by a regex on the `cookie` header.

use std::collections::BTreeMap;

use http::{HeaderMap, Uri};
use regex::Regex;
use serin_api::canary::{HttpMatchRequest, StringMatch};

use super::RouterError;

#[derive(Clone, Debug)]
enum Cond {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Regex(Regex),
}

impl Cond {
    fn compile(m: &StringMatch, path: &str) -> Result<Self, RouterError> {
        if let Some(e) = &m.exact {
            return Ok(Cond::Exact(e.clone()));
        }
        if let Some(p) = &m.prefix {
            return Ok(Cond::Prefix(p.clone()));
        }
        if let Some(s) = &m.suffix {
            return Ok(Cond::Suffix(s.clone()));
        }
        if let Some(r) = &m.regex {
            // Envoy/Istio regexes are full matches (RE2 semantics).
            let anchored = format!("^(?:{r})$");
            return Regex::new(&anchored).map(Cond::Regex).map_err(|e| {
                RouterError::Match(format!("{path}.regex: not a valid regular expression: {e}"))
            });
        }
        Err(RouterError::Match(format!(
            "{path}: set one of exact, prefix, suffix or regex"
        )))
    }

    fn holds(&self, value: &str) -> bool {
        match self {
            Cond::Exact(e) => value == e,
            Cond::Prefix(p) => value.starts_with(p.as_str()),
            Cond::Suffix(s) => value.ends_with(s.as_str()),
            Cond::Regex(r) => r.is_match(value),
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Rule {
    uri: Option<Cond>,
    method: Option<Cond>,
    headers: Vec<(String, Cond)>,
    without_headers: Vec<(String, Cond)>,
    query: Vec<(String, Cond)>,
}

/// Compiled `analysis.match` entries.
#[derive(Clone, Debug)]
pub struct MatchRules(Vec<Rule>);

fn compile_map(
    map: &Option<BTreeMap<String, StringMatch>>,
    path: &str,
    lowercase: bool,
) -> Result<Vec<(String, Cond)>, RouterError> {
    let mut out = Vec::new();
    for (k, m) in map.iter().flatten() {
        let key = if lowercase {
            k.to_ascii_lowercase()
        } else {
            k.clone()
        };
        out.push((key, Cond::compile(m, &format!("{path}.{k}"))?));
    }
    Ok(out)
}

impl MatchRules {
    /// Compiles the entries; `path` names the field in errors (e.g. `spec.analysis.match`).
    pub fn compile(entries: &[HttpMatchRequest], path: &str) -> Result<Self, RouterError> {
        let mut rules = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let p = format!("{path}[{i}]");
            if e.source_labels.is_some() || e.source_namespace.is_some() {
                return Err(RouterError::Match(format!(
                    "{p}.sourceLabels: local mode has no pod labels; match on headers or cookies instead"
                )));
            }
            rules.push(Rule {
                uri: e
                    .uri
                    .as_ref()
                    .map(|m| Cond::compile(m, &format!("{p}.uri")))
                    .transpose()?,
                method: e
                    .method
                    .as_ref()
                    .map(|m| Cond::compile(m, &format!("{p}.method")))
                    .transpose()?,
                headers: compile_map(&e.headers, &format!("{p}.headers"), true)?,
                without_headers: compile_map(
                    &e.without_headers,
                    &format!("{p}.withoutHeaders"),
                    true,
                )?,
                query: compile_map(&e.query_params, &format!("{p}.queryParams"), false)?,
            });
        }
        Ok(Self(rules))
    }

    pub fn matches(&self, headers: &HeaderMap, uri: &Uri) -> bool {
        self.matches_request(headers, uri, None)
    }

    pub fn matches_request(&self, headers: &HeaderMap, uri: &Uri, method: Option<&str>) -> bool {
        let header = |name: &str| -> Option<String> {
            let values: Vec<&str> = headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            (!values.is_empty()).then(|| values.join("; "))
        };
        let query: Vec<(String, String)> = uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (kv.to_owned(), String::new()),
            })
            .collect();
        self.0.iter().any(|r| {
            r.uri.as_ref().is_none_or(|c| c.holds(uri.path()))
                && r.method
                    .as_ref()
                    .is_none_or(|c| method.is_some_and(|m| c.holds(m)))
                && r.headers
                    .iter()
                    .all(|(k, c)| header(k).is_some_and(|v| c.holds(&v)))
                && r.without_headers
                    .iter()
                    .all(|(k, c)| header(k).is_none_or(|v| !c.holds(&v)))
                && r.query
                    .iter()
                    .all(|(k, c)| query.iter().any(|(qk, qv)| qk == k && c.holds(qv)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(yaml: serde_json::Value) -> MatchRules {
        let entries: Vec<HttpMatchRequest> = serde_json::from_value(yaml).unwrap();
        MatchRules::compile(&entries, "spec.analysis.match").unwrap()
    }

    fn req(pairs: &[(&str, &str)], uri: &str) -> (HeaderMap, Uri) {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        (h, uri.parse().unwrap())
    }

    #[test]
    fn flagger_docs_header_and_cookie_matches() {
        let r = rules(serde_json::json!([
            {"headers": {"x-canary": {"exact": "insider"}}},
            {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}}
        ]));
        let (h, u) = req(&[("x-canary", "insider")], "/");
        assert!(r.matches(&h, &u));
        let (h, u) = req(&[("cookie", "a=1;canary=always;b=2")], "/");
        assert!(r.matches(&h, &u));
        let (h, u) = req(&[("cookie", "canary=never")], "/");
        assert!(!r.matches(&h, &u));
        let (h, u) = req(&[("X-Canary", "outsider")], "/");
        assert!(!r.matches(&h, &u));
    }

    #[test]
    fn all_conditions_of_an_entry_must_hold() {
        let r = rules(serde_json::json!([
            {"headers": {"user-agent": {"prefix": "Mozilla"}}, "queryParams": {"beta": {"exact": "1"}}}
        ]));
        let (h, u) = req(&[("user-agent", "Mozilla/5.0")], "/x?beta=1");
        assert!(r.matches(&h, &u));
        let (h, u) = req(&[("user-agent", "Mozilla/5.0")], "/x?beta=0");
        assert!(!r.matches(&h, &u));
    }

    #[test]
    fn bad_regex_names_the_field() {
        let entries: Vec<HttpMatchRequest> =
            serde_json::from_value(serde_json::json!([{"headers": {"x": {"regex": "("}}}]))
                .unwrap();
        let err = MatchRules::compile(&entries, "spec.analysis.match")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("spec.analysis.match[0].headers.x.regex"),
            "{err}"
        );
    }
}
