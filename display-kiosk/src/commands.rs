//! The subcommands: `enroll` (trade a code for an identity, cache the settings once),
//! `run` (serve the page and keep it in sync, until SIGTERM or Ctrl-C) and `snapshot`
//! (the current frame as a PNG, offline). [`run`] is what `main` calls.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::cli::{Cli, Command};
use crate::desk::Desk;
use crate::error::KioskError;
use crate::frame::Pad;
use crate::page::{self, Page};
use crate::queue::Queues;
use crate::state::{self, StateDir};
use crate::sync::{self, Live};

/// Runs the command line's subcommand on a single-threaded runtime.
pub fn run(cli: Cli) -> Result<(), KioskError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(KioskError::Runtime)?;
    runtime.block_on(async {
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
                reader,
                checkin_secs,
            } => {
                let desk = reader.map(|r| (r, Duration::from_secs(checkin_secs)));
                serve(state_dir, listen, pad, max_backoff_secs, desk).await
            }
            Command::Snapshot {
                state_dir,
                size,
                pad,
                out,
            } => snapshot(state_dir, size, pad, &out),
        }
    })
}

fn open_state(dir: Option<PathBuf>) -> Result<StateDir, KioskError> {
    let dir = dir.unwrap_or_else(state::default_dir);
    StateDir::open(&dir).map_err(KioskError::OpenState)
}

/// `--server` without its trailing slash, checked to be http(s); plain HTTP beyond
/// this box is allowed (a test bench) but warned about.
fn server_url(raw: &str) -> Result<&str, KioskError> {
    let server = raw.trim().trim_end_matches('/');
    let Some(host) = server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"))
        .filter(|h| !h.is_empty())
    else {
        return Err(KioskError::ServerUrl {
            server: server.to_owned(),
        });
    };
    if server.starts_with("http://") && !is_loopback_host(host) {
        tracing::warn!(
            "{server} is plain HTTP: the kiosk's secret would cross the network unencrypted; use https:// outside a test bench"
        );
    }
    Ok(server)
}

/// Whether a URL's host part (after the scheme) names this box.
fn is_loopback_host(host: &str) -> bool {
    // The host: up to the port or path; an IPv6 literal up to its closing bracket.
    let h = if host.starts_with('[') {
        host.split_inclusive(']').next().unwrap_or("")
    } else {
        host.split([':', '/']).next().unwrap_or("")
    };
    matches!(h, "127.0.0.1" | "localhost" | "[::1]")
}

