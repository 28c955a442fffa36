//! `provisioner`: parses arguments, starts logging, runs, maps the result to an exit code.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use tapkit_provisioner::cli::{Cli, ExitStatus};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = start_tracing(cli.verbose) {
        eprintln!("error: {e:#}");
        return ExitStatus::Failed.into();
    }
    match tapkit_provisioner::run(cli) {
        Ok(()) => ExitStatus::Ok.into(),
        Err(e) => {
            eprint!("{}", e.render());
            e.exit_status().into()
        }
    }
}

/// Logs to stderr: RUST_LOG if set, else by `-v` count.
fn start_tracing(verbose: u8) -> anyhow::Result<()> {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr)
        .try_init()
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("cannot start logging")
}
