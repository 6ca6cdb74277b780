use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use serin_local::demo_app::{self, DemoAppConfig};

#[derive(clap::Args)]
pub struct Args {
    /// Port to listen on (0 picks a free one; the address is printed on stdout).
    #[arg(long, default_value_t = 9898)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    host: IpAddr,
    /// Version reported by `/` and in the `version` metric label.
    #[arg(long, default_value = "v1")]
    version: String,
    /// Fraction of requests answered with HTTP 500, deterministically: 0.2 fails exactly every
    /// fifth request.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Delay added to every request, as a Go duration (`250ms`, `1s`).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    latency: Duration,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    serin_api::duration::parse(s).map_err(|e| format!("{e} (examples: 250ms, 1s, 1m30s)"))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = DemoAppConfig {
        version: args.version,
        error_rate: args.error_rate,
        latency: args.latency,
    };
    config.validate()?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let (addr, serving) = demo_app::bind(SocketAddr::new(args.host, args.port), config)
            .await
            .with_context(|| format!("listening on {}:{}", args.host, args.port))?;
        println!("serin demo-app listening on http://{addr}");
        tokio::select! {
            r = serving => r?,
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok(ExitCode::SUCCESS)
    })
}
