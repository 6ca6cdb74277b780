//! Collects a tick's actions; every event is also sent to the Canary's `event` webhooks and
//! every alert is addressed to the alert entries whose severity admits it.

use serin_api::{CanarySpec, Phase, WebhookType};

use crate::{Action, EventType, Reason, Severity};

pub(crate) struct Out<'a> {
    spec: &'a CanarySpec,
    pub actions: Vec<Action>,
    /// The last event's text, kept in `status.message`.
    pub last_message: Option<String>,
}

impl<'a> Out<'a> {
    pub fn new(spec: &'a CanarySpec) -> Self {
        Out {
            spec,
            actions: Vec::new(),
            last_message: None,
        }
    }

    pub fn push(&mut self, action: Action) {
        self.actions.push(action);
    }

    pub fn event(&mut self, type_: EventType, reason: Reason, phase: Phase, message: String) {
        self.last_message = Some(message.clone());
        self.actions.push(Action::RecordEvent {
            type_,
            reason,
            message: message.clone(),
        });
        for hook in self.spec.webhooks() {
            if hook.kind() == Some(WebhookType::Event) {
                self.actions.push(Action::CallWebhook {
                    kind: WebhookType::Event,
                    phase,
                    hook: hook.clone(),
                    event_message: Some(message.clone()),
                    event_type: Some(type_),
                });
            }
        }
    }

    pub fn alert(&mut self, severity: Severity, reason: Reason, message: String) {
        let alerts = self
            .spec
            .alerts()
            .iter()
            .filter(|a| admits(a.severity(), severity))
            .map(|a| a.name.clone())
            .collect();
        self.actions.push(Action::SendAlert {
            severity,
            alerts,
            message,
            reason,
        });
    }

    /// Fire-and-forget webhooks of one type (post-rollout).
    pub fn call_hooks(&mut self, kind: WebhookType, phase: Phase) {
        for hook in self.spec.webhooks() {
            if hook.kind() == Some(kind) {
                self.actions.push(Action::CallWebhook {
                    kind,
                    phase,
                    hook: hook.clone(),
                    event_message: None,
                    event_type: None,
                });
            }
        }
    }
}

/// `info` receives everything, `warn` warnings and errors, `error` errors only; an unknown
/// level is read as `info` (validation reports it).
fn admits(level: &str, severity: Severity) -> bool {
    match level {
        "warn" => severity >= Severity::Warn,
        "error" => severity >= Severity::Error,
        _ => true,
    }
}
