//! The store: programs, affiliates, cards, clicks, kill-switches and API tokens, on a
//! SQLite file (default) or PostgreSQL (several replicas), behind one interface.
//!
//! Both databases run the same SQL through sqlx's `Any` driver: `$N` placeholders (which
//! SQLite accepts too), integer Unix-millisecond times and text enums, so the same store
//! test suite runs against both. Migrations are embedded per database
//! (`migrations/sqlite`, `migrations/postgres`) and applied at start-up. One exception:
//! on SQLite, clicks are written through a connection of their own ([`click_db`],
//! rusqlite on the same bundled SQLite), the hot path of every tap.

pub(crate) mod click_db;
pub mod kiosks;
pub mod money;
pub mod vocab;
pub mod web;

use serde::Serialize;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor, Row};

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

/// An affiliate (business partner, influencer or customer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Affiliate {
    /// Id.
    pub id: i64,
    /// Program.
    pub program_id: i64,
    /// Name.
    pub name: String,
    /// `business`, `influencer` or `customer`.
    pub kind: String,
    /// `active` or `suspended`.
    pub status: String,
    /// Referral code.
    pub code: String,
    /// Commission tier override, if any.
    pub tier: Option<String>,
    /// Contact (email or phone).
    pub contact: Option<String>,
    /// Created, Unix ms.
    pub created_at: i64,
}

/// Changes to an affiliate: `None` leaves a field, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct AffiliateUpdate {
    /// Commission tier override.
    pub tier: Option<Option<String>>,
    /// Contact.
    pub contact: Option<Option<String>>,
    /// Its customer id in the booking system (self-referral check).
    pub customer_id: Option<Option<String>>,
    /// SHA-256 hex of its normalised email.
    pub email_sha256: Option<Option<String>>,
    /// SHA-256 hex of its normalised phone.
    pub phone_sha256: Option<Option<String>>,
}

/// A physical NFC card bound to an affiliate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Card {
    /// Id.
    pub id: i64,
    /// UID, upper-case hex.
    pub uid: String,
    /// Affiliate.
    pub affiliate_id: i64,
    /// `active`, `lost` or `retired`.
    pub status: String,
    /// Registered, Unix ms.
    pub provisioned_at: i64,
    /// Unbound (lost/retired), Unix ms.
    pub ended_at: Option<i64>,
    /// Highest tap counter seen.
    pub last_counter: Option<i64>,
}

/// A click to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewClick {
    /// When, Unix ms.
    pub at: i64,
    /// The code as resolved (or as given, when invalid).
    pub code: String,
    /// Affiliate, when the code resolved.
    pub affiliate_id: Option<i64>,
    /// `nfc`, `qr`, `kiosk`, `link`.
    pub channel: &'static str,
    /// Card, for NFC taps from a registered card.
    pub card_id: Option<i64>,
    /// Tap counter from the mirror.
    pub counter: Option<i64>,
    /// User agent (truncated).
    pub user_agent: Option<String>,
    /// Referer (truncated).
    pub referer: Option<String>,
    /// Keyed hash of the client IP (never the IP).
    pub ip_hash: String,
    /// `attributed`, `unattributed`, `preview`, `flagged`.
    pub outcome: &'static str,
    /// Why not attributed / why flagged.
    pub reason: Option<&'static str>,
    /// Subject to the per-IP rate limit: the click would earn attribution, unless its
    /// hashed IP has had too many clicks in the last hour (decided when it is written).
    pub rate_limit: bool,
}

/// Rows per multi-row INSERT on PostgreSQL (12 parameters each: 6,144 at most, well
/// under its 65,535). The click writer's batches are at most this long, so a batch is one
/// statement.
const INSERT_CHUNK: usize = 512;

/// What the `/r/` hop caches about affiliates and kill-switches.
#[derive(Debug, Clone, Default)]
pub struct DirectoryRows {
    /// `change_epoch` when read (read before the rows).
    pub epoch: i64,
    /// (id, code, active).
    pub affiliates: Vec<(i64, String, bool)>,
    /// (affiliate or None for the whole program, channel).
    pub kills: Vec<(Option<i64>, String)>,
}

/// SQLite's `synchronous` setting (WAL mode): what a committed click survives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SqliteSync {
    /// Synced at every commit: survives power loss and OS crashes.
    #[default]
    Full,
    /// Synced at checkpoints: survives a crash (even SIGKILL) of the server process,
    /// not of the machine.
    Normal,
}

