//! Load tests with hey's flags on the goose engine, and Flagger's loadtester HTTP API.
//!
//! An attack is described by an [`AttackSpec`] (usually parsed from hey's command line with
//! [`parse_hey_args`]) and runs in a child process of the `serin` binary ([`run_attack`]),
//! because goose keeps process-global state; cancelling kills the child. The result is a
//! [`Summary`] with per-request latency percentiles at microsecond resolution.

#![forbid(unsafe_code)]

pub mod acceptance;
mod child;
mod closed;
mod engine;
mod open;
pub mod request;
pub mod service;
pub mod spec;
pub mod summary;
mod tls;
mod wire;
pub mod worker;

pub use child::{AttackError, WORKER_SUBCOMMAND, run_attack};
pub use spec::{AttackSpec, Command, Output, RequestSpec, SpecError, Stop, parse_hey_args};
pub use summary::{Latency, Snapshot, Summary};
pub use tokio_util::sync::CancellationToken;
pub use worker::{WorkerReport, worker_main};
