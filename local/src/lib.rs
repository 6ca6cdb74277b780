//! Local mode: the analysis of a canary running as local processes or URLs, behind the embedded
//! router or a real Traefik or nginx, with metrics from the router itself or from Prometheus;
//! and the demo app that the demo, the tests and the benchmarks run.

pub mod checks;
pub mod demo;
pub mod demo_app;
pub mod load;
pub mod process;
pub mod progress;
pub mod prometheus_server;
pub mod router;
pub mod run;
pub mod session;

/// The decider local runs use: the analysis engine, the same one as the operator's.
pub fn default_decider() -> session::Decider {
    serin_analysis::tick
}
