//! serin's statistical judge: compares the canary with the primary on the same traffic and
//! rolls back only on evidence, with a false-rollback bound that holds however often it looks.
//!
//! * [`evidence`]: the arithmetic — a mixture SPRT on the canary's share of the bad requests,
//!   conditioned on each interval's totals.
//! * [`sequential`]: the judge itself (state, decisions, explanations).
//! * [`latency`]: latency as counts of requests slower than a bound taken from the primary.
//! * [`sim`]: the release model of the decision benchmark (`bench/judge.sh`), also used by the
//!   statistical tests.

pub mod evidence;
pub mod latency;
pub mod sequential;
pub mod sim;

pub use evidence::Counts;
pub use sequential::{Judge, JudgeConfig, JudgeError, JudgeState, Judgement, Subject, Verdict};