async fn enroll(server: &str, code: &str, dir: Option<PathBuf>) -> Result<(), KioskError> {
    let server = server_url(server)?;
    let state = open_state(dir)?;
    let http = sync::client().map_err(KioskError::Http)?;
    let id = sync::enroll(&http, server, code)
        .await
        .map_err(|e| match e {
            sync::CallError::Unreachable(message) => KioskError::Unreachable {
                server: server.to_owned(),
                message,
            },
            sync::CallError::Refused { message, .. } => KioskError::EnrollRefused { message },
            other => KioskError::EnrollAnswer {
                server: server.to_owned(),
                message: other.to_string(),
            },
        })?;
    let previous = state.identity().ok();
    state.save_identity(&id).map_err(KioskError::SaveIdentity)?;
    if previous
        .as_ref()
        .is_some_and(|p| p.kiosk_id != id.kiosk_id || p.server != id.server)
    {
        state.clear_config();
    }
    // Fetch the settings once, so the display can start even if the network is down then.
    let cached = match sync::fetch_config(&http, &id, None).await {
        Ok(Some(raw)) => match crate::config::check(&raw) {
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

/// What the display starts from: the cached config (if it still passes its checks) and
/// the last measured clock offset.
fn load_live(state: &StateDir) -> Live {
    let mut live = Live {
        clock_offset_ms: state.clock_offset(),
        ..Live::default()
    };
    if let Some(raw) = state.cached_config() {
        match crate::config::check(&raw) {
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

/// `run`: the page on `listen`, the sync loop beside it, until SIGTERM or Ctrl-C.
async fn serve(
    dir: Option<PathBuf>,
    listen: SocketAddr,
    pad: Pad,
    max_backoff: u64,
    reader: Option<(String, Duration)>,
) -> Result<(), KioskError> {
    let state = open_state(dir)?;
    let id = state.identity().map_err(KioskError::Identity)?;
    let live = Arc::new(RwLock::new(load_live(&state)));
    if !listen.ip().is_loopback() {
        tracing::warn!(%listen, "the display is served beyond this box; anyone on the network can see its page and status");
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| KioskError::Listen { listen, source })?;
    let page = Page {
        live: live.clone(),
        kiosk_id: id.kiosk_id,
        secret: Arc::new(id.secret_bytes()),
        pad,
        started: Instant::now(),
        desk: None,
    };
    tracing::info!(kiosk = id.kiosk_id, server = %id.server, "display on http://{listen}/");
    let http = sync::client().map_err(KioskError::Http)?;
    let desk = reader.map(|(name, shown_for)| {
        sync::write(&live).desk_shown_for = shown_for;
        let desk = Arc::new(Desk {
            http: http.clone(),
            id: id.clone(),
            queues: std::sync::Mutex::new(Queues::new(state.path(), id.secret_bytes())),
            live: live.clone(),
            seen: std::sync::Mutex::default(),
        });
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        std::thread::Builder::new()
            .name("card-reader".into())
            .spawn(move || crate::reader::watch(&name, &tx))
            .map(drop)
            .unwrap_or_else(|e| tracing::error!(%e, "cannot start the card reader's thread"));
        tokio::spawn(crate::desk::run(desk.clone(), rx));
        desk
    });
    tokio::spawn(sync::run(http, id, state, live, max_backoff, desk.clone()));
    axum::serve(listener, page::routes(page, desk))
        .with_graceful_shutdown(shutdown())
        .await
        .map_err(KioskError::Serve)
}

/// Resolves on SIGTERM (systemd stopping the unit) or Ctrl-C.
async fn shutdown() {
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
}

fn snapshot(
    dir: Option<PathBuf>,
    (w, h): (u32, u32),
    pad: Pad,
    out: &Path,
) -> Result<(), KioskError> {
    let state = open_state(dir)?;
    let id = state.identity().map_err(KioskError::Identity)?;
    let live = load_live(&state);
    if live.config.is_none() {
        return Err(KioskError::NoConfig {
            dir: state.path().to_path_buf(),
        });
    }
    let live = Arc::new(RwLock::new(live));
    let frame = page::current_frame(&live, id.kiosk_id, &id.secret_bytes(), pad, w, h);
    let img = frame.raster();
    img.save_with_format(out, image::ImageFormat::Png)
        .map_err(|source| KioskError::WritePng {
            path: out.to_path_buf(),
            source,
        })?;
    println!(
        "wrote {} ({w}x{h}); the QR reads {}",
        out.display(),
        frame.qr_url.as_deref().unwrap_or("(none)")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_url_is_checked_and_trimmed() {
        assert_eq!(
            server_url(" https://book.example.com/ ").unwrap(),
            "https://book.example.com"
        );
        assert_eq!(
            server_url("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        for bad in ["book.example.com", "https://", "ftp://book.example.com", ""] {
            assert!(
                matches!(server_url(bad), Err(KioskError::ServerUrl { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn only_this_box_counts_as_loopback() {
        for h in ["127.0.0.1:8080", "localhost/", "[::1]:80", "localhost"] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in ["localhost.evil.example", "10.0.0.2", "[::2]", "127.0.0.10"] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }

    fn tmp(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!(
            "tapkit-kiosk-commands-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        p
    }

    #[test]
    fn a_damaged_cache_is_reported_not_shown() {
        let dir = StateDir::open(&tmp("cache")).unwrap();
        assert!(load_live(&dir).config.is_none());
        dir.save_config("{\"version\": 3}").unwrap();
        dir.save_clock_offset(250).unwrap();
        let live = load_live(&dir);
        assert!(live.config.is_none());
        assert_eq!(live.clock_offset_ms, 250);
        let e = live.last_error.unwrap();
        assert!(
            e.starts_with("cached config unusable: display config: version"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(dir.path());
    }

    #[test]
    fn commands_before_enrolment_say_to_enrol() {
        let dir = tmp("none");
        let e = snapshot(
            Some(dir.clone()),
            (800, 480),
            Pad::Below,
            &dir.join("x.png"),
        )
        .unwrap_err();
        assert_eq!(
            e.exit_status(),
            crate::error::ExitStatus::NotEnrolled,
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
