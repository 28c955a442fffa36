//! Tapkit attribution server, laid out along the loop: a tap becomes a click, a click a
//! booking's attribution, a paid and serviced booking a commission, commissions a
//! month's payouts.
//!
//! - [`tap`]: `GET /r/{code}`, the in-memory directory, the click writer, client
//!   addresses and their keyed hash.
//! - [`money`]: signed conversion webhooks (wire), attribution, the pure commission
//!   decision (policy), ledger writes (posting), reviews, month close and payouts.
//! - [`kiosks`]: the counter displays' enrolment, config and heartbeats.
//! - [`members`]: memberships' pure decisions (plans, billing periods and proration,
//!   visits with rollover, dunning); issue 19 builds the rest on them.
//! - [`api`]: the admin JSON API, its extractors, its error type and the OpenAPI document.
//! - [`web`]: the admin console and the partner portal (server-rendered HTML).
//! - [`store`]: the only place with SQL (SQLite file or PostgreSQL).
//!
//! Handlers call services, services call the store; [`app`] assembles each area's
//! `routes()` and [`serve`] runs them. `docs/architecture.md` walks through one tap and
//! one webhook, module by module.

pub mod api;
pub mod config;
pub mod keys;
pub mod kiosks;
pub mod members;
pub mod metrics;
pub mod money;
pub mod rewards;
pub mod store;
pub mod tap;
pub mod web;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;

/// Shared state of the routes.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

/// What the routes share.
#[derive(Debug)]
pub struct Inner {
    /// The store.
    pub store: store::Store,
    /// Keys derived from the server secret.
    pub keys: keys::Keys,
    /// Effective configuration.
    pub config: config::Config,
    /// The default program.
    pub program: store::Program,
    /// The redirect's fixed parts (Location, cookie attributes), built once.
    pub answer: tap::redirect::Answer,
    /// Group-commit writer for clicks.
    pub clicks: tap::writer::ClickWriter,
    /// The `/r/` hop's cached affiliates and kill-switches.
    pub directory: Arc<tap::directory::Directory>,
    /// Prometheus counters.
    pub metrics: Arc<metrics::Metrics>,
    /// The day's key of the IP hash.
    pub ip_keys: tap::ip_keys::IpKeys,
    /// Console and portal state (password lockouts).
    pub web: web::auth::WebState,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl AppState {
    /// Connects the store, applies migrations and writes the configured program.
    pub async fn new(config: config::Config, secret: &[u8]) -> Result<Self, store::StoreError> {
        let store =
            store::Store::connect_with(&config.database_url, config.sqlite_synchronous).await?;
        let program = store.ensure_program(&config.program_row()).await?;
        members::service::check_plans_in_use(&store, &config.program.membership, program.id)
            .await?;
        let answer = tap::redirect::Answer::new(&program, config.program.cookie_domain.as_deref())
            .map_err(store::StoreError::Config)?;
        let metrics = Arc::new(metrics::Metrics::default());
        let clicks = tap::writer::ClickWriter::start(store.clone(), config.rate_limit_per_hour)?;
        let directory = tap::directory::Directory::load(store.clone(), program.id).await?;
        directory.spawn_poller(std::time::Duration::from_secs(1));
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                keys: keys::Keys::new(secret),
                config,
                program,
                answer,
                clicks,
                directory,
                metrics,
                ip_keys: tap::ip_keys::IpKeys::default(),
                web: web::auth::WebState::default(),
            }),
        })
    }
}

/// The router.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(tap::routes())
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::render))
        .merge(money::routes())
        .merge(rewards::routes())
        .merge(api::routes())
        .merge(kiosks::routes())
        .merge(web::routes())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(16 * 1024))
        .with_state(state)
}

async fn healthz(State(s): State<AppState>) -> impl IntoResponse {
    match s.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(json!({ "status": "ok", "database": s.store.backend() })),
        ),
        Err(e) => {
            tracing::error!(%e, "health check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({ "status": "database unreachable" })),
            )
        }
    }
}

/// Serves until SIGTERM or Ctrl-C, then finishes in-flight requests.
pub async fn serve(state: AppState) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(state.config.listen).await?;
    // Hourly: the run is idempotent, so this is also how it catches up after downtime.
    members::renewal::spawn(
        state.store.clone(),
        state.config.program.membership.clone(),
        state.program.id,
        state.config.program.commission.currency.clone(),
        std::time::Duration::from_secs(3600),
    );
    // Charges (with charge_url set): every 10 minutes, so a dunning retry goes out on its
    // day and a new invoice is charged soon after the renewal run issues it.
    members::charges::spawn(state.clone(), std::time::Duration::from_secs(600));
    // Rewards past their day: every 10 minutes (idempotent).
    rewards::spawn_expiry(state.clone(), std::time::Duration::from_secs(600));
    tracing::info!(addr = %listener.local_addr()?, database = ?state.store.backend(), "serving");
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown())
    .await
}

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
    tracing::info!("shutting down: finishing in-flight requests");
}
