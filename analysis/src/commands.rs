//! Commands from people and pipelines — `serin promote|abort|approve|halt` — as the engine reads
//! them from [`Commands`](crate::Commands) (the Canary's annotations).
//!
//! - `serin.dev/abort` and `serin.dev/promote` hold a *token*: a value acted upon once, then
//!   recorded in `status.lastAbort` / `status.lastPromote` (as `serin.dev/retry` is in
//!   `status.lastRetry`). A token may be bound to a revision, `<token>@<revision>`; the CLI binds
//!   it to the target's pod-template hash at the time of the command. A bound token meant for
//!   another revision is ignored with an event, so a command given for one release can never act
//!   on the next one, even if that release arrived between the command and the controller's
//!   tick. A token left on the Canary is not new and does nothing.
//! - Abort rolls back what is running or waiting to start (Progressing, WaitingPromotion,
//!   Waiting, or a new revision not started yet): traffic 100% to the stable workload, canary to
//!   zero, phase Failed for that revision, reason `aborted by serin.dev/abort=<value>`.
//! - Promote skips the remaining steps, checks and gates and promotes the current revision now
//!   (like `kubectl argo rollouts promote --full`): the stable workload rolls it out and traffic
//!   returns to it as in any promotion.
//! - `serin.dev/gate=halted` is a level, not a token: while it is set, the analysis holds at its
//!   current step (no weight change, no promotion, no check run or counted) and a new revision
//!   does not start (phase Waiting). It is not bound to a revision on purpose: a forgotten halt
//!   blocks releases loudly (an event every tick), it never lets one through.
//! - `serin.dev/gate=approved@<revision>` opens the confirm-rollout, confirm-traffic-increase
//!   and confirm-promotion gates of that revision only (`status.approvedRevision`); the gates of
//!   the next revision stay closed until it is approved in turn. A bare `approved` (written by
//!   hand) binds to the revision current when the engine first reads it.
//! - A command with nothing to act on (promote after Succeeded, abort during Promoting) is
//!   recorded as used, with an event saying why nothing happened.

/// `<token>@<revision>` → the revision; `None` for an unbound token.
pub fn bound_revision(value: &str) -> Option<&str> {
    value
        .rsplit_once('@')
        .map(|(_, r)| r)
        .filter(|r| !r.is_empty())
}

/// The value `serin promote|abort` writes: a fresh token (the time of the command), bound to
/// `revision` when the CLI could read it.
pub fn token(now: &str, revision: Option<&str>) -> String {
    match revision {
        Some(r) if !r.is_empty() => format!("{now}@{r}"),
        _ => now.to_string(),
    }
}

/// The value `serin approve` writes.
pub fn approval(revision: Option<&str>) -> String {
    token(APPROVED, revision)
}

/// `serin.dev/gate` values.
pub const APPROVED: &str = "approved";
pub const HALTED: &str = "halted";

/// A `serin.dev/gate` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate<'a> {
    /// Hold the analysis.
    Halted,
    /// Open the confirm-* gates of `revision` (`None`: the current one).
    Approved { revision: Option<&'a str> },
    /// Anything else: reported, otherwise ignored.
    Unknown(&'a str),
}

impl<'a> Gate<'a> {
    pub fn parse(value: &'a str) -> Gate<'a> {
        let v = value.trim();
        if v == HALTED {
            return Gate::Halted;
        }
        let (word, revision) = match v.split_once('@') {
            Some((w, r)) => (w, Some(r).filter(|r| !r.is_empty())),
            None => (v, None),
        };
        if word == APPROVED {
            Gate::Approved { revision }
        } else {
            Gate::Unknown(value)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_bind_to_a_revision_when_known() {
        assert_eq!(token("t1", Some("abc")), "t1@abc");
        assert_eq!(token("t1", None), "t1");
        assert_eq!(bound_revision("t1@abc"), Some("abc"));
        assert_eq!(bound_revision("t1"), None);
        assert_eq!(bound_revision("t1@"), None);
    }

    #[test]
    fn gate_values() {
        assert_eq!(Gate::parse("halted"), Gate::Halted);
        assert_eq!(Gate::parse("approved"), Gate::Approved { revision: None });
        assert_eq!(
            Gate::parse(&approval(Some("abc"))),
            Gate::Approved {
                revision: Some("abc")
            }
        );
        assert_eq!(Gate::parse("open"), Gate::Unknown("open"));
        assert_eq!(Gate::parse("halted@abc"), Gate::Unknown("halted@abc"));
    }
}
