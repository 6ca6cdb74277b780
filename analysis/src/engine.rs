//! The state machine (filled in next).
use crate::{Answers, Input, Output, Tick};

pub(crate) fn tick(input: &Input<'_>, _answers: &Answers) -> Tick {
    Tick::Done(Output {
        status: input.status.clone(),
        actions: Vec::new(),
        requeue_after_ms: input.spec.interval().as_millis() as u64,
    })
}
