//! The ceiling for `/r/{code}` on this machine: a bare Axum handler answering the same
//! 302 (the same headers as an attributed tap), storing nothing. `scripts/bench-redirect.sh`
//! runs it beside the real server in the same run.
//!
//! With `BARE_WAIT=1` each request first waits, as a tap does, for a writer thread built
//! like the SQLite click writer (a tokio channel, every waiting request taken at once,
//! one reply each) that stores nothing: the cost of waiting for any commit before the
//! 302, apart from the storage itself.
//!
//! With `BARE_WAIT=sqlite` that writer stores: each batch is one `BEGIN IMMEDIATE …
//! COMMIT` of one small row per request (`INSERT INTO hits (at) VALUES (?)`, a prepared
//! statement) into a SQLite file in WAL mode with `synchronous=FULL`, before the replies:
//! the least a durable group commit can cost, without any of Tapkit's work. The file is
//! `BARE_DB` (default `bare.db` in the current folder).
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

/// A writer thread that answers every waiting request at once, after committing one row
/// per request to `db` if there is one.
fn writer(mut db: Option<rusqlite::Connection>) -> Waiting {
    let (tx, mut rx) = mpsc::channel::<oneshot::Sender<()>>(2048);
    std::thread::spawn(move || {
        let mut batch = Vec::with_capacity(512);
        while let Some(r) = rx.blocking_recv() {
            batch.push(r);
            while batch.len() < 512 {
                let Ok(r) = rx.try_recv() else { break };
                batch.push(r);
            }
            if let Some(db) = db.as_mut() {
                store(db, batch.len()).expect("writing the bench's rows");
            }
            for r in batch.drain(..) {
                let _ = r.send(());
            }
        }
    });
    tx
}

/// One transaction of `n` rows, as the click writer commits a batch.
fn store(db: &mut rusqlite::Connection, n: usize) -> rusqlite::Result<()> {
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    {
        let mut insert = tx.prepare_cached("INSERT INTO hits (at) VALUES (?1)")?;
        for _ in 0..n {
            insert.execute([at])?;
        }
    }
    tx.commit()
}

fn open_db() -> rusqlite::Result<rusqlite::Connection> {
    let path = std::env::var("BARE_DB").unwrap_or_else(|_| "bare.db".into());
    let db = rusqlite::Connection::open(path)?;
    db.pragma_update(None, "journal_mode", "WAL")?;
    db.pragma_update(None, "synchronous", "FULL")?;
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS hits (id INTEGER PRIMARY KEY, at INTEGER NOT NULL)",
    )?;
    Ok(db)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::var("BARE_LISTEN").unwrap_or_else(|_| "127.0.0.1:8090".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let app = if let Some(mode) = std::env::var_os("BARE_WAIT") {
        let db = if mode == "sqlite" {
            Some(open_db().map_err(std::io::Error::other)?)
        } else {
            None
        };
        let w = writer(db);
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
