use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use serin_local::demo::{self, DemoOptions};
use serin_local::progress::Reporter;

#[derive(clap::Args)]
pub struct Args {
    /// Fraction of requests the second canary (v3) fails (0.2 = one in five).
    #[arg(long, default_value_t = 0.2)]
    canary_error_rate: f64,
    /// Delay the second canary (v3) adds to every request (`800ms` fails the 500 ms p99 check).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    canary_latency: Duration,
    /// Analysis interval (one check and one weight step per interval).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    interval: Duration,
    /// Address of the embedded router (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Requests per second of generated load through the router.
    #[arg(long, default_value_t = 100)]
    rps: u32,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    serin_api::duration::parse(s).map_err(|e| format!("{e} (examples: 500ms, 2s, 1m)"))
}

/// Ctrl-C or SIGTERM: both end a run cleanly (traffic back to the primary, the load worker and
/// the started processes stopped); a SIGTERM that killed serin outright would leave them behind.
/// The handlers are installed when this is called (inside the runtime), not when the future is
/// first polled: a signal that arrives before the run first waits on it still ends the run
/// cleanly instead of killing serin.
pub fn interrupted() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{Signal, SignalKind, signal};
    let interrupt = signal(SignalKind::interrupt()).ok();
    let terminate = signal(SignalKind::terminate()).ok();
    async fn received(signal: Option<Signal>) {
        match signal {
            Some(mut signal) => {
                signal.recv().await;
            }
            None => std::future::pending().await,
        }
    }
    async move {
        tokio::select! {
            _ = received(interrupt) => {}
            _ = received(terminate) => {}
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.interval.is_zero() {
        anyhow::bail!("--interval must be above 0 (e.g. 2s)");
    }
    if args.rps == 0 {
        anyhow::bail!("--rps must be at least 1: the analysis measures real requests");
    }
    let opts = DemoOptions {
        serin: std::env::current_exe().context("locating the serin binary for the demo app")?,
        listen: args.listen,
        interval: args.interval,
        canary_error_rate: args.canary_error_rate,
        canary_latency: args.canary_latency,
        rps: args.rps,
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let mut reporter = Reporter::stdout();
        let mut stop = Box::pin(interrupted());
        let (v2, v3) = demo::run(
            &opts,
            serin_local::default_decider(),
            &mut reporter,
            &mut stop,
        )
        .await?;
        if !reporter.is_json() {
            let word = |f: &serin_local::session::Finished| {
                if f.promoted {
                    "promoted"
                } else {
                    "rolled back"
                }
            };
            println!();
            println!("Summary:");
            println!("  v2 (healthy):  {} — {}", word(&v2), v2.message);
            println!("  v3 (faulty):   {} — {}", word(&v3), v3.message);
        }
        Ok(ExitCode::SUCCESS)
    })
}
