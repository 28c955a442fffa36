//! Admin API tokens (only their SHA-256 is stored) and the day's IP-hash key shared by the replicas.

use sqlx::Row;

use super::{Store, StoreError, now_ms};

impl Store {
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
