//! What each router can express: a Canary that asks its router for something it cannot write
//! (mirroring, an A/B match condition) is refused with the router's name, instead of being
//! driven without it while the events claim otherwise.
//!
//! `serin validate` and the validating webhook run these rules for `spec.provider`; the controller
//! runs them again for the provider it will actually use (`--mesh-provider` when the Canary
//! names none).

use super::Diagnostic;
use crate::canary::{HttpMatchRequest, StringMatch};
use crate::provider::TrafficProvider;
use crate::{CanarySpec, Strategy};

/// The rules for `provider`, as the path of `spec.analysis` (or `spec.canaryAnalysis`).
pub fn router_rules(spec: &CanarySpec, provider: TrafficProvider) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let at = if spec.analysis.is_some() {
        "spec.analysis"
    } else {
        "spec.canaryAnalysis"
    };
    let Some(analysis) = spec.analysis() else {
        return out;
    };
    if analysis.mirror == Some(true) && !provider.can_mirror() {
        out.push(Diagnostic::error(
            format!("{at}.mirror"),
            format!(
                "provider {provider} cannot mirror traffic: remove mirror, or use a router that \
                 mirrors (istio, gatewayapi, traefik)"
            ),
        ));
    }
    let matches = analysis.match_.as_deref().unwrap_or_default();
    if spec.strategy() == Strategy::AbTesting && !matches.is_empty() {
        for (i, m) in matches.iter().enumerate() {
            if let Some(problem) = unsupported_match(provider, m) {
                out.push(Diagnostic::error(
                    format!("{at}.match[{i}]"),
                    format!("provider {provider} cannot route this match: {problem}"),
                ));
            }
        }
        if provider == TrafficProvider::Nginx {
            nginx_match_count(matches, at, &mut out);
        }
    }
    out
}

/// The fields of a match that `provider` has no way to write, if any.
fn unsupported_match(provider: TrafficProvider, m: &HttpMatchRequest) -> Option<String> {
    use TrafficProvider::*;
    let set = set_fields(m);
    let allowed: &[&str] = match provider {
        Istio => return None,
        GatewayApi { .. } => &["headers", "queryParams", "method", "uri"],
        Contour => &["headers"],
        Nginx => &["headers"],
        _ => {
            return Some(format!(
                "{provider} has no A/B routing in serin: use istio, gatewayapi, contour or nginx, \
                 or remove match and iterations for a canary or blue/green release"
            ));
        }
    };
    let extra: Vec<&str> = set.into_iter().filter(|f| !allowed.contains(f)).collect();
    if !extra.is_empty() {
        return Some(format!(
            "{} not supported (it supports {}): remove {}",
            extra.join(", "),
            allowed.join(", "),
            if extra.len() == 1 { "it" } else { "them" }
        ));
    }
    if provider == Nginx
        && let Some(headers) = &m.headers
    {
        if headers.len() > 1 {
            return Some(
                "NGINX routes on one header (or one cookie) per match: split the headers into \
                 separate matches"
                    .into(),
            );
        }
        if let Some((name, sm)) = headers.iter().next()
            && name.eq_ignore_ascii_case("cookie")
            && sm.exact.is_none()
            && sm.regex.is_none()
        {
            return Some(
                "NGINX's canary-by-cookie takes a cookie name: write cookie: {exact: <name>}"
                    .into(),
            );
        }
    }
    if matches!(provider, GatewayApi { .. }) {
        let method_ok = m.method.as_ref().is_none_or(|s| s.exact.is_some());
        if !method_ok {
            return Some("method matches exactly only: write method: {exact: GET}".into());
        }
    }
    None
}

/// NGINX expresses one header condition and one cookie condition for the whole canary Ingress.
fn nginx_match_count(matches: &[HttpMatchRequest], at: &str, out: &mut Vec<Diagnostic>) {
    let names = matches.iter().flat_map(|m| m.headers.iter().flatten());
    let (cookies, headers): (Vec<_>, Vec<_>) =
        names.partition(|(n, _)| n.eq_ignore_ascii_case("cookie"));
    if headers.len() > 1 || cookies.len() > 1 {
        out.push(Diagnostic::error(
            format!("{at}.match"),
            "provider nginx routes on at most one header and one cookie (its canary-by-header and \
             canary-by-cookie annotations): keep one of each, or use gatewayapi or istio",
        ));
    }
}

/// The names of a match's fields that are set.
fn set_fields(m: &HttpMatchRequest) -> Vec<&'static str> {
    let sm = |s: &Option<StringMatch>| s.is_some();
    [
        ("uri", sm(&m.uri)),
        ("scheme", sm(&m.scheme)),
        ("method", sm(&m.method)),
        ("authority", sm(&m.authority)),
        ("headers", m.headers.as_ref().is_some_and(|h| !h.is_empty())),
        (
            "queryParams",
            m.query_params.as_ref().is_some_and(|h| !h.is_empty()),
        ),
        (
            "withoutHeaders",
            m.without_headers.as_ref().is_some_and(|h| !h.is_empty()),
        ),
        ("port", m.port.is_some()),
        (
            "sourceLabels",
            m.source_labels.as_ref().is_some_and(|h| !h.is_empty()),
        ),
        ("sourceNamespace", m.source_namespace.is_some()),
        (
            "gateways",
            m.gateways.as_ref().is_some_and(|h| !h.is_empty()),
        ),
        ("ignoreUriCase", m.ignore_uri_case.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect()
}
