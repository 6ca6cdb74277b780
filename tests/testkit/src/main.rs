//! `serin-testkit apiserver --port P --kubeconfig FILE`: the in-memory API server as a process.

use anyhow::Context;
use clap::{Parser, Subcommand};
use serin_testkit::{ApiServer, Options};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "serin-testkit", about = "Test support for serin")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the in-memory Kubernetes API server on 127.0.0.1 until killed.
    Apiserver(ApiserverArgs),
}

#[derive(clap::Args)]
struct ApiserverArgs {
    /// Port on 127.0.0.1; 0 picks a free one (the kubeconfig and stdout say which).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Write a kubeconfig pointing at the server to this file.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Address for admission calls to a webhook Service, e.g. `serin-webhook.serin-system=127.0.0.1:8443`
    /// (repeatable; there is no cluster DNS).
    #[arg(long = "service-address", value_name = "NAME.NAMESPACE=HOST:PORT")]
    service_addresses: Vec<String>,
    /// YAML files whose objects are stored at start (no admission).
    #[arg(long = "seed", value_name = "FILE")]
    seeds: Vec<PathBuf>,
    /// Do not imitate the Deployment controller (Deployment status stays as clients write it).
    #[arg(long)]
    no_deployment_controller: bool,
    /// Seconds between watch bookmarks.
    #[arg(long, default_value_t = 5)]
    bookmark_seconds: u64,
}

fn parse_service(s: &str) -> anyhow::Result<(String, SocketAddr)> {
    let (svc, addr) = s
        .split_once('=')
        .with_context(|| format!("--service-address {s:?}: expected NAME.NAMESPACE=HOST:PORT, e.g. serin-webhook.serin-system=127.0.0.1:8443"))?;
    if !svc.contains('.') {
        anyhow::bail!("--service-address {s:?}: the service must be NAME.NAMESPACE");
    }
    let addr: SocketAddr = addr.parse().with_context(|| {
        format!("--service-address {s:?}: {addr:?} is not HOST:PORT with an IP host")
    })?;
    Ok((svc.to_string(), addr))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let Command::Apiserver(args) = Cli::parse().command;
    let services = args
        .service_addresses
        .iter()
        .map(|s| parse_service(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let server = ApiServer::new(Options {
        deployment_controller: !args.no_deployment_controller,
        bookmark_interval: Duration::from_secs(args.bookmark_seconds.max(1)),
        ..Options::default()
    });
    for (svc, addr) in services {
        server.set_service_address(&svc, addr);
    }
    for file in &args.seeds {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("--seed {}: cannot read", file.display()))?;
        server
            .seed_yaml(&text)
            .map_err(|e| anyhow::anyhow!("--seed {}: {}", file.display(), e.message))?;
    }
    let (addr, task) = server
        .serve(SocketAddr::from((Ipv4Addr::LOCALHOST, args.port)))
        .await
        .with_context(|| format!("--port {}: cannot listen on 127.0.0.1", args.port))?;
    if let Some(path) = &args.kubeconfig {
        serin_testkit::write_kubeconfig(path, addr)
            .with_context(|| format!("--kubeconfig {}: cannot write", path.display()))?;
    }
    println!("serving on http://{addr}");
    task.await.context("server task")?;
    Ok(())
}
