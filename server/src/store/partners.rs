//! Affiliates (partners, influencers, customers) and the NFC cards bound to them.

use serde::Serialize;
use sqlx::FromRow;
use sqlx::Row;

use sqlx::any::AnyRow;

use super::{Store, StoreError, now_ms};

/// An affiliate (business partner, influencer or customer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
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
    /// When its link stops earning (Unix ms; `None`: never). Taps after it still
    /// redirect, and are counted apart as `link_expired`.
    pub expires_at: Option<i64>,
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
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
    /// NTAG 424 DNA (SUN): the key version it was keyed under; `None`: an NTAG21x card.
    pub key_version: Option<i64>,
}

fn affiliate(r: &AnyRow) -> Result<Affiliate, sqlx::Error> {
    Affiliate::from_row(r)
}

fn card(r: &AnyRow) -> Result<Card, sqlx::Error> {
    Card::from_row(r)
}

const AFFILIATE_COLS: &str =
    "id, program_id, name, kind, status, code, tier, contact, created_at, expires_at";

const CARD_COLS: &str =
    "id, uid, affiliate_id, status, provisioned_at, ended_at, last_counter, key_version";

/// An active binding found where a new one was asked for: the same one (affiliate and
/// key version), or why not.
fn same_binding(c: Card, affiliate_id: i64, key_version: Option<i64>) -> Result<Card, StoreError> {
    if c.affiliate_id != affiliate_id {
        return Err(StoreError::CardBound {
            uid: c.uid,
            affiliate_id: c.affiliate_id,
            card_id: c.id,
        });
    }
    if c.key_version != key_version {
        let was = c.key_version.map_or_else(
            || "an NTAG21x card".to_owned(),
            |v| format!("key version {v}"),
        );
        return Err(StoreError::CardRekeyed {
            uid: c.uid,
            was,
            card_id: c.id,
        });
    }
    Ok(c)
}

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    // getrandom only fails when the OS has no entropy source at all.
    let _ = getrandom::fill(&mut b);
    u32::from_le_bytes(b)
}

impl Store {
    /// Creates an affiliate with a fresh, unique referral code derived from its name.
    pub async fn create_affiliate(
        &self,
        program_id: i64,
        name: &str,
        kind: &str,
        contact: Option<&str>,
    ) -> Result<Affiliate, StoreError> {
        self.create_affiliate_until(program_id, name, kind, contact, None)
            .await
    }

