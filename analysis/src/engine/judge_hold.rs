//! The judge's own policy for too little traffic (`judge.holdIntervals`, `judge.onInconclusive`):
//! a judged metric that cannot decide yet holds the current weight — never a failed check, never
//! a no-data check, whatever `noDataPolicy` says — until the judge passes, fails, promotes as
//! configured, or a person promotes or aborts.

use super::Engine;
use crate::judge::Hold;
use crate::{CheckReport, EventType, Outcome, ReasonCode, Severity};

impl Engine<'_> {
    /// Splits this tick's metric reports into those the engine's policies judge and the judged
    /// metrics that asked to hold (NoData with a [`Hold`] from the comparator).
    pub(super) fn judge_holds(
        &self,
        reports: Vec<CheckReport>,
    ) -> (Vec<CheckReport>, Vec<(CheckReport, Hold)>) {
        let Some(comparator) = self.input.comparator else {
            return (reports, Vec::new());
        };
        let mut rest = Vec::new();
        let mut holds = Vec::new();
        for r in reports {
            match comparator.hold(&r.name) {
                Some(h) if r.outcome == Outcome::NoData => holds.push((r, h)),
                _ => rest.push(r),
            }
        }
        (rest, holds)
    }

    /// Everything else passed: advance unless a judge holds. Holding says why at every tick; a
    /// pause for a person also alerts, once.
    pub(super) fn hold_for_judges(&mut self, holds: Vec<(CheckReport, Hold)>) -> bool {
        if holds.is_empty() {
            return true;
        }
        let paused: Vec<&CheckReport> = holds
            .iter()
            .filter(|(_, h)| matches!(h, Hold::Person { .. }))
            .map(|(r, _)| r)
            .collect();
        let text: Vec<&str> = holds.iter().map(|(r, _)| r.message.as_str()).collect();
        let text = text.join("; ");
        let first_pause = holds
            .iter()
            .any(|(_, h)| matches!(h, Hold::Person { first: true }));
        let checks: Vec<CheckReport> = holds.iter().map(|(r, _)| r.clone()).collect();
        if paused.is_empty() {
            let msg = format!("Halt advancement of {}: {text}", self.who());
            let reason = self.reason(ReasonCode::Halted, checks);
            self.out.event(EventType::Normal, reason, self.phase(), msg);
            return false;
        }
        let msg = format!(
            "Halt advancement of {}: {text}; promote or abort it by hand (serin.dev/promote, serin.dev/abort)",
            self.who()
        );
        let reason = self.reason(ReasonCode::Halted, checks.clone());
        self.out
            .event(EventType::Warning, reason, self.phase(), msg.clone());
        if first_pause {
            self.alert(Severity::Warn, ReasonCode::Halted, checks, msg);
        }
        false
    }
}
