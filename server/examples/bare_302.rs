//! The ceiling for `/r/{code}` on this machine: a bare Axum handler answering the same
//! 302 with a Set-Cookie, storing nothing. `scripts/bench-redirect.sh` runs it beside the
//! real server in the same run.
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

async fn tap() -> impl IntoResponse {
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, "https://book.example.com/"),
            (
                header::SET_COOKIE,
                "tapkit_ref=v1.1.1.00; Max-Age=2592000; Path=/; Secure; SameSite=Lax; HttpOnly",
            ),
        ],
    )
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::var("BARE_LISTEN").unwrap_or_else(|_| "127.0.0.1:8090".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(listener, Router::new().route("/r/{code}", get(tap))).await
}