    /// The newest live referrer (kind `customer`, active, not expired at `now`) whose
    /// contact is `email` (case ignored).
    pub async fn live_referrer(
        &self,
        program_id: i64,
        email: &str,
        now: i64,
    ) -> Result<Option<Affiliate>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {AFFILIATE_COLS} FROM affiliates WHERE program_id = $1 AND kind = 'customer' \
             AND status = 'active' AND lower(trim(contact)) = $2 \
             AND (expires_at IS NULL OR expires_at > $3) ORDER BY id DESC LIMIT 1"
        ))
        .bind(program_id)
        .bind(email.trim().to_lowercase())
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(affiliate).transpose()?)
    }

    /// Whether the affiliate turned referral emails off.
    pub async fn emails_off(&self, affiliate_id: i64) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT emails_off_at FROM affiliates WHERE id = $1")
            .bind(affiliate_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("affiliate"))?;
        Ok(row.try_get::<Option<i64>, _>("emails_off_at")?.is_some())
    }

    /// Turns the affiliate's referral emails off (idempotent: the first time is kept).
    pub async fn turn_emails_off(&self, affiliate_id: i64, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE affiliates SET emails_off_at = COALESCE(emails_off_at, $2) WHERE id = $1",
        )
        .bind(affiliate_id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Referrers who signed up from the device with this key since `since` (Unix ms).
    pub async fn referrer_signups_since(
        &self,
        program_id: i64,
        signup_key: &str,
        since: i64,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query(
            "SELECT COUNT(*) AS n FROM affiliates WHERE program_id = $1 AND signup_key = $2 AND created_at >= $3",
        )
        .bind(program_id)
        .bind(signup_key)
        .bind(since)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?)
    }

    /// A self-service referrer (kind `customer`) for `email`, from the device with
    /// `signup_key`; its email's SHA-256 is kept so its own bookings are not
    /// self-referrals.
    pub async fn create_referrer(
        &self,
        program_id: i64,
        name: &str,
        email: &str,
        email_sha256: &str,
        signup_key: &str,
    ) -> Result<Affiliate, StoreError> {
        self.insert_affiliate(
            program_id,
            name,
            "customer",
            Some(email),
            None,
            Some((email_sha256, signup_key)),
        )
        .await
    }

    /// [`Store::create_affiliate`] with a link that stops earning at `expires_at`.
    pub async fn create_affiliate_until(
        &self,
        program_id: i64,
        name: &str,
        kind: &str,
        contact: Option<&str>,
        expires_at: Option<i64>,
    ) -> Result<Affiliate, StoreError> {
        self.insert_affiliate(program_id, name, kind, contact, expires_at, None)
            .await
    }

    /// Inserts an affiliate with a fresh code, in one statement (a self-service
    /// referrer's email hash and device key with it, so a count of sign-ups never sees
    /// it half written).
    async fn insert_affiliate(
        &self,
        program_id: i64,
        name: &str,
        kind: &str,
        contact: Option<&str>,
        expires_at: Option<i64>,
        signup: Option<(&str, &str)>,
    ) -> Result<Affiliate, StoreError> {
        for _ in 0..16 {
            let code = tapkit_core::code::ReferralCode::generate(name, random_u32());
            let r = sqlx::query(&format!(
                "INSERT INTO affiliates (program_id, name, kind, status, code, contact, created_at, expires_at, email_sha256, signup_key) \
                 VALUES ($1, $2, $3, 'active', $4, $5, $6, $7, $8, $9) RETURNING {AFFILIATE_COLS}"
            ))
            .bind(program_id)
            .bind(name)
            .bind(kind)
            .bind(code.as_str())
            .bind(contact)
            .bind(now_ms())
            .bind(expires_at)
            .bind(signup.map(|s| s.0))
            .bind(signup.map(|s| s.1))
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

    /// Binds an NTAG21x card UID to an affiliate ([`Self::register_card_keyed`]).
    pub async fn register_card(
        &self,
        affiliate_id: i64,
        uid: &str,
    ) -> Result<(Card, bool), StoreError> {
        self.register_card_keyed(affiliate_id, uid, None).await
    }

    /// Binds a card UID to an affiliate; `key_version` for an NTAG 424 DNA card keyed
    /// under that version. Registering the same binding again returns it; a UID bound to
    /// someone else is refused until that card is retired, and so is one bound to this
    /// affiliate under another key version (it was re-keyed: its counter restarted).
    pub async fn register_card_keyed(
        &self,
        affiliate_id: i64,
        uid: &str,
        key_version: Option<i64>,
    ) -> Result<(Card, bool), StoreError> {
        let a = self.affiliate(affiliate_id).await?;
        if let Some(m) = sqlx::query(
            "SELECT id, member_id FROM member_cards WHERE program_id = $1 AND uid = $2 AND status = 'active'",
        )
        .bind(a.program_id)
        .bind(uid)
        .fetch_optional(&self.pool)
        .await?
        {
            return Err(StoreError::MemberCardBound {
                uid: uid.to_owned(),
                member_id: sqlx::Row::try_get(&m, "member_id")?,
                card_id: sqlx::Row::try_get(&m, "id")?,
            });
        }
        if let Some(c) = self.active_card(uid).await? {
            return same_binding(c, affiliate_id, key_version).map(|c| (c, false));
        }
        let r = sqlx::query(&format!(
            "INSERT INTO cards (uid, affiliate_id, status, provisioned_at, key_version) VALUES ($1, $2, 'active', $3, $4) RETURNING {CARD_COLS}"
        ))
        .bind(uid)
        .bind(affiliate_id)
        .bind(now_ms())
        .bind(key_version)
        .fetch_one(&self.pool)
        .await;
        match r {
            Ok(row) => {
                // Every replica's directory learns the new binding.
                self.bump_epoch().await?;
                Ok((card(&row)?, true))
            }
            // Two registrations raced; the partial unique index decided.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                let c = self
                    .active_card(uid)
                    .await?
                    .ok_or(StoreError::NotFound("card"))?;
                same_binding(c, affiliate_id, key_version).map(|c| (c, false))
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
            Some(r) => {
                // Every replica's directory stops attributing the card.
                self.bump_epoch().await?;
                Ok(card(&r)?)
            }
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

    /// Raises an active card's last seen counter if `counter` is higher; `false` means
    /// the counter did not increase (a replayed or copied URL) or the card was ended. Taps
    /// do this inside the click writer's transaction; this is the same statement on its
    /// own, for tools and tests.
    pub async fn advance_counter(&self, card_id: i64, counter: i64) -> Result<bool, StoreError> {
        // The click writer's statement, so both say the same about a counter.
        let r = sqlx::query(super::clicks::ADVANCE_COUNTER)
            .bind(card_id)
            .bind(counter)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }
}
