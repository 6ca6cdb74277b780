//! The engine's side of `serin promote|abort|approve|halt` (semantics in `crate::commands`).

use serin_api::labels::{ABORT_ANNOTATION, GATE_ANNOTATION, PROMOTE_ANNOTATION};
use serin_api::{Phase, WebhookType};

use super::{Engine, in_analysis, short};
use crate::commands::{Gate, HALTED, bound_revision};
use crate::{Action, EventType, ReasonCode, Severity};

impl Engine<'_> {
    /// At adoption: commands already on the Canary were meant for nothing serin ran.
    pub(super) fn absorb_commands(&mut self) {
        let c = &self.input.observed.commands;
        self.st.last_promote = c.promote.clone();
        self.st.last_abort = c.abort.clone();
    }

    /// Acts on the commands before anything else of the tick; `true` when the tick is over
    /// (rolled back, promoted or held).
    pub(super) fn act_on_commands(&mut self, phase: Phase, retry: bool) -> bool {
        self.record_approval();
        let aborted = self.abort_command(phase);
        let promoted = self.promote_command(phase, aborted);
        aborted || promoted || self.hold(phase, retry)
    }

    /// The confirm-* gates of the current revision were approved (`serin approve`).
    pub(super) fn gates_approved(&self, kind: WebhookType) -> bool {
        matches!(
            kind,
            WebhookType::ConfirmRollout
                | WebhookType::ConfirmTrafficIncrease
                | WebhookType::ConfirmPromotion
        ) && self.st.approved_revision.as_deref() == Some(self.input.observed.revision.as_str())
    }

    /// A revision is waiting to start: held by the confirm-rollout gate, or new since an idle
    /// phase.
    fn pending(&self, phase: Phase) -> bool {
        phase == Phase::Waiting
            || (matches!(phase, Phase::Initialized | Phase::Succeeded | Phase::Failed)
                && self.revision_changed())
    }

    /// A token not acted upon yet, recorded as used now: `(value, "annotation=value")`.
    fn new_token(&mut self, promote: bool) -> Option<(String, String)> {
        let c = &self.input.observed.commands;
        let (seen, last, key) = if promote {
            (&c.promote, &mut self.st.last_promote, PROMOTE_ANNOTATION)
        } else {
            (&c.abort, &mut self.st.last_abort, ABORT_ANNOTATION)
        };
        let value = seen.clone().filter(|v| Some(v) != last.as_ref())?;
        *last = Some(value.clone());
        let tag = format!("{key}={value}");
        Some((value, tag))
    }

    /// `Some(why)` when a bound token was meant for another revision.
    fn other_revision(&self, value: &str) -> Option<String> {
        let current = self.input.observed.revision.as_str();
        bound_revision(value).filter(|r| *r != current).map(|r| {
            format!(
                "it was meant for revision {}, the current revision is {}",
                short(r),
                short(current)
            )
        })
    }

    /// An event only: `status.message` keeps explaining the last decision (a `serin wait` after
    /// an ignored promote still reports why the run failed).
    fn ignore(&mut self, tag: &str, why: String) {
        let msg = format!("Ignored {tag} for {}: {why}", self.who());
        let decision = self.out.last_message.take();
        self.event(EventType::Normal, ReasonCode::CommandIgnored, msg);
        self.out.last_message = decision;
    }

    /// What is there when nothing can be promoted or aborted.
    fn nothing_running(&self, phase: Phase) -> String {
        let applied = short(self.st.last_applied_spec.as_deref().unwrap_or(""));
        let promoted = short(self.st.last_promoted_spec.as_deref().unwrap_or(""));
        match phase {
            Phase::Promoting | Phase::Finalising => {
                format!("the promotion of revision {applied} is already under way")
            }
            Phase::Failed => format!(
                "no analysis is running, the analysis of revision {applied} failed (serin retry starts a new one)"
            ),
            _ => format!("no analysis is running, revision {promoted} is promoted"),
        }
    }

    /// The run this tick would work on belongs to the current revision from now on.
    fn take_run(&mut self, phase: Phase) {
        let revision = self.input.observed.revision.clone();
        if self.pending(phase) {
            self.reset_run(&revision);
        } else {
            self.st.last_applied_spec = Some(revision);
        }
    }

    fn abort_command(&mut self, phase: Phase) -> bool {
        let Some((value, tag)) = self.new_token(false) else {
            return false;
        };
        if let Some(why) = self.other_revision(&value) {
            self.ignore(&tag, why);
            return false;
        }
        if !(in_analysis(phase) || self.pending(phase)) {
            let why = self.nothing_running(phase);
            self.ignore(&tag, why);
            return false;
        }
        self.take_run(phase);
        let why = format!("aborted by {tag}");
        self.rollback(ReasonCode::Aborted, why.clone());
        // The reason, not the closing "Canary failed!" line, is what status should explain.
        self.out.last_message = Some(format!("Rolling back {}: {why}", self.who()));
        true
    }

    fn promote_command(&mut self, phase: Phase, aborted: bool) -> bool {
        let Some((value, tag)) = self.new_token(true) else {
            return false;
        };
        if aborted {
            self.ignore(&tag, "an abort was requested at the same time".into());
            return false;
        }
        if let Some(why) = self.other_revision(&value) {
            self.ignore(&tag, why);
            return false;
        }
        if !(in_analysis(phase) || self.pending(phase)) {
            let why = self.nothing_running(phase);
            self.ignore(&tag, why);
            return false;
        }
        self.take_run(phase);
        let revision = self.input.observed.revision.clone();
        let reason = self.reason(ReasonCode::PromotionRequested, vec![]);
        self.out.push(Action::Promote {
            revision: revision.clone(),
            reason,
        });
        self.set_phase(Phase::Promoting);
        let msg = format!(
            "Promoting {}: revision {} promoted by {tag}, skipping the remaining analysis; rolling it out on {}",
            self.who(),
            short(&revision),
            self.spec.target_ref.name
        );
        self.event(
            EventType::Normal,
            ReasonCode::PromotionRequested,
            msg.clone(),
        );
        self.alert(Severity::Info, ReasonCode::PromotionRequested, vec![], msg);
        true
    }

    /// Keeps `status.approvedRevision` in step with `serin.dev/gate`.
    fn record_approval(&mut self) {
        let current = self.input.observed.revision.clone();
        let gate = self
            .input
            .observed
            .commands
            .gate
            .as_deref()
            .map(Gate::parse);
        let approved = match gate {
            Some(Gate::Approved {
                revision: Some(bound),
            }) => Some(bound.to_string()),
            // A bare `approved` binds to the revision it first sees.
            Some(Gate::Approved { revision: None }) => self
                .st
                .approved_revision
                .clone()
                .or_else(|| Some(current.clone())),
            _ => None,
        };
        if approved == self.st.approved_revision {
            return;
        }
        self.st.approved_revision = approved.clone();
        let Some(approved) = approved else { return };
        let tag = format!(
            "{GATE_ANNOTATION}={}",
            self.input.observed.commands.gate.as_deref().unwrap_or("")
        );
        if approved == current {
            let msg = format!(
                "Gates of revision {} of {} approved by {tag}",
                short(&approved),
                self.who()
            );
            self.event(EventType::Normal, ReasonCode::GateApproved, msg);
        } else {
            let why = format!(
                "it approves revision {}, the current revision is {}",
                short(&approved),
                short(&current)
            );
            self.ignore(&tag, why);
        }
    }

    /// `serin.dev/gate=halted`: nothing advances until the value changes. A promotion already
    /// under way completes (stopping it would leave the stable workload half rolled out).
    fn hold(&mut self, phase: Phase, retry: bool) -> bool {
        let Some(value) = self.input.observed.commands.gate.clone() else {
            return false;
        };
        let starting = self.pending(phase) || retry;
        if !(in_analysis(phase) || starting) {
            return false;
        }
        match Gate::parse(&value) {
            Gate::Halted => {}
            Gate::Approved { .. } => return false,
            Gate::Unknown(v) => {
                let msg = format!(
                    "Ignored {GATE_ANNOTATION}={v} for {}: write approved (serin approve) or halted (serin halt)",
                    self.who()
                );
                self.event(EventType::Warning, ReasonCode::CommandIgnored, msg);
                return false;
            }
        }
        if !in_analysis(phase) {
            self.set_phase(Phase::Waiting);
        }
        // The progress deadline measures the canary's start-up, not the time spent halted.
        self.st.canary_waiting_since = None;
        let msg = format!(
            "Halt {} advancement: {GATE_ANNOTATION}={HALTED} at canary weight {} (serin approve resumes)",
            self.who(),
            self.st.canary_weight
        );
        self.event(EventType::Warning, ReasonCode::GateHalted, msg);
        true
    }
}
