//! Local mode: the analysis of a canary running as local processes or URLs, behind the embedded
//! router or a real Traefik or nginx, with metrics from the router itself or from Prometheus;
//! and the demo app that the demo, the tests and the benchmarks run.

pub mod checks;
pub mod demo;
pub mod demo_app;
pub mod load;
pub mod process;
pub mod progress;
pub mod router;
pub mod session;
pub mod stepper;

/// The decider local runs use: the minimal stepper until the analysis engine's state machine
/// lands, then `serin_analysis::tick` (same signature).
pub fn default_decider() -> stepper::Decider {
    stepper::tick
}
pub mod prometheus_server;
pub mod run;
