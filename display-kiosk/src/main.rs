//! `display-kiosk`: enrol once, then run the counter display (see `--help`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use clap::{Parser, Subcommand};
use display_kiosk::frame::Pad;
use display_kiosk::page::{self, Page};
use display_kiosk::state::{self, StateDir};
use display_kiosk::sync::{self, Live};

/// The Tapkit counter display: the brand, "tap your phone here to book", and a QR code
/// for phones without NFC, whose URL carries a token that rotates every minute and is
/// signed by this kiosk, so the server knows the scan came from this counter.
///
/// Set up once: the admin creates a kiosk for the partner (POST /api/admin/kiosks) and
/// gives you an enrolment code; run `display-kiosk enroll`. Then `display-kiosk run`
/// serves the display on 127.0.0.1 for a browser in kiosk mode (see docs/kiosk.md). It
/// keeps working offline from its cache and reports its health to the server.
#[derive(Parser)]
#[command(name = "display-kiosk", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Trade a one-time enrolment code for this kiosk's identity (stored owner-only in
    /// the state directory), and fetch the display settings once.
    Enroll {
        /// The Tapkit server, e.g. https://book.example.com (where /api/kiosk/... is served).
        #[arg(long)]
        server: String,
        /// The enrolment code the admin gave you, e.g. 7KQ2M-9XD4P (case and hyphens do
        /// not matter; codes are single-use and expire after a day).
        #[arg(long)]
        code: String,
        /// Where the kiosk keeps its state [default: $STATE_DIRECTORY, else
        /// $XDG_STATE_HOME/tapkit-kiosk, else ~/.local/state/tapkit-kiosk].
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// Serve the display on 127.0.0.1 and keep it in sync with the server (forever:
    /// network errors, a bad config from the server or a full disk never stop it).
    Run {
        /// Where the kiosk keeps its state (as for enroll).
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Where to serve the page; point the kiosk browser at it.
        #[arg(long, default_value = "127.0.0.1:8088")]
        listen: SocketAddr,
        /// Where the NFC pad sits relative to the screen; the pointer points there.
        #[arg(long, value_enum, default_value = "below")]
        pad: Pad,
        /// Longest wait between retries while the server is unreachable, seconds.
        #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(2..=3600))]
        max_backoff_secs: u64,
    },
    /// Render the frame the screen shows right now to a PNG (from the cached settings;
    /// no network needed).
    Snapshot {
        /// Where the kiosk keeps its state (as for enroll).
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Screen size, WIDTHxHEIGHT, e.g. 800x480 or 1080x1920 (portrait).
        #[arg(long, value_parser = parse_size)]
        size: (u32, u32),
        /// Where the NFC pad sits relative to the screen.
        #[arg(long, value_enum, default_value = "below")]
        pad: Pad,
        /// The PNG to write.
        out: PathBuf,
    },
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("{s:?} is not a size like 800x480 (width x height, 160 to 7680 each)");
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let (w, h): (u32, u32) = (
        w.trim().parse().map_err(|_| bad())?,
        h.trim().parse().map_err(|_| bad())?,
    );
    if !(160..=7680).contains(&w) || !(160..=7680).contains(&h) {
        return Err(bad());
    }
    Ok((w, h))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TAPKIT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("display-kiosk: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Enroll {
                server,
                code,
                state_dir,
            } => enroll(&server, &code, state_dir).await,
            Command::Run {
                state_dir,
                listen,
                pad,
                max_backoff_secs,
            } => run(state_dir, listen, pad, max_backoff_secs).await,
            Command::Snapshot {
                state_dir,
                size,
                pad,
                out,
            } => snapshot(state_dir, size, pad, &out),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("display-kiosk: {e}");
            ExitCode::FAILURE
        }
    }
}

fn open_state(dir: Option<PathBuf>) -> Result<StateDir, String> {
    let dir = dir.unwrap_or_else(state::default_dir);
    StateDir::open(&dir).map_err(|e| format!("state directory: {e}"))
}

