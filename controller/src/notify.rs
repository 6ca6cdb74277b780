//! Sends the engine's alerts: to the AlertProviders named by `analysis.alerts` (already
//! filtered by severity in the engine), or to the global notifiers (`--slack-url`,
//! `--msteams-url`) when the Canary has no alerts. Sending runs in the background: a slow or
//! failing chat service never delays or fails an analysis step; failures are logged.

use kube::{Api, ResourceExt};
use serin_analysis::{Reason, Severity};
use serin_api::{AlertProvider, Canary};
use serin_providers::alerts::{self, Alert, Kind, Notifier};

use crate::Context;
use crate::checks::secret_data;

/// The alert for `canary`, with the target's images.
pub fn alert(
    ctx: &Context,
    canary: &Canary,
    images: Vec<String>,
    revision: &str,
    severity: Severity,
    message: &str,
    reason: &Reason,
) -> Alert {
    Alert {
        name: canary.name_any(),
        namespace: canary.namespace().unwrap_or_default(),
        cluster: ctx.config.cluster_name.clone(),
        severity: match severity {
            Severity::Info => alerts::Severity::Info,
            Severity::Warn => alerts::Severity::Warn,
            Severity::Error => alerts::Severity::Error,
        },
        message: message.to_string(),
        reason: format!("{:?}", reason.code),
        checks: reason
            .checks
            .iter()
            .map(|c| format!("{}: {}", c.name, c.message))
            .collect(),
        revision: revision.to_string(),
        images,
    }
}

/// Resolves the notifiers for `names` (entries of `analysis.alerts`); errors name the alert.
async fn notifiers(
    ctx: &Context,
    canary: &Canary,
    names: &[String],
) -> Vec<Result<Notifier, String>> {
    let ns = canary.namespace().unwrap_or_default();
    if canary.spec.alerts().is_empty() {
        let mut out = Vec::new();
        for (kind, url) in [
            (Kind::Slack, &ctx.config.slack_url),
            (Kind::MsTeams, &ctx.config.msteams_url),
        ] {
            if let Some(url) = url {
                out.push(
                    Notifier::new(
                        kind,
                        url,
                        &ctx.config.slack_channel,
                        &ctx.config.slack_user,
                        None,
                        None,
                    )
                    .map_err(|e| format!("global {} notifier: {e}", kind.as_str())),
                );
            }
        }
        return out;
    }
    let mut out = Vec::new();
    for entry in canary
        .spec
        .alerts()
        .iter()
        .filter(|a| names.contains(&a.name))
    {
        let r = &entry.provider_ref;
        let pns = r.namespace.clone().unwrap_or_else(|| ns.clone());
        let resolved = async {
            let api: Api<AlertProvider> = Api::namespaced(ctx.client.clone(), &pns);
            let provider = api
                .get_opt(&r.name)
                .await
                .map_err(|e| format!("reading AlertProvider {pns}/{}: {e}", r.name))?
                .ok_or_else(|| {
                    format!(
                        "AlertProvider {pns}/{} not found: create it or fix providerRef.name",
                        r.name
                    )
                })?;
            let data = match &provider.spec.secret_ref {
                Some(s) => {
                    secret_data(ctx, &pns, &s.name, &format!("AlertProvider {}", r.name)).await?
                }
                None => Default::default(),
            };
            Notifier::from_spec(&provider.spec, &data)
                .map_err(|e| format!("AlertProvider {pns}/{}: {e}", r.name))
        }
        .await;
        out.push(resolved.map_err(|e| format!("alert {}: {e}", entry.name)));
    }
    out
}

/// Sends `alert` to every notifier in the background.
pub async fn send(ctx: &Context, canary: &Canary, names: &[String], alert: Alert) {
    for notifier in notifiers(ctx, canary, names).await {
        let alert = alert.clone();
        match notifier {
            Ok(n) => {
                tokio::spawn(async move {
                    if let Err(e) = n.send(&alert).await {
                        tracing::warn!(canary = %alert.name, namespace = %alert.namespace, "alert not delivered: {e}");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(canary = %alert.name, namespace = %alert.namespace, "alert not delivered: {e}")
            }
        }
    }
}
