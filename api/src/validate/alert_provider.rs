//! Semantic rules of an AlertProvider. To add a rule, append a function to [`RULES`].

use super::canary::http_url_problem;
use super::suggest::closest;
use super::{Diagnostic, Rule};
use crate::AlertProvider;
use crate::alert::ALERT_PROVIDERS;

/// Every AlertProvider rule, run in order.
pub const RULES: &[Rule<AlertProvider>] = &[provider_type, destination];

fn provider_type(provider: &AlertProvider, out: &mut Vec<Diagnostic>) {
    let t = provider.spec.type_.as_str();
    if !ALERT_PROVIDERS.contains(&t) {
        let hint = closest(t, ALERT_PROVIDERS)
            .map(|s| format!("did you mean {s}? "))
            .unwrap_or_default();
        out.push(Diagnostic::error(
            "spec.type",
            format!(
                "unknown alert provider {t:?}: {hint}use one of {}",
                ALERT_PROVIDERS.join(", ")
            ),
        ));
    }
}

fn destination(provider: &AlertProvider, out: &mut Vec<Diagnostic>) {
    let spec = &provider.spec;
    let address = spec.address.as_deref().filter(|a| !a.is_empty());
    if address.is_none() && spec.secret_ref.is_none() {
        out.push(Diagnostic::error(
            "spec.address",
            "missing: set address (the webhook URL) or secretRef (a Secret with an `address` \
             key)",
        ));
    }
    if let Some(problem) = address.and_then(http_url_problem) {
        out.push(Diagnostic::error("spec.address", problem));
    }
    if let Some(problem) = spec.proxy.as_deref().and_then(http_url_problem) {
        out.push(Diagnostic::error("spec.proxy", problem));
    }
}
