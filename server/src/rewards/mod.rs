//! Rewards for peer referrals, redeemed at the brand's checkout (issue 21).
//!
//! - A referrer's reward (credit or voucher) is issued the moment its commission is
//!   earned, by the one writer of commission decisions ([`crate::money::posting`]).
//! - A referred friend's first-visit offer is named by the attribution cookie the
//!   friend's tap set: the checkout passes that token as the code, and the offer is
//!   written on its first redemption, once per tap.
//! - The checkout looks codes up and redeems them with requests signed like the
//!   conversion webhooks (`Tapkit-Signature`, the same secret): `POST
//!   /api/rewards/lookup` and `POST /api/rewards/redeem`.
//! - A refund of the booking a reward was used on (the webhook's `booking_refunded`)
//!   restores it; a refund of the booking it was earned on takes back what is left.
//!
//! [`catalogue`] holds the settings and the arithmetic, [`ledger`] every movement.

pub mod catalogue;
pub mod ledger;
pub mod notify;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::api::ApiError;
use crate::money::wire::{SIGNATURE_HEADER, verify_signature};
use crate::rewards::catalogue::{Nothing, RewardsConfig, Terms};
use crate::store::rewards::{Redemption, Reward};
use crate::store::vocab::RewardKind;
use crate::store::{StoreError, now_ms};

/// The checkout's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/rewards/lookup", post(lookup_route))
        .route("/api/rewards/redeem", post(redeem_route))
}

/// What a code is worth, as the checkout shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lookup {
    /// The code to redeem (for a friend's offer: the token sent, or the code its first
    /// redemption gave it).
    pub code: String,
    /// `referrer_reward` or `friend_offer`.
    pub source: &'static str,
    /// `credit`, `fixed`, `percent` or `free`.
    pub kind: RewardKind,
    /// What it is for.
    pub applies_to: String,
    /// The program's currency.
    pub currency: String,
    /// Credit: what is left; fixed: the amount off.
    pub value_minor: Option<i64>,
    /// Percent: basis points.
    pub percent_bp: Option<i64>,
    /// The most it takes off one booking.
    pub cap_minor: Option<i64>,
    /// What is left: minor units of credit, or 1 for an unused voucher.
    pub balance: i64,
    /// Usable until, Unix ms.
    pub expires_at: i64,
    /// `active`, `used`, `expired` or `refunded`.
    pub status: &'static str,
}