async fn enroll(server: &str, code: &str, dir: Option<PathBuf>) -> Result<(), String> {
    let server = server.trim().trim_end_matches('/');
    let Some(host) = server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"))
        .filter(|h| !h.is_empty())
    else {
        return Err(format!(
            "--server {server:?} must be a URL like https://book.example.com"
        ));
    };
    if server.starts_with("http://") {
        // The host: up to the port or path; an IPv6 literal up to its closing bracket.
        let h = if host.starts_with('[') {
            host.split_inclusive(']').next().unwrap_or("")
        } else {
            host.split([':', '/']).next().unwrap_or("")
        };
        if !matches!(h, "127.0.0.1" | "localhost" | "[::1]") {
            tracing::warn!(
                "{server} is plain HTTP: the kiosk's secret would cross the network unencrypted; use https:// outside a test bench"
            );
        }
    }
    let state = open_state(dir)?;
    let http = sync::client().map_err(|e| format!("cannot set up HTTP: {e}"))?;
    let id = sync::enroll(&http, server, code).await.map_err(|e| match e {
        sync::CallError::Unreachable(m) => {
            format!("cannot reach {server} ({m}); check the URL and this box's network, then try again")
        }
        sync::CallError::Refused { message, .. } => format!("enrolment refused: {message}"),
        other => format!("enrolment refused: {other}"),
    })?;
    let previous = state.identity().ok();
    state
        .save_identity(&id)
        .map_err(|e| format!("cannot save the identity: {e}"))?;
    if previous
        .as_ref()
        .is_some_and(|p| p.kiosk_id != id.kiosk_id || p.server != id.server)
    {
        state.clear_config();
    }
    // Fetch the settings once, so the display can start even if the network is down then.
    let cached = match sync::fetch_config(&http, &id, None).await {
        Ok(Some(raw)) => match display_kiosk::config::check(&raw) {
            Ok(_) => state.save_config(&raw).map(|()| true).unwrap_or(false),
            Err(e) => {
                eprintln!(
                    "display-kiosk: the server's display settings were refused ({e}); `run` will retry"
                );
                false
            }
        },
        _ => false,
    };
    println!(
        "Enrolled as kiosk {} for partner {} on {}.\nState: {} (identity owner-only{})\nStart the display: display-kiosk run --state-dir {}",
        id.kiosk_id,
        id.affiliate_code,
        id.server,
        state.path().display(),
        if cached {
            ", display settings cached"
        } else {
            "; display settings not cached yet"
        },
        state.path().display()
    );
    Ok(())
}

fn load_live(state: &StateDir) -> Live {
    let mut live = Live {
        clock_offset_ms: state.clock_offset(),
        ..Live::default()
    };
    if let Some(raw) = state.cached_config() {
        match display_kiosk::config::check(&raw) {
            Ok(c) => {
                tracing::info!(version = %c.config.version, "starting from the cached display config");
                live.config = Some(c);
            }
            Err(e) => {
                tracing::warn!(
                    "the cached display config is unusable ({e}); waiting for the server"
                );
                live.last_error = Some(format!("cached config unusable: {e}"));
            }
        }
    }
    live
}

async fn run(
    dir: Option<PathBuf>,
    listen: SocketAddr,
    pad: Pad,
    max_backoff: u64,
) -> Result<(), String> {
    let state = open_state(dir)?;
    let id = state.identity().map_err(|e| e.to_string())?;
    let live = Arc::new(RwLock::new(load_live(&state)));
    if !listen.ip().is_loopback() {
        tracing::warn!(%listen, "the display is served beyond this box; anyone on the network can see its page and status");
    }
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        format!("cannot serve the display on {listen}: {e}; pick another address with --listen")
    })?;
    let page = Page {
        live: live.clone(),
        kiosk_id: id.kiosk_id,
        secret: Arc::new(id.secret_bytes()),
        pad,
        started: Instant::now(),
    };
    tracing::info!(kiosk = id.kiosk_id, server = %id.server, "display on http://{listen}/");
    let http = sync::client().map_err(|e| format!("cannot set up HTTP: {e}"))?;
    tokio::spawn(sync::run(http, id, state, live, max_backoff));
    axum::serve(listener, page::routes(page))
        .with_graceful_shutdown(async {
            let term = async {
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                () = term => {}
            }
            tracing::info!("stopping");
        })
        .await
        .map_err(|e| format!("serving the display failed: {e}"))
}

fn snapshot(
    dir: Option<PathBuf>,
    (w, h): (u32, u32),
    pad: Pad,
    out: &std::path::Path,
) -> Result<(), String> {
    let state = open_state(dir)?;
    let id = state.identity().map_err(|e| e.to_string())?;
    let live = load_live(&state);
    if live.config.is_none() {
        return Err(format!(
            "no usable display settings in {}: run `display-kiosk run` once with the server reachable",
            state.path().display()
        ));
    }
    let live = Arc::new(RwLock::new(live));
    let frame = page::current_frame(&live, id.kiosk_id, &id.secret_bytes(), pad, w, h);
    let img = frame.raster();
    img.save_with_format(out, image::ImageFormat::Png)
        .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    println!(
        "wrote {} ({w}x{h}); the QR reads {}",
        out.display(),
        frame.qr_url.as_deref().unwrap_or("(none)")
    );
    Ok(())
}
