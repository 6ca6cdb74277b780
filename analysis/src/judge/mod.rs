//! serin's statistical judge: compares the canary with the primary on the same traffic and
//! rolls back only on evidence, with a false-rollback bound that holds however often it looks.
//!
//! * [`exact`]: the exact conditional law of the canary's bad requests given each interval's
//!   totals — the test statistic of the judge.
//! * [`sequential`]: the judge itself (levels per look, state, decisions, explanations).
//! * [`evidence`]: interval bookkeeping (exposure, ratio estimate) and the mixture SPRT the
//!   benchmark compares against.
//! * [`comparator`]: the judge behind the engine's `Comparator` seam.
//! * [`record`]: the judges' states in `status.judge`, resumed and saved by every shell.
//! * [`latency`]: latency as counts of requests slower than a bound taken from the primary.
//! * [`sim`]: the release model of the decision benchmark (`bench/judge.sh`), also used by the
//!   statistical tests.

pub mod comparator;
pub mod evidence;
pub mod exact;
pub mod latency;
pub mod record;
pub mod sequential;
pub mod sim;

pub use comparator::{Hold, JudgeComparator, planned_intervals};
pub use evidence::Counts;
pub use sequential::{Judge, JudgeConfig, JudgeError, JudgeState, Judgement, Subject, Verdict};