/// One day of one affiliate's traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AffiliateDay {
    /// Day number (days since 1970-01-01, UTC).
    pub day: i64,
    /// Affiliate.
    pub affiliate_id: i64,
    /// Distinct visitors among real clicks (attributed or not): distinct keyed IP hash +
    /// user agent within the day. No raw IP is ever stored.
    pub visitors: i64,
    /// Real clicks (attributed + unattributed).
    pub clicks: i64,
    /// Of which attributed.
    pub attributed: i64,
    /// Link previews and crawlers (not clicks).
    pub previews: i64,
    /// Flagged traffic: rate-limited, replayed counters, unregistered cards.
    pub flagged: i64,
    /// Real clicks by channel: nfc, qr, kiosk, link.
    pub by_channel: [i64; 4],
}

/// One day of one card binding's taps (a card re-bound to another affiliate is another
/// binding: its history splits at the re-binding, nothing is rewritten).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CardDay {
    /// Day number (UTC).
    pub day: i64,
    /// The binding (cards row).
    pub card_id: i64,
    /// Card UID.
    pub uid: String,
    /// The affiliate the card was bound to in this binding.
    pub affiliate_id: i64,
    /// Distinct visitors among real taps.
    pub visitors: i64,
    /// Real taps.
    pub taps: i64,
    /// Flagged taps (replayed counter, revoked card …).
    pub flagged: i64,
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
}

/// The click connection, shared by the click writer's thread and [`Store::insert_clicks`].
pub(crate) type ClickDbHandle = std::sync::Arc<std::sync::Mutex<click_db::ClickDb>>;

fn affiliate(r: &AnyRow) -> Result<Affiliate, sqlx::Error> {
    Ok(Affiliate {
        id: r.try_get("id")?,
        program_id: r.try_get("program_id")?,
        name: r.try_get("name")?,
        kind: r.try_get("kind")?,
        status: r.try_get("status")?,
        code: r.try_get("code")?,
        tier: r.try_get("tier")?,
        contact: r.try_get("contact")?,
        created_at: r.try_get("created_at")?,
    })
}

fn card(r: &AnyRow) -> Result<Card, sqlx::Error> {
    Ok(Card {
        id: r.try_get("id")?,
        uid: r.try_get("uid")?,
        affiliate_id: r.try_get("affiliate_id")?,
        status: r.try_get("status")?,
        provisioned_at: r.try_get("provisioned_at")?,
        ended_at: r.try_get("ended_at")?,
        last_counter: r.try_get("last_counter")?,
    })
}

