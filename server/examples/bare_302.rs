//! The ceiling for `/r/{code}` on this machine: a bare Axum handler answering the same
//! 302 (the same headers as an attributed tap), storing nothing. `scripts/bench-redirect.sh` runs it beside the
//! real server in the same run.
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse};
use axum::routing::get;

async fn tap() -> impl IntoResponse {
    // Byte for byte the headers of an attributed tap: Location, Cache-Control and the
    // cookie pair with a token of the real length (v1.<click id>.<ms>.<64 hex digits of HMAC>).
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

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::var("BARE_LISTEN").unwrap_or_else(|_| "127.0.0.1:8090".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(listener, Router::new().route("/r/{code}", get(tap))).await
}
