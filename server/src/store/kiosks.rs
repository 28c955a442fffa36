//! Kiosks as stored: enrolment state, display overrides and the last heartbeat.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::store::{Store, StoreError};

/// A kiosk as stored.
#[derive(Debug, Clone)]
pub struct Kiosk {
    /// Id.
    pub id: i64,
    /// Its affiliate.
    pub affiliate_id: i64,
    /// Admin's label ("front counter").
    pub name: String,
    /// `active` or `retired`.
    pub status: String,
    /// Secret generation (bumped by every enrolment).
    pub generation: i64,
    /// When the pending enrolment code expires.
    pub enrollment_expires_at: Option<i64>,
    /// Whether the pending code was used.
    pub enrollment_used: bool,
    /// When the kiosk last enrolled.
    pub enrolled_at: Option<i64>,
    /// The admin's display overrides (JSON of `kiosks::settings::Display`).
    pub display: String,
    /// Last heartbeat.
    pub last_seen: Option<i64>,
    /// Version the kiosk reported.
    pub last_version: Option<String>,
    /// Uptime it reported.
    pub last_uptime_secs: Option<i64>,
    /// Config version it reported showing.
    pub last_config_version: Option<String>,
    /// Last error it reported.
    pub last_error: Option<String>,
    /// Its clock minus the server's at the last heartbeat.
    pub clock_skew_ms: Option<i64>,
    /// Created at.
    pub created_at: i64,
}

const COLS: &str = "id, affiliate_id, name, status, generation, enrollment_expires_at, \
    enrollment_used, enrolled_at, display, last_seen, last_version, last_uptime_secs, \
    last_config_version, last_error, clock_skew_ms, created_at";

fn kiosk(r: &AnyRow) -> Result<Kiosk, sqlx::Error> {
    Ok(Kiosk {
        id: r.try_get("id")?,
        affiliate_id: r.try_get("affiliate_id")?,
        name: r.try_get("name")?,
        status: r.try_get("status")?,
        generation: r.try_get("generation")?,
        enrollment_expires_at: r.try_get("enrollment_expires_at")?,
        enrollment_used: r.try_get::<i64, _>("enrollment_used")? != 0,
        enrolled_at: r.try_get("enrolled_at")?,
        display: r.try_get("display")?,
        last_seen: r.try_get("last_seen")?,
        last_version: r.try_get("last_version")?,
        last_uptime_secs: r.try_get("last_uptime_secs")?,
        last_config_version: r.try_get("last_config_version")?,
        last_error: r.try_get("last_error")?,
        clock_skew_ms: r.try_get("clock_skew_ms")?,
        created_at: r.try_get("created_at")?,
    })
}

/// A kiosk's heartbeat as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatRow<'a> {
    /// When it arrived.
    pub at: i64,
    /// The kiosk program's version.
    pub version: &'a str,
    /// Its uptime.
    pub uptime_secs: i64,
    /// The config version it shows.
    pub config_version: Option<&'a str>,
    /// Its last error.
    pub last_error: Option<&'a str>,
    /// Its clock minus the server's.
    pub clock_skew_ms: i64,
}

impl Store {
    /// A kiosk by id.
    pub async fn kiosk(&self, id: i64) -> Result<Option<Kiosk>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLS} FROM kiosks WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(kiosk).transpose()?)
    }

    /// The kiosk whose pending enrolment code has this hash.
    pub async fn kiosk_by_code(&self, code_hash: &str) -> Result<Option<Kiosk>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLS} FROM kiosks WHERE enrollment_code_hash = $1"
        ))
        .bind(code_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(kiosk).transpose()?)
    }

    /// A program's kiosks, optionally of one affiliate, oldest first.
    pub async fn kiosks(
        &self,
        program_id: i64,
        affiliate_id: Option<i64>,
    ) -> Result<Vec<Kiosk>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLS} FROM kiosks WHERE program_id = $1 AND ($2 = 0 OR affiliate_id = $3) ORDER BY id"
        ))
        .bind(program_id)
        .bind(i64::from(affiliate_id.is_some()))
        .bind(affiliate_id.unwrap_or(0))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(kiosk).collect::<Result<Vec<_>, _>>()?)
    }

    /// Creates a kiosk with a pending enrolment code.
    pub async fn create_kiosk(
        &self,
        program_id: i64,
        affiliate_id: i64,
        name: &str,
        code_hash: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<Kiosk, StoreError> {
        let row = sqlx::query(&format!(
            "INSERT INTO kiosks (program_id, affiliate_id, name, enrollment_code_hash, \
             enrollment_expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLS}"
        ))
        .bind(program_id)
        .bind(affiliate_id)
        .bind(name)
        .bind(code_hash)
        .bind(expires_at)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        // Every replica's directory learns the kiosk.
        self.bump_epoch().await?;
        Ok(kiosk(&row)?)
    }

    /// Sets a kiosk's display overrides (JSON) and moves its config version.
    pub async fn set_kiosk_display(&self, id: i64, display_json: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE kiosks SET display = $1, config_version = config_version + 1 WHERE id = $2",
        )
        .bind(display_json)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Gives a kiosk a new pending enrolment code (its current secret keeps working).
    pub async fn set_kiosk_enrollment(
        &self,
        id: i64,
        code_hash: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE kiosks SET enrollment_code_hash = $1, enrollment_expires_at = $2, enrollment_used = 0 WHERE id = $3",
        )
        .bind(code_hash)
        .bind(expires_at)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Retires a kiosk: its code is dropped and its secret's generation moves on.
    pub async fn retire_kiosk(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE kiosks SET status = 'retired', enrollment_code_hash = NULL, generation = generation + 1 WHERE id = $1",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        self.bump_epoch().await?;
        Ok(())
    }

    /// Uses a pending enrolment code, once even when two kiosks race with it: whether
    /// this call used it.
    pub async fn use_kiosk_enrollment(
        &self,
        id: i64,
        code_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE kiosks SET enrollment_used = 1, enrolled_at = $1, generation = generation + 1 \
             WHERE id = $2 AND enrollment_used = 0 AND status = 'active' \
             AND enrollment_code_hash = $3 AND enrollment_expires_at >= $1",
        )
        .bind(now)
        .bind(id)
        .bind(code_hash)
        .execute(&self.pool)
        .await?;
        let used = done.rows_affected() == 1;
        if used {
            // A new secret generation: every replica's directory learns it.
            self.bump_epoch().await?;
        }
        Ok(used)
    }

    /// Records a kiosk's heartbeat.
    pub async fn record_heartbeat(&self, id: i64, h: &HeartbeatRow<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE kiosks SET last_seen = $1, last_version = $2, last_uptime_secs = $3, \
             last_config_version = $4, last_error = $5, clock_skew_ms = $6 WHERE id = $7",
        )
        .bind(h.at)
        .bind(h.version)
        .bind(h.uptime_secs)
        .bind(h.config_version)
        .bind(h.last_error)
        .bind(h.clock_skew_ms)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