const AFFILIATE_COLS: &str = "id, program_id, name, kind, status, code, tier, contact, created_at";
const CARD_COLS: &str = "id, uid, affiliate_id, status, provisioned_at, ended_at, last_counter";

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    // getrandom only fails when the OS has no entropy source at all.
    let _ = getrandom::fill(&mut b);
    u32::from_le_bytes(b)
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
        let click_db = match backend {
            Backend::Sqlite => {
                SQLITE_MIGRATIONS.run(&pool).await?;
                let path = url
                    .parse::<sqlx::sqlite::SqliteConnectOptions>()?
                    .get_filename()
                    .to_owned();
                let db = tokio::task::spawn_blocking(move || click_db::ClickDb::open(&path, sync))
                    .await
                    .map_err(|e| {
                        sqlx::Error::Protocol(format!("opening the click database: {e}"))
                    })??;
                Some(std::sync::Arc::new(std::sync::Mutex::new(db)))
            }
            Backend::Postgres => {
                POSTGRES_MIGRATIONS.run(&pool).await?;
                None
            }
        };
        Ok(Self {
            pool,
            backend,
            money: Default::default(),
            click_db,
        })
    }

    /// On SQLite, the connection clicks are written through.
    pub(crate) fn click_db(&self) -> Option<ClickDbHandle> {
        self.click_db.clone()
    }

    /// Runs `f` with the click connection on a blocking thread (SQLite only).
    async fn with_click_db<T: Send + 'static>(
        db: &ClickDbHandle,
        f: impl FnOnce(&mut click_db::ClickDb) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = db.clone();
        tokio::task::spawn_blocking(move || {
            f(&mut db.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
        })
        .await
        .map_err(|e| StoreError::Db(sqlx::Error::Protocol(format!("click writer: {e}"))))?
        .map_err(StoreError::from)
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

    /// Creates an affiliate with a fresh, unique referral code derived from its name.
    pub async fn create_affiliate(
        &self,
        program_id: i64,
        name: &str,
        kind: &str,
        contact: Option<&str>,
    ) -> Result<Affiliate, StoreError> {
        for _ in 0..16 {
            let code = tapkit_core::code::ReferralCode::generate(name, random_u32());
            let r = sqlx::query(&format!(
                "INSERT INTO affiliates (program_id, name, kind, status, code, contact, created_at) \
                 VALUES ($1, $2, $3, 'active', $4, $5, $6) RETURNING {AFFILIATE_COLS}"
            ))
            .bind(program_id)
            .bind(name)
            .bind(kind)
            .bind(code.as_str())
            .bind(contact)
            .bind(now_ms())
            .fetch_one(&self.pool)
            .await;
            match r {
                Ok(row) => {
                    self.bump_epoch().await?;
                    return Ok(affiliate(&row)?);
                }
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::CodeSpace)
    }

    /// One affiliate.
    pub async fn affiliate(&self, id: i64) -> Result<Affiliate, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {AFFILIATE_COLS} FROM affiliates WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("affiliate"))?;
        Ok(affiliate(&row)?)
    }

    /// The affiliate with a (canonical) code.
    pub async fn affiliate_by_code(&self, code: &str) -> Result<Option<Affiliate>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {AFFILIATE_COLS} FROM affiliates WHERE code = $1"
        ))
        .bind(code)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(affiliate).transpose()?)
    }

    /// Affiliates, oldest first; `needs_card` keeps active business partners without an
    /// active card (what the provisioner asks for).
    pub async fn affiliates(&self, needs_card: bool) -> Result<Vec<Affiliate>, StoreError> {
        let filter = if needs_card {
            " WHERE status = 'active' AND kind = 'business' AND NOT EXISTS \
              (SELECT 1 FROM cards c WHERE c.affiliate_id = affiliates.id AND c.status = 'active')"
        } else {
            ""
        };
        let rows = sqlx::query(&format!(
            "SELECT {AFFILIATE_COLS} FROM affiliates{filter} ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(affiliate).collect::<Result<_, _>>()?)
    }

    /// Updates an affiliate's tier override, contact and customer identity.
    pub async fn update_affiliate(
        &self,
        id: i64,
        u: &AffiliateUpdate,
    ) -> Result<Affiliate, StoreError> {
        let mut sets = Vec::new();
        let mut values: Vec<Option<String>> = Vec::new();
        for (col, v) in [
            ("tier", &u.tier),
            ("contact", &u.contact),
            ("customer_id", &u.customer_id),
            ("email_sha256", &u.email_sha256),
            ("phone_sha256", &u.phone_sha256),
        ] {
            if let Some(v) = v {
                values.push(v.clone());
                sets.push(format!("{col} = ${}", values.len() + 1));
            }
        }
        if sets.is_empty() {
            return self.affiliate(id).await;
        }
        let sql = format!(
            "UPDATE affiliates SET {} WHERE id = $1 RETURNING {AFFILIATE_COLS}",
            sets.join(", ")
        );
        let mut q = sqlx::query(&sql).bind(id);
        for v in values {
            q = q.bind(v);
        }
        let row = q
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("affiliate"))?;
        Ok(affiliate(&row)?)
    }

    /// Sets `active` / `suspended`.
    pub async fn set_affiliate_status(
        &self,
        id: i64,
        status: &str,
    ) -> Result<Affiliate, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE affiliates SET status = $2 WHERE id = $1 RETURNING {AFFILIATE_COLS}"
        ))
        .bind(id)
        .bind(status)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("affiliate"))?;
        self.bump_epoch().await?;
        Ok(affiliate(&row)?)
    }

    /// Binds a card UID to an affiliate. Registering the same binding again returns it;
    /// a UID bound to someone else is refused until that card is retired.
    pub async fn register_card(
        &self,
        affiliate_id: i64,
        uid: &str,
    ) -> Result<(Card, bool), StoreError> {
        self.affiliate(affiliate_id).await?;
        if let Some(c) = self.active_card(uid).await? {
            if c.affiliate_id == affiliate_id {
                return Ok((c, false));
            }
            return Err(StoreError::CardBound {
                uid: uid.to_owned(),
                affiliate_id: c.affiliate_id,
                card_id: c.id,
            });
        }
        let r = sqlx::query(&format!(
            "INSERT INTO cards (uid, affiliate_id, status, provisioned_at) VALUES ($1, $2, 'active', $3) RETURNING {CARD_COLS}"
        ))
        .bind(uid)
        .bind(affiliate_id)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await;
        match r {
            Ok(row) => Ok((card(&row)?, true)),
            // Two registrations raced; the partial unique index decided.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                let c = self
                    .active_card(uid)
                    .await?
                    .ok_or(StoreError::NotFound("card"))?;
                if c.affiliate_id == affiliate_id {
                    Ok((c, false))
                } else {
                    Err(StoreError::CardBound {
                        uid: uid.to_owned(),
                        affiliate_id: c.affiliate_id,
                        card_id: c.id,
                    })
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The active binding of a UID.
    pub async fn active_card(&self, uid: &str) -> Result<Option<Card>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {CARD_COLS} FROM cards WHERE uid = $1 AND status = 'active'"
        ))
        .bind(uid)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(card).transpose()?)
    }

    /// The latest binding of a UID, active or not (to tell a revoked card apart).
    pub async fn latest_card(&self, uid: &str) -> Result<Option<Card>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {CARD_COLS} FROM cards WHERE uid = $1 ORDER BY id DESC LIMIT 1"
        ))
        .bind(uid)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(card).transpose()?)
    }

    /// Marks a card `lost` or `retired` (its history stays; the UID may be bound anew).
    pub async fn end_card(&self, card_id: i64, status: &str) -> Result<Card, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE cards SET status = $2, ended_at = $3 WHERE id = $1 AND status = 'active' RETURNING {CARD_COLS}"
        ))
        .bind(card_id)
        .bind(status)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => Ok(card(&r)?),
            None => Err(StoreError::NotFound("active card")),
        }
    }

    /// Cards, optionally of one affiliate.
    pub async fn cards(&self, affiliate_id: Option<i64>) -> Result<Vec<Card>, StoreError> {
        let rows = match affiliate_id {
            Some(a) => {
                sqlx::query(&format!(
                    "SELECT {CARD_COLS} FROM cards WHERE affiliate_id = $1 ORDER BY id"
                ))
                .bind(a)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!("SELECT {CARD_COLS} FROM cards ORDER BY id"))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        Ok(rows.iter().map(card).collect::<Result<_, _>>()?)
    }

    /// Raises a card's last seen counter if `counter` is higher; `false` means the
    /// counter did not increase (a replayed or copied URL).
    pub async fn advance_counter(&self, card_id: i64, counter: i64) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE cards SET last_counter = $2 WHERE id = $1 AND (last_counter IS NULL OR last_counter < $2)")
            .bind(card_id)
            .bind(counter)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Records one click outside the group-commit writer (tests, tools); returns its id.
    pub async fn insert_click(&self, c: &NewClick) -> Result<i64, StoreError> {
        let ids = self.allocate_click_ids(1).await?;
        let mut one = [c.clone()];
        self.insert_clicks(&mut one, &[ids.start], 0).await?;
        Ok(ids.start)
    }

    /// Writes a batch of clicks with their `ids` in one transaction (on SQLite through
    /// the click connection, [`click_db`]; on PostgreSQL multi-row INSERTs).
    /// With `limit_per_hour` > 0, a click marked `rate_limit` whose hashed IP already has
    /// that many clicks in the last hour (committed ones, and earlier ones in this batch)
    /// is turned into `flagged` / `rate_limited` before it is written. On PostgreSQL the
    /// batch takes a transaction-scoped advisory lock per hashed IP (in sorted order, so
    /// replicas never deadlock), which makes the limit exact across replicas.
    pub async fn insert_clicks(
        &self,
        clicks: &mut [NewClick],
        ids: &[i64],
        limit_per_hour: u32,
    ) -> Result<(), StoreError> {
        debug_assert_eq!(clicks.len(), ids.len());
        if let Some(db) = &self.click_db {
            let (mut owned, ids) = (clicks.to_vec(), ids.to_vec());
            let owned = Self::with_click_db(db, move |db| {
                db.write(&mut owned, &ids, limit_per_hour).map(|()| owned)
            })
            .await?;
            clicks.clone_from_slice(&owned);
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        self.write_clicks(&mut tx, clicks, ids, limit_per_hour)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// PostgreSQL's half of [`Store::insert_clicks`], inside its transaction.
    async fn write_clicks(
        &self,
        conn: &mut sqlx::AnyConnection,
        clicks: &mut [NewClick],
        ids: &[i64],
        limit_per_hour: u32,
    ) -> Result<(), StoreError> {
        if limit_per_hour > 0 && clicks.iter().any(|c| c.rate_limit) {
            let mut ips: Vec<String> = clicks
                .iter()
                .filter(|c| c.rate_limit)
                .map(|c| c.ip_hash.clone())
                .collect();
            ips.sort_unstable();
            ips.dedup();
            let list = (0..ips.len())
                .map(|i| format!("${}", i + 2))
                .collect::<Vec<_>>()
                .join(", ");
            {
                // VALUES is scanned in order: the locks are taken in sorted order.
                let sql = format!(
                    "SELECT COUNT(pg_advisory_xact_lock(hashtext(v))) AS n FROM (VALUES {}) AS t(v)",
                    (0..ips.len())
                        .map(|i| format!("(${})", i + 1))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                let mut q = sqlx::query(&sql);
                for ip in &ips {
                    q = q.bind(ip.as_str());
                }
                q.fetch_one(&mut *conn).await?;
            }
            let sql = format!(
                "SELECT ip_hash, COUNT(*) AS n FROM clicks WHERE at >= $1 AND ip_hash IN ({list}) GROUP BY ip_hash"
            );
            let since = clicks.iter().map(|c| c.at).min().unwrap_or(0) - 3_600_000;
            let mut q = sqlx::query(&sql).bind(since);
            for ip in &ips {
                q = q.bind(ip.as_str());
            }
            let mut seen: std::collections::HashMap<String, i64> = q
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(|r| Ok((r.try_get("ip_hash")?, r.try_get("n")?)))
                .collect::<Result<_, sqlx::Error>>()?;
            // Every click from a limited IP counts, in batch order.
            for c in clicks.iter_mut() {
                if ips.binary_search(&c.ip_hash).is_err() {
                    continue;
                }
                let n = seen.entry(c.ip_hash.clone()).or_insert(0);
                if c.rate_limit && *n >= i64::from(limit_per_hour) {
                    c.outcome = "flagged";
                    c.reason = Some("rate_limited");
                }
                *n += 1;
            }
        }
        for (chunk, chunk_ids) in clicks.chunks(INSERT_CHUNK).zip(ids.chunks(INSERT_CHUNK)) {
            let mut sql = String::with_capacity(64 + chunk.len() * 64);
            sql.push_str(
                "INSERT INTO clicks (id, at, code, affiliate_id, channel, card_id, counter, user_agent, referer, ip_hash, outcome, reason) VALUES ",
            );
            for i in 0..chunk.len() {
                let b = i * 12;
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push('(');
                for k in 1..=12 {
                    if k > 1 {
                        sql.push_str(", ");
                    }
                    sql.push('$');
                    sql.push_str(&(b + k).to_string());
                }
                sql.push(')');
            }
            let mut q = sqlx::query(&sql);
            for (c, id) in chunk.iter().zip(chunk_ids) {
                q = q
                    .bind(*id)
                    .bind(c.at)
                    .bind(c.code.as_str())
                    .bind(c.affiliate_id)
                    .bind(c.channel)
                    .bind(c.card_id)
                    .bind(c.counter)
                    .bind(c.user_agent.as_deref())
                    .bind(c.referer.as_deref())
                    .bind(c.ip_hash.as_str())
                    .bind(c.outcome)
                    .bind(c.reason);
            }
            q.execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// A click's affiliate, time and outcome, if it exists (the same query attribution
    /// uses inside a money transaction).
    pub async fn click(&self, id: i64) -> Result<Option<(Option<i64>, i64, String)>, StoreError> {
        Ok(money::click(&self.pool, id)
            .await?
            .map(|c| (c.affiliate_id, c.at, c.outcome)))
    }

    /// Whether a channel is off for this affiliate (or its whole program).
    pub async fn channel_killed(
        &self,
        program_id: i64,
        affiliate_id: i64,
        channel: &str,
    ) -> Result<bool, StoreError> {
        money::channel_killed(&self.pool, program_id, affiliate_id, channel).await
    }

    /// Number of clicks (tests and benchmarks compare it with the 302s sent).
    pub async fn click_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM clicks")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }

    /// Turns a channel off for the program (`affiliate_id` None) or one affiliate.
    pub async fn kill_channel(
        &self,
        program_id: i64,
        affiliate_id: Option<i64>,
        channel: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO kill_switches (program_id, affiliate_id, channel, created_at) VALUES ($1, $2, $3, $4)")
            .bind(program_id)
            .bind(affiliate_id)
            .bind(channel)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        self.bump_epoch().await
    }

    /// Moves the change epoch, so every replica reloads its directory.
    async fn bump_epoch(&self) -> Result<(), StoreError> {
        sqlx::query("UPDATE change_epoch SET n = n + 1 WHERE id = 1")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The change epoch (cheap: replicas poll it).
    pub async fn change_epoch(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT n FROM change_epoch WHERE id = 1")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }

    /// Everything the `/r/` hop caches for one program.
    pub async fn directory_rows(&self, program_id: i64) -> Result<DirectoryRows, StoreError> {
        let epoch = self.change_epoch().await?;
        let affiliates =
            sqlx::query("SELECT id, code, status FROM affiliates WHERE program_id = $1")
                .bind(program_id)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| {
                    Ok((
                        r.try_get("id")?,
                        r.try_get("code")?,
                        r.try_get::<String, _>("status")? == "active",
                    ))
                })
                .collect::<Result<_, sqlx::Error>>()?;
        let kills =
            sqlx::query("SELECT affiliate_id, channel FROM kill_switches WHERE program_id = $1")
                .bind(program_id)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| Ok((r.try_get("affiliate_id")?, r.try_get("channel")?)))
                .collect::<Result<_, sqlx::Error>>()?;
        Ok(DirectoryRows {
            epoch,
            affiliates,
            kills,
        })
    }

    /// Reserves `n` consecutive click ids (one statement per block; unique across
    /// replicas).
    pub async fn allocate_click_ids(&self, n: i64) -> Result<std::ops::Range<i64>, StoreError> {
        if let Some(db) = &self.click_db {
            return Self::with_click_db(db, move |db| db.allocate_ids(n)).await;
        }
        let end: i64 = sqlx::query(
            "UPDATE id_blocks SET next_id = next_id + $1 WHERE name = 'clicks' RETURNING next_id",
        )
        .bind(n)
        .fetch_one(&self.pool)
        .await?
        .try_get("next_id")?;
        Ok(end - n..end)
    }

    /// Traffic per day and affiliate, and per day and card binding, for days
    /// `from_day..=to_day` (UTC), optionally for one affiliate.
    pub async fn analytics(
        &self,
        from_day: i64,
        to_day: i64,
        affiliate_id: Option<i64>,
    ) -> Result<(Vec<AffiliateDay>, Vec<CardDay>), StoreError> {
        const REAL: &str = "c.outcome IN ('attributed', 'unattributed')";
        const VISITOR: &str = "c.ip_hash || '|' || COALESCE(c.user_agent, '')";
        let filter = if affiliate_id.is_some() {
            " AND c.affiliate_id = $3"
        } else {
            ""
        };
        let sql = format!(
            "SELECT c.at / 86400000 AS day, c.affiliate_id AS affiliate_id,              COUNT(DISTINCT CASE WHEN {REAL} THEN {VISITOR} END) AS visitors,              SUM(CASE WHEN {REAL} THEN 1 ELSE 0 END) AS clicks,              SUM(CASE WHEN c.outcome = 'attributed' THEN 1 ELSE 0 END) AS attributed,              SUM(CASE WHEN c.outcome = 'preview' THEN 1 ELSE 0 END) AS previews,              SUM(CASE WHEN c.outcome = 'flagged' THEN 1 ELSE 0 END) AS flagged,              SUM(CASE WHEN {REAL} AND c.channel = 'nfc' THEN 1 ELSE 0 END) AS nfc,              SUM(CASE WHEN {REAL} AND c.channel = 'qr' THEN 1 ELSE 0 END) AS qr,              SUM(CASE WHEN {REAL} AND c.channel = 'kiosk' THEN 1 ELSE 0 END) AS kiosk,              SUM(CASE WHEN {REAL} AND c.channel = 'link' THEN 1 ELSE 0 END) AS link              FROM clicks c WHERE c.affiliate_id IS NOT NULL AND c.at >= $1 AND c.at < $2{filter}              GROUP BY c.at / 86400000, c.affiliate_id ORDER BY day, affiliate_id"
        );
        let range = (from_day * 86_400_000, (to_day + 1) * 86_400_000);
        let mut q = sqlx::query(&sql).bind(range.0).bind(range.1);
        if let Some(a) = affiliate_id {
            q = q.bind(a);
        }
        let days = q
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(AffiliateDay {
                    day: r.try_get("day")?,
                    affiliate_id: r.try_get("affiliate_id")?,
                    visitors: r.try_get("visitors")?,
                    clicks: r.try_get("clicks")?,
                    attributed: r.try_get("attributed")?,
                    previews: r.try_get("previews")?,
                    flagged: r.try_get("flagged")?,
                    by_channel: [
                        r.try_get("nfc")?,
                        r.try_get("qr")?,
                        r.try_get("kiosk")?,
                        r.try_get("link")?,
                    ],
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let sql = format!(
            "SELECT c.at / 86400000 AS day, k.id AS card_id, k.uid AS uid, k.affiliate_id AS affiliate_id,              COUNT(DISTINCT CASE WHEN {REAL} THEN {VISITOR} END) AS visitors,              SUM(CASE WHEN {REAL} THEN 1 ELSE 0 END) AS taps,              SUM(CASE WHEN c.outcome = 'flagged' THEN 1 ELSE 0 END) AS flagged              FROM clicks c JOIN cards k ON k.id = c.card_id              WHERE c.at >= $1 AND c.at < $2{}              GROUP BY c.at / 86400000, k.id, k.uid, k.affiliate_id ORDER BY day, card_id",
            if affiliate_id.is_some() {
                " AND k.affiliate_id = $3"
            } else {
                ""
            }
        );
        let mut q = sqlx::query(&sql).bind(range.0).bind(range.1);
        if let Some(a) = affiliate_id {
            q = q.bind(a);
        }
        let cards = q
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(CardDay {
                    day: r.try_get("day")?,
                    card_id: r.try_get("card_id")?,
                    uid: r.try_get("uid")?,
                    affiliate_id: r.try_get("affiliate_id")?,
                    visitors: r.try_get("visitors")?,
                    taps: r.try_get("taps")?,
                    flagged: r.try_get("flagged")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok((days, cards))
    }

    /// The IP-hash key of `day` (UTC day number): the stored one, or `candidate_hex` if
    /// this is the first ask of the day (whichever replica asks first wins). Keys older
    /// than yesterday are deleted.
    pub async fn ip_key(&self, day: i64, candidate_hex: &str) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO ip_keys (day, key_hex) VALUES ($1, $2) ON CONFLICT (day) DO NOTHING",
        )
        .bind(day)
        .bind(candidate_hex)
        .execute(&self.pool)
        .await?;
        sqlx::query("DELETE FROM ip_keys WHERE day < $1")
            .bind(day - 1)
            .execute(&self.pool)
            .await?;
        Ok(sqlx::query("SELECT key_hex FROM ip_keys WHERE day = $1")
            .bind(day)
            .fetch_one(&self.pool)
            .await?
            .try_get("key_hex")?)
    }

    /// Stores an API token's hash.
    pub async fn add_token(&self, name: &str, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO api_tokens (name, token_hash, created_at) VALUES ($1, $2, $3)")
            .bind(name)
            .bind(token_hash)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Admin API tokens not revoked: id, name, created (Unix ms), oldest first.
    pub async fn list_tokens(&self) -> Result<Vec<(i64, String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, created_at FROM api_tokens WHERE revoked_at IS NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    r.try_get("name")?,
                    r.try_get("created_at")?,
                ))
            })
            .collect()
    }

    /// Revokes a token; whether a live one had that id.
    pub async fn revoke_token(&self, id: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Whether a token hash is known.
    pub async fn token_known(&self, token_hash: &str) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(token_hash)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }
}
