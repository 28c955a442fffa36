//! What the `/r/` hop caches (codes, kill-switches) and the change epoch every replica polls.

use sqlx::Row;

use super::{Store, StoreError, now_ms};

/// What the `/r/` hop caches about affiliates and kill-switches.
#[derive(Debug, Clone, Default)]
pub struct DirectoryRows {
    /// `change_epoch` when read (read before the rows).
    pub epoch: i64,
    /// The program's affiliates.
    pub affiliates: Vec<DirectoryAffiliate>,
    /// (affiliate or None for the whole program, channel).
    pub kills: Vec<(Option<i64>, String)>,
    /// The program's cards, oldest binding first.
    pub cards: Vec<DirectoryCard>,
    /// The program's kiosks.
    pub kiosks: Vec<DirectoryKiosk>,
}

/// An affiliate as the `/r/` hop caches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryAffiliate {
    /// Id.
    pub id: i64,
    /// Its referral code.
    pub code: String,
    /// Status is `active`.
    pub active: bool,
    /// When its link stops earning (Unix ms), if it does.
    pub expires_at: Option<i64>,
}

/// A kiosk as the `/r/` hop caches it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DirectoryKiosk {
    /// Id.
    pub id: i64,
    /// Its affiliate.
    pub affiliate_id: i64,
    /// `active` or `retired`.
    pub status: String,
    /// Its secret's generation.
    pub generation: i64,
}

/// A card binding as the `/r/` hop caches it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DirectoryCard {
    /// The binding (cards row).
    pub id: i64,
    /// UID, upper-case hex.
    pub uid: String,
    /// Its affiliate.
    pub affiliate_id: i64,
    /// `active`, `lost` or `retired`.
    pub status: String,
    /// NTAG 424 DNA: the key version it was keyed under (`None`: NTAG21x).
    pub key_version: Option<i64>,
}

impl Store {
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
    pub(super) async fn bump_epoch(&self) -> Result<(), StoreError> {
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
        let affiliates = sqlx::query(
            "SELECT id, code, status, expires_at FROM affiliates WHERE program_id = $1",
        )
        .bind(program_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(DirectoryAffiliate {
                id: r.try_get("id")?,
                code: r.try_get("code")?,
                active: r.try_get::<String, _>("status")? == "active",
                expires_at: r.try_get("expires_at")?,
            })
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
        let cards = sqlx::query_as::<_, DirectoryCard>(
            "SELECT c.id, c.uid, c.affiliate_id, c.status, c.key_version FROM cards c \
             JOIN affiliates a ON a.id = c.affiliate_id WHERE a.program_id = $1 ORDER BY c.id",
        )
        .bind(program_id)
        .fetch_all(&self.pool)
        .await?;
        let kiosks = sqlx::query_as::<_, DirectoryKiosk>(
            "SELECT id, affiliate_id, status, generation FROM kiosks WHERE program_id = $1",
        )
        .bind(program_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(DirectoryRows {
            epoch,
            affiliates,
            kills,
            cards,
            kiosks,
        })
    }

    /// Whether a channel is off for this affiliate (or its whole program).
    pub async fn channel_killed(
        &self,
        program_id: i64,
        affiliate_id: i64,
        channel: &str,
    ) -> Result<bool, StoreError> {
        super::money::channel_killed(&self.pool, program_id, affiliate_id, channel).await
    }
}