/// A redemption's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Redeemed {
    /// `redeemed`, or `duplicate` for a retry of the same booking (nothing moved).
    pub status: &'static str,
    /// The reward's code.
    pub code: String,
    /// The booking.
    pub booking_id: String,
    /// What to take off the booking, minor units.
    pub discount_minor: i64,
    /// The program's currency.
    pub currency: String,
    /// What is left on the reward afterwards (credit: minor units; voucher: 0).
    pub balance: i64,
    /// The redemption's id.
    pub redemption_id: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LookupBody {
    code: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedeemBody {
    code: String,
    booking_id: String,
    /// JSON's integer includes 1.0: whole numbers written as floats are taken.
    #[serde(deserialize_with = "tapkit_core::json_int::whole")]
    amount_minor: i64,
}

fn config(s: &AppState) -> Result<&RewardsConfig, ApiError> {
    s.config.program.rewards.as_ref().ok_or_else(|| {
        ApiError::Unavailable(
            "rewards are not configured: add a [program.rewards] section to the program file and restart".into(),
        )
    })
}

/// Checks the signature and reads the body.
fn signed<T: serde::de::DeserializeOwned>(
    s: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, ApiError> {
    let Some(secret) = &s.config.webhook_secret else {
        return Err(ApiError::Unavailable(
            "the rewards API is signed with the webhook secret, which is not configured: set TAPKIT_WEBHOOK_SECRET (or TAPKIT_WEBHOOK_SECRET_FILE) and restart".into(),
        ));
    };
    verify_signature(
        headers
            .get(SIGNATURE_HEADER)
            .map(|v| v.to_str().unwrap_or("\u{0}")),
        body,
        &secret.0,
        now_ms().div_euclid(1000),
        s.config.program.webhook_tolerance_secs,
    )
    .map_err(|e| ApiError::Unauthenticated(e.to_string()))?;
    serde_json::from_slice(body).map_err(|e| ApiError::Invalid {
        status: axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        field: None,
        message: format!(
            "the body is not what this route takes ({e}); send JSON like {{\"code\": \"RW-…\"}}"
        ),
    })
}

fn code_field(raw: &str) -> Result<String, ApiError> {
    let n = raw.chars().count();
    if n == 0 || n > 200 || raw.chars().any(char::is_control) {
        return Err(ApiError::field(
            "code",
            "code must be 1 to 200 characters without control characters: a reward code (RW-…) or the tapkit_ref_js cookie's value",
        ));
    }
    Ok(if raw.trim().starts_with("v1.") {
        raw.trim().to_owned()
    } else {
        ledger::normalise_code(raw)
    })
}

/// A code resolved: a stored reward, or a friend's offer not yet written.
enum Found {
    Stored(Reward),
    Offer {
        click_id: i64,
        terms: Terms,
        expires_at: i64,
    },
}

/// Resolves a code without writing anything.
async fn find(s: &AppState, cfg: &RewardsConfig, code: &str) -> Result<Found, ApiError> {
    if !code.starts_with("v1.") {
        return match s.store.reward_by_code(s.program.id, code).await? {
            Some(r) => Ok(Found::Stored(r)),
            None => Err(ApiError::NotFound("reward code")),
        };
    }
    let offer = cfg.friend_offer.as_ref().ok_or(ApiError::NotFound(
        "a friend's offer (this program gives none)",
    ))?;
    let a = s
        .keys
        .verify_attribution(code)
        .ok_or(ApiError::NotFound("reward code"))?;
    if let Some(r) = s.store.reward_of_click(a.click_id).await? {
        return Ok(Found::Stored(r));
    }
    let click = s
        .store
        .attribution_click(a.click_id)
        .await?
        .filter(|c| c.outcome == "attributed")
        .ok_or(ApiError::NotFound("a friend's offer on this tap"))?;
    let aff = match click.affiliate_id {
        Some(id) => s.store.affiliate(id).await?,
        None => return Err(ApiError::NotFound("a friend's offer on this tap")),
    };
    if !offer.for_kinds.contains(&aff.kind) {
        return Err(ApiError::NotFound(
            "a friend's offer on this tap (the link is not a referral link)",
        ));
    }
    Ok(Found::Offer {
        click_id: a.click_id,
        terms: offer.terms(),
        expires_at: click.at.saturating_add(i64::from(offer.days) * 86_400_000),
    })
}

fn status_of(r: &Reward, now: i64) -> &'static str {
    match r.closed_reason.as_deref() {
        Some("refunded") => "refunded",
        Some(_) => "expired",
        None if r.expires_at <= now => "expired",
        None if r.balance == 0 => "used",
        None => "active",
    }
}

fn lookup_of(s: &AppState, code: &str, found: &Found, now: i64) -> Lookup {
    let currency = s.config.program.commission.currency.clone();
    match found {
        Found::Stored(r) => Lookup {
            code: r.code.clone(),
            source: if r.affiliate_id.is_some() {
                "referrer_reward"
            } else {
                "friend_offer"
            },
            kind: r.kind,
            applies_to: r.applies_to.clone(),
            currency,
            value_minor: if r.kind == RewardKind::Credit {
                Some(r.balance)
            } else {
                r.value_minor
            },
            percent_bp: r.percent_bp,
            cap_minor: r.cap_minor,
            balance: r.balance,
            expires_at: r.expires_at,
            status: status_of(r, now),
        },
        Found::Offer {
            terms, expires_at, ..
        } => Lookup {
            code: code.to_owned(),
            source: "friend_offer",
            kind: terms.kind,
            applies_to: terms.applies_to.clone(),
            currency,
            value_minor: terms.value_minor,
            percent_bp: terms.percent_bp,
            cap_minor: terms.cap_minor,
            balance: 1,
            expires_at: *expires_at,
            status: if *expires_at <= now {
                "expired"
            } else {
                "active"
            },
        },
    }
}

/// `POST /api/rewards/lookup {"code"}`.
pub async fn lookup_route(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Lookup>, ApiError> {
    let b: LookupBody = signed(&s, &headers, &body)?;
    let cfg = config(&s)?;
    let code = code_field(&b.code)?;
    let found = find(&s, cfg, &code).await?;
    Ok(Json(lookup_of(&s, &code, &found, now_ms())))
}

/// `POST /api/rewards/redeem {"code", "booking_id", "amount_minor"}`.
pub async fn redeem_route(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Redeemed>, ApiError> {
    let b: RedeemBody = signed(&s, &headers, &body)?;
    let cfg = config(&s)?;
    let code = code_field(&b.code)?;
    let booking_id = crate::money::wire::id_field("booking_id", b.booking_id)?;
    let max = s.config.program.commission.max_amount_minor;
    if b.amount_minor < 1 {
        return Err(ApiError::field(
            "amount_minor",
            format!(
                "amount_minor is {}; send the booking's amount before the reward, in minor units (at least 1)",
                b.amount_minor
            ),
        ));
    }
    if b.amount_minor > max {
        // Valid JSON the program's own ceiling refuses (commission.max_amount_minor).
        return Err(ApiError::Conflict(format!(
            "amount_minor {} is above this program's largest booking amount ({max} minor units, commission.max_amount_minor); check the amount's unit",
            b.amount_minor
        )));
    }
    let out = redeem(&s, cfg, &code, &booking_id, b.amount_minor, now_ms()).await?;
    tracing::info!(
        code = %out.code,
        booking_id = %out.booking_id,
        status = out.status,
        discount_minor = out.discount_minor,
        "reward redeemed"
    );
    Ok(Json(out))
}

/// Redeems a code on a booking, exactly once: in one money transaction (one at a time
/// per program, across replicas), a retry for the same booking answers the first use.
pub async fn redeem(
    s: &AppState,
    cfg: &RewardsConfig,
    code: &str,
    booking_id: &str,
    amount_minor: i64,
    now: i64,
) -> Result<Redeemed, ApiError> {
    let found = find(s, cfg, code).await?;
    let mut tx = s.store.begin_money(s.program.id).await?;
    let r = match found {
        Found::Stored(r) => tx
            .reward_by_code(&r.code)
            .await?
            .ok_or(StoreError::NotFound("reward code"))?,
        Found::Offer {
            click_id,
            terms,
            expires_at,
        } => ledger::friend_offer(&mut tx, click_id, &terms, expires_at, now).await?,
    };
    let answer = |status, discount, balance, id| Redeemed {
        status,
        code: r.code.clone(),
        booking_id: booking_id.to_owned(),
        discount_minor: discount,
        currency: s.config.program.commission.currency.clone(),
        balance,
        redemption_id: id,
    };
    if let Some(d) = tx.redemption_of(r.id, booking_id).await? {
        if d.reversed_at.is_none() {
            return Ok(answer("duplicate", d.discount_minor, r.balance, d.id));
        }
        return Err(ApiError::Conflict(format!(
            "reward {} was used on booking {booking_id}, which was refunded; a new booking needs a new booking_id",
            r.code
        )));
    }
    match status_of(&r, now) {
        "active" => {}
        "expired" => {
            if r.closed_at.is_none() {
                ledger::expire(&mut tx, &r, now).await?;
                tx.commit().await?;
            }
            return Err(ApiError::Conflict(format!(
                "reward {} expired on {}; it can no longer be used",
                r.code,
                tapkit_core::date::format_date(r.expires_at.div_euclid(86_400_000))
            )));
        }
        "refunded" => {
            return Err(ApiError::Conflict(format!(
                "reward {} was withdrawn: the booking that earned it was refunded",
                r.code
            )));
        }
        _ => {
            return Err(ApiError::Conflict(format!(
                "reward {} is used up{}",
                r.code,
                if r.kind == RewardKind::Credit {
                    ": its credit balance is 0"
                } else {
                    " (a voucher is used once)"
                }
            )));
        }
    }
    let terms = Terms {
        kind: r.kind,
        value_minor: r.value_minor,
        percent_bp: r.percent_bp,
        cap_minor: r.cap_minor,
        applies_to: r.applies_to.clone(),
    };
    let (discount, units) = match catalogue::redeem(&terms, r.balance, amount_minor) {
        Ok(x) => x,
        Err(Nothing::Spent) => {
            return Err(ApiError::Conflict(format!("reward {} is used up", r.code)));
        }
        Err(Nothing::TooSmall) => {
            return Err(ApiError::Conflict(format!(
                "reward {} takes nothing off a booking of {amount_minor} minor units; it stays unused",
                r.code
            )));
        }
    };
    let use_ = Redemption {
        id: 0,
        reward_id: r.id,
        booking_id: booking_id.to_owned(),
        amount_minor,
        discount_minor: discount,
        units,
        redeemed_at: now,
        reversed_at: None,
    };
    // Under the money lock the balance cannot have moved since it was read; if it did,
    // nothing is written and the caller may retry.
    let Some(id) = ledger::redeem(&mut tx, &r, &use_, now).await? else {
        return Err(ApiError::Conflict(format!(
            "reward {} changed while it was being redeemed; try again",
            r.code
        )));
    };
    tx.commit().await?;
    Ok(answer("redeemed", discount, r.balance - units, id))
}

/// Expires what is past its day (run every few minutes; idempotent).
pub async fn expire_due(s: &AppState, now: i64) -> Result<usize, StoreError> {
    let mut n = 0;
    loop {
        let mut tx = s.store.begin_money(s.program.id).await?;
        let due = tx.rewards_due_to_expire(now, 200).await?;
        if due.is_empty() {
            return Ok(n);
        }
        for r in &due {
            if ledger::expire(&mut tx, r, now).await? {
                n += 1;
            }
        }
        tx.commit().await?;
    }
}

/// Runs [`expire_due`] every `every`.
pub fn spawn_expiry(s: AppState, every: std::time::Duration) {
    if s.config.program.rewards.is_none() {
        return;
    }
    crate::members::every(every, move || {
        let s = s.clone();
        async move {
            match expire_due(&s, now_ms()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(expired = n, "rewards expired"),
                Err(e) => tracing::warn!(error = %e, "could not expire rewards; will retry"),
            }
        }
    });
}
