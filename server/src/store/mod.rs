//! The store: programs, affiliates, cards, clicks, kill-switches and API tokens, on a
//! SQLite file (default) or PostgreSQL (several replicas), behind one interface.
//!
//! Both databases run the same SQL through sqlx's `Any` driver: `$N` placeholders (which
//! SQLite accepts too), integer Unix-millisecond times and text enums, so the same store
//! test suite runs against both. Migrations are embedded per database
//! (`migrations/sqlite`, `migrations/postgres`) and applied at start-up. One exception:
//! on SQLite, clicks are written through a connection of their own ([`click_db`],
//! rusqlite on the same bundled SQLite), the hot path of every tap.

pub mod analytics;
mod checkin_db;
pub mod checkins;
pub(crate) mod click_db;
pub mod clicks;
pub mod directory;
pub mod kiosks;
pub mod ledger;
pub mod member_money;
pub mod members;
pub mod money;
pub mod partners;
pub mod reviews;
pub mod rewards;
pub mod tokens;
pub mod vocab;
pub mod web;

pub use analytics::{AffiliateDay, CardDay};
pub(crate) use clicks::ClickDbHandle;
pub use clicks::{NewClick, SqliteSync, Utm};
pub use directory::{DirectoryAffiliate, DirectoryRows};
pub use partners::{Affiliate, AffiliateUpdate, Card};

use serde::Serialize;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// A SQLite file.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// Store failures, mapped to HTTP statuses by the API layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database URL is not one we support.
    #[error("TAPKIT_DATABASE_URL must start with sqlite:// or postgres:// (got {0:?})")]
    BadUrl(String),
    /// The server cannot start with these settings (the message says why).
    #[error("{0}")]
    Config(String),
    /// An in-memory SQLite URL.
    #[error(
        "TAPKIT_DATABASE_URL {0:?} is an in-memory SQLite database: it would vanish with the server and its connections would each see another one; use sqlite://PATH to a file"
    )]
    InMemory(String),
    /// The row does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The card is bound to another affiliate.
    #[error(
        "card {uid} is already registered to affiliate {affiliate_id}; retire it first (POST /api/admin/cards/{card_id}/retire)"
    )]
    CardBound {
        /// The card UID.
        uid: String,
        /// Who has it.
        affiliate_id: i64,
        /// Its card id.
        card_id: i64,
    },
    /// The card is bound to this affiliate under another chip or key version: it was
    /// re-keyed, and its counter restarted, so it needs a binding of its own.
    #[error(
        "card {uid} is registered to this affiliate as {was}; a re-keyed card starts its counter again, so retire the old binding first (POST /api/admin/cards/{card_id}/retire), then register it again"
    )]
    CardRekeyed {
        /// The card UID.
        uid: String,
        /// What the binding says: `an NTAG21x card` or `key version N`.
        was: String,
        /// Its card id.
        card_id: i64,
    },
    /// The card is a member's card (`provision --members` bound it).
    #[error(
        "card {uid} is member {member_id}'s membership card; revoke it first (POST /api/admin/member-cards/{card_id}/revoke)"
    )]
    MemberCardBound {
        /// The card UID.
        uid: String,
        /// Whose it is.
        member_id: i64,
        /// Its member card id.
        card_id: i64,
    },
    /// The customer already has a live membership of the program.
    #[error(
        "customer {customer_id:?} already has a live membership (member {member_id}); change its plan instead (POST /api/admin/members/{member_id}/plan)"
    )]
    AlreadyMember {
        /// The customer.
        customer_id: String,
        /// Their live membership.
        member_id: i64,
    },
    /// No unique code could be generated (practically impossible).
    #[error("could not generate a unique referral code; try again")]
    CodeSpace,
    /// Migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Anything else the database said.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// What SQLite said to the click writer's own connection.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A row holds a word of a vocabulary this version does not know.
    #[error(transparent)]
    Vocab(#[from] vocab::UnknownWord),
}

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A brand's referral program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Program {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Domain in card and QR URLs.
    pub domain: String,
    /// Where `/r/{code}` redirects.
    pub booking_url: String,
    /// Attribution cookie lifetime.
    pub cookie_days: i64,
    /// Last-touch (a newer click replaces the attribution) instead of first-touch.
    pub last_touch: bool,
}

