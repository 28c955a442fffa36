//! `tapkit-server`: parses arguments, starts logging, runs, maps the outcome to an exit code.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Tapkit attribution server: /r/{code} taps and scans, partners and cards, admin API.
///
/// Settings come from --config (TOML, see server/tapkit.sample.toml) and these
/// environment variables: TAPKIT_DATABASE_URL (sqlite://PATH or postgres://…; default a
/// SQLite file in the data directory), TAPKIT_LISTEN (default 127.0.0.1:8080),
/// TAPKIT_DATA_DIR (default ./tapkit-data), TAPKIT_RATE_LIMIT_PER_HOUR (default 50, 0 =
/// off), TAPKIT_SQLITE_SYNCHRONOUS (full, the default: a click whose 302 was sent survives
/// power loss; normal: it survives a server crash, faster), TAPKIT_SECRET_FILE (default
/// <data dir>/secret, created on first start).
#[derive(Debug, Parser)]
#[command(name = "tapkit-server", version, max_term_width = 100)]
struct Cli {
    /// Config file (TOML).
    #[arg(long, env = "TAPKIT_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve,
    /// Admin API tokens.
    Token {
        /// Token action.
        #[command(subcommand)]
        action: TokenAction,
    },
}

#[derive(Debug, Subcommand)]
enum TokenAction {
    /// Create a token and print it on stdout (only the token; only its hash is stored).
    Create {
        /// Who or what uses it, e.g. "provisioner at the front desk".
        #[arg(long)]
        name: String,
    },
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = tapkit_server::config::load(cli.config.as_deref()).map_err(anyhow::Error::msg)?;
    let secret = config.secret().map_err(anyhow::Error::msg)?;
    let state = tapkit_server::AppState::new(config, &secret).await?;
    match cli.command {
        Command::Serve => tapkit_server::serve(state).await?,
        Command::Token {
            action: TokenAction::Create { name },
        } => {
            let token = tapkit_server::keys::new_api_token();
            state
                .store
                .add_token(&name, &tapkit_server::keys::token_hash(&token))
                .await?;
            println!("{token}");
        }
    }
    Ok(())
}
