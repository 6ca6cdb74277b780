//! `serin loadtest [hey flags] URL`: one load test from the terminal, with hey's flags and summary.

use std::process::ExitCode;

use anyhow::Context as _;
use serin_loadtester::spec::USAGE;
use serin_loadtester::{
    CancellationToken, Output, SpecError, parse_hey_args, run_attack, worker_main,
};

#[derive(clap::Args)]
#[command(disable_help_flag = true)]
pub struct Args {
    /// hey's flags and the URL (serin loadtest -help lists them).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    args: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut command = match parse_hey_args(&args.args) {
        Ok(c) => c,
        Err(SpecError::Usage(text)) if text == USAGE => {
            println!("{USAGE}");
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => anyhow::bail!("{e}"),
    };
    if let Some(path) = &command.body_file {
        let body = std::fs::read_to_string(path)
            .with_context(|| format!("-D: cannot read the body file {path}"))?;
        command.spec.requests[0].body = Some(body);
    }
    let exe = std::env::current_exe()
        .context("cannot find the serin executable to run the load-test worker")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(run_attack(
        &exe,
        &command.spec,
        CancellationToken::new(),
        |_| {},
    ))?;
    let summary = report.summary;
    match command.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&summary)?),
        Output::Text => print!("{}", summary.to_text()),
    }
    if let Some(error) = command
        .max_error_rate
        .and_then(|max| summary.verdict_error(max))
    {
        eprintln!(
            "serin: {}",
            error.replace("maxErrorRate", "--max-error-rate")
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// The hidden `serin loadtest-worker`: one attack, job on stdin (see `serin_loadtester::worker`).
pub fn run_worker() -> anyhow::Result<ExitCode> {
    Ok(if worker_main() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
