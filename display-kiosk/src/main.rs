//! `display-kiosk`: parses the command line, starts logging, runs the subcommand (see
//! [`display_kiosk::run`]) and maps the result to an exit status.

use std::process::ExitCode;

use clap::Parser;
use display_kiosk::cli::Cli;
use display_kiosk::error::ExitStatus;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_env("TAPKIT_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    match display_kiosk::run(cli) {
        Ok(()) => ExitStatus::Ok.into(),
        Err(e) => {
            eprintln!("display-kiosk: {e}");
            e.exit_status().into()
        }
    }
}
