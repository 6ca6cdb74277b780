//! `serin`: progressive delivery for Kubernetes. One binary; each subcommand wires the crates.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

#[derive(Parser)]
#[command(name = "serin", version, about = "Progressive delivery for Kubernetes: canary analysis with automatic promotion or rollback", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The one-command tour: a healthy release promoted, a faulty one rolled back.
    Demo(cmd::demo::Args),
    /// Local mode: canary analysis of real local services or commands.
    Run(cmd::run::Args),
    /// Static checks of Canary, MetricTemplate and AlertProvider manifests.
    Validate(cmd::validate::Args),
    /// What the engine would do, tick by tick, for scripted metric values.
    Simulate(cmd::simulate::Args),
    /// Print the CustomResourceDefinitions.
    Crds(cmd::crds::Args),
    /// The Kubernetes operator.
    Controller(cmd::controller::Args),
    /// The admission server.
    Webhook(cmd::webhook::Args),
    /// The load-test service (Flagger's loadtester API).
    Loadtester(cmd::loadtester::Args),
    /// One load test from the terminal, with hey's flags.
    Loadtest(cmd::loadtest::Args),
    /// Internal: runs one load test whose job arrives as JSON on stdin.
    #[command(name = "loadtest-worker", hide = true)]
    LoadtestWorker,
    /// A small HTTP service with Prometheus metrics, for demos and tests.
    DemoApp(cmd::demo_app::Args),
}

fn main() -> ExitCode {
    // One process-wide TLS provider, before anything builds a rustls config (rust-stack.md §1.3).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => cmd::demo::run(args),
        Command::Run(args) => cmd::run::run(args),
        Command::Validate(args) => cmd::validate::run(args),
        Command::Simulate(args) => cmd::simulate::run(args),
        Command::Crds(args) => cmd::crds::run(args),
        Command::Controller(args) => cmd::controller::run(args),
        Command::Webhook(args) => cmd::webhook::run(args),
        Command::Loadtester(args) => cmd::loadtester::run(args),
        Command::Loadtest(args) => cmd::loadtest::run(args),
        Command::LoadtestWorker => cmd::loadtest::run_worker(),
        Command::DemoApp(args) => cmd::demo_app::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("serin: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
