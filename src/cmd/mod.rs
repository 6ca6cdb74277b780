//! One module per subcommand: its clap arguments and its `run`. Each returns the process exit
//! code; an `Err` prints `serin: error: …` and exits 2.

pub mod canary_ops;
pub mod controller;
pub mod crds;
pub mod demo;
pub mod demo_app;
pub mod loadtest;
pub mod loadtester;
pub mod logging;
pub mod run;
pub mod simulate;
pub mod status;
pub mod validate;
pub mod wait;
pub mod webhook;
