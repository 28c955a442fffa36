//! The ceiling for `/r/{code}` on this machine: a bare Axum handler answering the same
//! 302 (the same headers as an attributed tap), storing nothing. `scripts/bench-redirect.sh`
//! runs it beside the real server in the same run.
//!
//! With `BARE_WAIT=1` each request first waits, as a tap does, for a writer thread built
//! like the SQLite click writer (a tokio channel, every waiting request taken at once,
//! one reply each) that stores nothing: the cost of waiting for any commit before the
//! 302, apart from the storage itself.
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse};
use axum::routing::get;
use tokio::sync::{mpsc, oneshot};

// The same allocator as tapkit-server, so the comparison is of the work, not of malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn tap() -> impl IntoResponse {
    // Byte for byte the headers of an attributed tap: Location, Cache-Control and the
    // cookie pair with a token of the real length (v1.<id>.<ms>.<64 hex digits of MAC>).
    (
        StatusCode::FOUND,
        AppendHeaders([
            (header::LOCATION, "https://book.example.com/"),
            (header::CACHE_CONTROL, "no-store"),
            (header::SET_COOKIE, COOKIE),
            (header::SET_COOKIE, COOKIE_JS),
        ]),
    )
}

const COOKIE: &str = "tapkit_ref=v1.123456.1763740800000.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef; Max-Age=2592000; Path=/; Secure; SameSite=Lax; HttpOnly";
const COOKIE_JS: &str = "tapkit_ref_js=v1.123456.1763740800000.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef; Max-Age=2592000; Path=/; Secure; SameSite=Lax";

type Waiting = mpsc::Sender<oneshot::Sender<()>>;

/// A writer thread that answers every waiting request at once and stores nothing.
fn writer() -> Waiting {
    let (tx, mut rx) = mpsc::channel::<oneshot::Sender<()>>(2048);
    std::thread::spawn(move || {
        let mut batch = Vec::with_capacity(512);
        while let Some(r) = rx.blocking_recv() {
            batch.push(r);
            while batch.len() < 512 {
                let Ok(r) = rx.try_recv() else { break };
                batch.push(r);
            }
            for r in batch.drain(..) {
                let _ = r.send(());
            }
        }
    });
    tx
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::var("BARE_LISTEN").unwrap_or_else(|_| "127.0.0.1:8090".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let app = if std::env::var_os("BARE_WAIT").is_some() {
        let w = writer();
        Router::new().route(
            "/r/{code}",
            get(move || {
                let w = w.clone();
                async move {
                    let (reply, done) = oneshot::channel();
                    if w.send(reply).await.is_ok() {
                        let _ = done.await;
                    }
                    tap().await
                }
            }),
        )
    } else {
        Router::new().route("/r/{code}", get(tap))
    };
    axum::serve(listener, app).await
}
