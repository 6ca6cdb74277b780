//! One logging setup for every server (`controller`, `webhook`, `loadtester`): the same flags,
//! JSON lines for machines (the default when stderr is not a terminal: `kubectl logs`, files,
//! pipes) and text for people, no ANSI colour anywhere but a terminal.

use std::io::IsTerminal;

use anyhow::Context;
use clap::ValueEnum;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One JSON object per line, fields as plain values.
    Json,
    /// Human-readable lines.
    Text,
}

/// The logging flags every server flattens into its own.
#[derive(clap::Args, Clone, Debug)]
pub struct LogArgs {
    /// Log level (error, warn, info, debug, trace) or a tracing filter
    /// (e.g. `info,serin_controller=debug`).
    #[arg(long, env = "SERIN_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// json or text; default json unless stderr is a terminal.
    #[arg(long, env = "SERIN_LOG_FORMAT", value_enum)]
    pub log_format: Option<Format>,
}

/// Installs the process's subscriber, writing to stderr.
pub fn init(args: &LogArgs) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level).with_context(|| {
        format!(
            "--log-level {:?}: use error, warn, info, debug or trace, or a tracing filter",
            args.log_level
        )
    })?;
    let terminal = std::io::stderr().is_terminal();
    let format = args
        .log_format
        .unwrap_or(if terminal { Format::Text } else { Format::Json });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(terminal && format == Format::Text && std::env::var_os("NO_COLOR").is_none());
    // try_init: a second server in the same process (tests) keeps the first subscriber.
    let installed = match format {
        Format::Json => builder.json().flatten_event(true).try_init(),
        Format::Text => builder.try_init(),
    };
    drop(installed);
    Ok(())
}
