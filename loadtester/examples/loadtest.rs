//! `serin loadtest` without the rest of the serin binary: `loadtest [hey flags] URL`, with the
//! worker child being this same executable. For measuring the engine (`SERIN=target/release/examples/loadtest
//! bench/loadtest.sh`) when the whole workspace cannot be built in release mode.

use std::process::ExitCode;

use serin_loadtester::{CancellationToken, Output, WORKER_SUBCOMMAND, parse_hey_args, run_attack};

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    // Called as serin is (`loadtest [flags] URL`) or without the subcommand.
    if args.first().map(String::as_str) == Some("loadtest") {
        args.remove(0);
    }
    if args.first().map(String::as_str) == Some(WORKER_SUBCOMMAND) {
        return ExitCode::from(u8::from(!serin_loadtester::worker_main()));
    }
    let command = match parse_hey_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let exe = std::env::current_exe().expect("the path of this executable");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match rt.block_on(run_attack(
        &exe,
        &command.spec,
        CancellationToken::new(),
        |_| {},
    )) {
        Ok(report) => {
            match command.output {
                Output::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&report.summary).expect("a summary as JSON")
                ),
                Output::Text => print!("{}", report.summary.to_text()),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}
