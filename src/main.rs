//! `serin`: progressive delivery for Kubernetes. One binary; each subcommand wires the crates.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

// glibc's malloc cost the admission webhook a quarter of its CPU per review (a review's JSON is
// many small allocations freed on another worker thread); mimalloc measured 108-138 -> 86-88 us.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Canaries as a table: phase, weight, failed checks, metrics (-w to watch).
    Status(cmd::status::Args),
    /// Wait until a Canary's current revision is promoted or failed (exit 0/1, for CI).
    Wait(cmd::wait::Args),
    /// Skip the remaining analysis and promote the current revision now (serin.dev/promote).
    Promote(cmd::canary_ops::Args),
    /// Ask the controller to roll back now (annotation serin.dev/abort).
    Abort(cmd::canary_ops::Args),
    /// Start a new analysis of the current revision after a failure (serin.dev/retry).
    Retry(cmd::canary_ops::Args),
    /// Open the confirm-* gates of the current revision and lift a halt (serin.dev/gate).
    Approve(cmd::canary_ops::Args),
    /// Hold the analysis at its current step until `serin approve` (serin.dev/gate=halted).
    Halt(cmd::canary_ops::Args),
}

impl Command {
    /// Commands whose output is read by a pipe (`serin crds | head -1`): a closed pipe ends them
    /// quietly, as it ends any Unix filter, instead of panicking in `println!`.
    fn prints_for_a_pipe(&self) -> bool {
        matches!(
            self,
            Command::Validate(_) | Command::Simulate(_) | Command::Crds(_) | Command::Status(_)
        )
    }
}

/// Rust ignores SIGPIPE so that a write to a closed pipe is an error; a printing command has
/// nothing better to do with that error than to stop, which SIGPIPE's default action does with
/// the exit status shells expect (141). Sockets are unaffected: std writes them with
/// MSG_NOSIGNAL.
fn restore_sigpipe() {
    // SAFETY: setting a signal's disposition to its default before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    // One process-wide TLS provider, before anything builds a rustls config (rust-stack.md §1.3).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    // `kubectl serin status` runs `kubectl-serin status` (a symlink or copy of this binary):
    // same commands, help shows the plugin's name.
    let invoked_as = std::env::args_os()
        .next()
        .map(std::path::PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    let cli = if invoked_as.as_deref() == Some("kubectl-serin") {
        use clap::{CommandFactory, FromArgMatches};
        let matches = Cli::command()
            .name("kubectl serin")
            .bin_name("kubectl serin")
            .get_matches();
        Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    } else {
        Cli::parse()
    };
    if cli.command.prints_for_a_pipe() {
        restore_sigpipe();
    }
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
        Command::Status(args) => cmd::status::run(args),
        Command::Wait(args) => cmd::wait::run(args),
        Command::Promote(args) => cmd::canary_ops::run(cmd::canary_ops::Op::Promote, args),
        Command::Abort(args) => cmd::canary_ops::run(cmd::canary_ops::Op::Abort, args),
        Command::Retry(args) => cmd::canary_ops::run(cmd::canary_ops::Op::Retry, args),
        Command::Approve(args) => cmd::canary_ops::run(cmd::canary_ops::Op::Approve, args),
        Command::Halt(args) => cmd::canary_ops::run(cmd::canary_ops::Op::Halt, args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("serin: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