/// The store.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Serialises this process's money transactions (see [`crate::store::money`]).
    money: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// On SQLite: the connection clicks are written through (see [`click_db`]).
    click_db: Option<ClickDbHandle>,
    /// On SQLite: the check-in connection's writer (see [`checkin_db`]).
    checkin_db: Option<checkin_db::Handle>,
}

impl Store {
    /// Connects (creating a SQLite file if needed) and applies the migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, SqliteSync::Full).await
    }

    /// [`Store::connect`] with SQLite's durability setting.
    pub async fn connect_with(url: &str, sync: SqliteSync) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::BadUrl(url.to_owned()));
        };
        if backend == Backend::Sqlite && (url.contains(":memory:") || url.contains("mode=memory")) {
            return Err(StoreError::InMemory(url.to_owned()));
        }
        let url = if backend == Backend::Sqlite && !url.contains("mode=") {
            format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
        } else {
            url.to_owned()
        };
        let mut opts =
            AnyPoolOptions::new().max_connections(if backend == Backend::Sqlite { 8 } else { 16 });
        if backend == Backend::Sqlite {
            // A local file connection does not go stale: skip the ping sqlx would send
            // before every checkout (one round trip per click batch on the hot path).
            opts = opts.test_before_acquire(false);
            opts = opts.after_connect(move |conn, _| {
                Box::pin(async move {
                    // WAL: readers never wait for the writer. FULL (default): a committed
                    // click survives power loss; NORMAL: a server crash. busy_timeout: the
                    // pool's writers queue instead of failing with "database is locked".
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute(match sync {
                        SqliteSync::Full => "PRAGMA synchronous = FULL",
                        SqliteSync::Normal => "PRAGMA synchronous = NORMAL",
                    })
                    .await?;
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    Ok(())
                })
            });
        }
        let pool = opts.connect(&url).await?;
        let (click_db, checkin_db) = match backend {
            Backend::Sqlite => {
                SQLITE_MIGRATIONS.run(&pool).await?;
                let path = url
                    .parse::<sqlx::sqlite::SqliteConnectOptions>()?
                    .get_filename()
                    .to_owned();
                let checkins = checkin_db::spawn(&path, sync)?;
                let db = tokio::task::spawn_blocking(move || click_db::ClickDb::open(&path, sync))
                    .await
                    .map_err(|e| {
                        sqlx::Error::Protocol(format!("opening the click database: {e}"))
                    })??;
                (
                    Some(std::sync::Arc::new(std::sync::Mutex::new(db))),
                    Some(checkins),
                )
            }
            Backend::Postgres => {
                POSTGRES_MIGRATIONS.run(&pool).await?;
                (None, None)
            }
        };
        Ok(Self {
            pool,
            backend,
            money: Default::default(),
            click_db,
            checkin_db,
        })
    }

    /// The connection pool (for the other store modules).
    fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers (for `/healthz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Creates the program with id 1 if missing, or updates it to this configuration.
    pub async fn ensure_program(&self, p: &Program) -> Result<Program, StoreError> {
        let mut tx = self.pool.begin().await?;
        let exists = sqlx::query("SELECT id FROM programs WHERE id = $1")
            .bind(p.id)
            .fetch_optional(&mut *tx)
            .await?;
        let q = if exists.is_some() {
            "UPDATE programs SET name = $2, domain = $3, booking_url = $4, cookie_days = $5, last_touch = $6 WHERE id = $1"
        } else {
            "INSERT INTO programs (id, name, domain, booking_url, cookie_days, last_touch) VALUES ($1, $2, $3, $4, $5, $6)"
        };
        sqlx::query(q)
            .bind(p.id)
            .bind(&p.name)
            .bind(&p.domain)
            .bind(&p.booking_url)
            .bind(p.cookie_days)
            .bind(i64::from(p.last_touch))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(p.clone())
    }
}
