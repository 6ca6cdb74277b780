//! The command annotations of a Canary (`serin promote|abort|approve|halt`), read for the engine,
//! which decides what they mean (serin_analysis::commands).

use kube::ResourceExt;
use serin_analysis::Commands;
use serin_api::Canary;
use serin_api::labels::{ABORT_ANNOTATION, GATE_ANNOTATION, PROMOTE_ANNOTATION};

pub fn read(canary: &Canary) -> Commands {
    let get = |key: &str| canary.annotations().get(key).cloned();
    Commands {
        promote: get(PROMOTE_ANNOTATION),
        abort: get(ABORT_ANNOTATION),
        gate: get(GATE_ANNOTATION),
    }
}
