//! `tapkit-server`: parses arguments, starts logging, runs, maps the outcome to an exit code.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use tracing_subscriber::EnvFilter;

/// Tapkit attribution server: /r/{code} taps and scans, partners and cards, admin API.
///
/// Settings come from --config (TOML, see server/tapkit.sample.toml) and these
/// environment variables: TAPKIT_DATABASE_URL (sqlite://PATH or postgres://…; default a
/// SQLite file in the data directory), TAPKIT_LISTEN (default 127.0.0.1:8080),
/// TAPKIT_DATA_DIR (default ./tapkit-data), TAPKIT_RATE_LIMIT_PER_HOUR (default 50, 0 =
/// off), TAPKIT_SQLITE_SYNCHRONOUS (full, the default: a click whose 302 was sent survives
/// power loss; normal: it survives a server crash, faster), TAPKIT_SECRET_FILE (default
/// <data dir>/secret, created on first start), TAPKIT_PUBLIC_URL (where people reach
/// this server, for sign-in links; default https://<program domain>), TAPKIT_SMTP_URL or
/// TAPKIT_SMTP_URL_FILE (smtps://user:password@host: sign-in links are emailed; without
/// it they are shown to the admin and logged), TAPKIT_MAIL_FROM (their From address),
/// TAPKIT_TRUSTED_PROXIES (comma-separated addresses or blocks of reverse proxies whose
/// X-Forwarded-For names the customer, e.g. 127.0.0.1 behind a local nginx; default none).
///
/// The admin console is at /admin (add an admin with `admin add`), the partner portal at
/// /portal.
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
    /// People who sign in to the admin console (/admin).
    Admin {
        /// Admin action.
        #[command(subcommand)]
        action: AdminAction,
    },
}

#[derive(Debug, Subcommand)]
enum AdminAction {
    /// Add an admin (or change an admin's password). Without --password-stdin the admin
    /// signs in with one-time links only (`admin link`).
    Add {
        /// Their email, which they sign in with.
        #[arg(long)]
        email: String,
        /// Read the password from the first line of standard input (at least 12
        /// characters), e.g. `printf '%s\n' "$PW" | tapkit-server admin add --email … --password-stdin`.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Print a one-time sign-in link for an admin (valid 7 days, works once).
    Link {
        /// The admin's email.
        #[arg(long)]
        email: String,
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
    /// List tokens: id, name, created (never the tokens themselves).
    List,
    /// Revoke a token at once (every replica refuses it from its next request).
    Revoke {
        /// Its id, from `token list`.
        #[arg(long)]
        id: i64,
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
        Command::Token {
            action: TokenAction::List,
        } => {
            let tokens = state.store.list_tokens().await?;
            if tokens.is_empty() {
                println!(
                    "No admin API tokens; make one with `tapkit-server token create --name NAME`."
                );
            }
            for (id, name, created_at) in tokens {
                let day = tapkit_core::date::format_date(created_at.div_euclid(86_400_000));
                println!("{id:>5}  {day}  {name}");
            }
        }
        Command::Token {
            action: TokenAction::Revoke { id },
        } => {
            if !state.store.revoke_token(id).await? {
                anyhow::bail!("no live token with id {id}; `tapkit-server token list` shows them");
            }
            println!("Token {id} revoked.");
        }
        Command::Admin { action } => admin(&state, action).await?,
    }
    Ok(())
}

fn check_email(email: &str) -> anyhow::Result<String> {
    let e = email.trim().to_lowercase();
    if e.len() < 3 || e.len() > 200 || !e.contains('@') || e.starts_with('@') || e.ends_with('@') {
        anyhow::bail!("--email {email:?} is not an email address");
    }
    Ok(e)
}

async fn admin(state: &tapkit_server::AppState, action: AdminAction) -> anyhow::Result<()> {
    use tapkit_server::web::auth::{ADMIN_MADE_LINK_MS, Role, hash_password, make_link};
    let now = tapkit_server::store::now_ms();
    match action {
        AdminAction::Add {
            email,
            password_stdin,
        } => {
            let email = check_email(&email)?;
            let hash = if password_stdin {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                let pw = line.trim_end_matches(['\n', '\r']);
                if pw.chars().count() < 12 {
                    anyhow::bail!(
                        "the password is shorter than 12 characters; use a longer one (a passphrase of a few words is good)"
                    );
                }
                Some(hash_password(pw).map_err(anyhow::Error::msg)?)
            } else {
                None
            };
            let id = state
                .store
                .upsert_admin(&email, hash.as_deref(), now)
                .await?;
            eprintln!(
                "admin {email} (#{id}) {}",
                if hash.is_some() {
                    "can sign in with the password at /admin/sign-in"
                } else {
                    "added; print a sign-in link with `tapkit-server admin link --email …`"
                }
            );
        }
        AdminAction::Link { email } => {
            let email = check_email(&email)?;
            let Some((id, _)) = state.store.admin_by_email(&email).await? else {
                anyhow::bail!(
                    "no admin has the email {email}; add one with `tapkit-server admin add --email {email}`"
                );
            };
            let url = make_link(state, Role::Admin, id, ADMIN_MADE_LINK_MS).await?;
            println!("{url}");
        }
    }
    Ok(())
}
