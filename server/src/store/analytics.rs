//! Traffic per day and affiliate, and per day and card binding.

use serde::Serialize;
use sqlx::FromRow;
use sqlx::Row;

use super::{Store, StoreError};

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
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
    /// Flagged taps (replayed counter, revoked card, bad SUN signature …).
    pub flagged: i64,
    /// NTAG 424 DNA: the key version of the binding (`None`: an NTAG21x card).
    pub key_version: Option<i64>,
    /// Verified chip taps: attributed taps of a 424 DNA card, each one's SUN signature
    /// checked (an NTAG21x card's mirror can be copied; these cannot).
    pub verified: i64,
}

/// One campaign's traffic over a range: the links' `utm_*` tags as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct CampaignTraffic {
    /// `utm_source`.
    pub utm_source: Option<String>,
    /// `utm_medium`.
    pub utm_medium: Option<String>,
    /// `utm_campaign`.
    pub utm_campaign: Option<String>,
    /// Real clicks (attributed + unattributed).
    pub clicks: i64,
    /// Of which attributed.
    pub attributed: i64,
}

impl Store {
    /// Real clicks per campaign (`utm_source`, `utm_medium`, `utm_campaign`; clicks with
    /// no tag at all are left out) for days `from_day..=to_day`, optionally for one
    /// affiliate, most clicks first (at most 200 campaigns).
    pub async fn campaigns(
        &self,
        from_day: i64,
        to_day: i64,
        affiliate_id: Option<i64>,
    ) -> Result<Vec<CampaignTraffic>, StoreError> {
        let sql = format!(
            "SELECT c.utm_source AS utm_source, c.utm_medium AS utm_medium, c.utm_campaign AS utm_campaign, \
             CAST(COUNT(*) AS BIGINT) AS clicks, \
             CAST(SUM(CASE WHEN c.outcome = 'attributed' THEN 1 ELSE 0 END) AS BIGINT) AS attributed \
             FROM clicks c WHERE c.affiliate_id IS NOT NULL AND c.at >= $1 AND c.at < $2 \
             AND c.outcome IN ('attributed', 'unattributed') \
             AND (c.utm_source IS NOT NULL OR c.utm_medium IS NOT NULL OR c.utm_campaign IS NOT NULL){} \
             GROUP BY c.utm_source, c.utm_medium, c.utm_campaign \
             ORDER BY clicks DESC, utm_source, utm_medium, utm_campaign LIMIT 200",
            if affiliate_id.is_some() {
                " AND c.affiliate_id = $3"
            } else {
                ""
            }
        );
        let mut q = sqlx::query(&sql)
            .bind(from_day.saturating_mul(86_400_000))
            .bind(to_day.saturating_add(1).saturating_mul(86_400_000));
        if let Some(a) = affiliate_id {
            q = q.bind(a);
        }
        Ok(q.fetch_all(&self.pool)
            .await?
            .iter()
            .map(CampaignTraffic::from_row)
            .collect::<Result<Vec<_>, sqlx::Error>>()?)
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
            "SELECT c.at / 86400000 AS day, k.id AS card_id, k.uid AS uid, k.affiliate_id AS affiliate_id,              COUNT(DISTINCT CASE WHEN {REAL} THEN {VISITOR} END) AS visitors,              SUM(CASE WHEN {REAL} THEN 1 ELSE 0 END) AS taps,              SUM(CASE WHEN c.outcome = 'flagged' THEN 1 ELSE 0 END) AS flagged,              k.key_version AS key_version,              SUM(CASE WHEN c.outcome = 'attributed' AND k.key_version IS NOT NULL THEN 1 ELSE 0 END) AS verified              FROM clicks c JOIN cards k ON k.id = c.card_id              WHERE c.at >= $1 AND c.at < $2{}              GROUP BY c.at / 86400000, k.id, k.uid, k.affiliate_id, k.key_version ORDER BY day, card_id",
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
            .map(CardDay::from_row)
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok((days, cards))
    }
}
