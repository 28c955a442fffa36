//! Checking a member in at the counter (issue 20): the kiosk reads the member card's URL
//! (`https://{domain}/m/{code}?m=<UID>x<counter>`, the chip fills the mirror on every
//! read) and posts it to `POST /api/kiosk/check-in`. The decision is pure
//! ([`parse_card_url`], [`standing_refusal`]); the write is one transaction
//! ([`crate::store::Store::check_in_tap`]): the counter rises or the tap is a copy,
//! a visit is taken (rolled-over first, never below zero), and the check-in is logged,
//! at most one accepted per card and counter.

use serde::Serialize;

use super::plans::{MembershipConfig, Priority};
use crate::AppState;
use crate::api::ApiError;
use crate::store::checkins::{DeskView, Recorded, Standing, Tap};
use crate::store::kiosks::Kiosk;

/// A member card's tap, from its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardTap {
    /// The host the URL names.
    pub host: String,
    /// The member's page code.
    pub code: String,
    /// The UID, 14 upper-case hex digits.
    pub uid: String,
    /// The mirror counter.
    pub counter: u32,
}

/// The longest URL read from a card (NTAG216 holds 888 bytes of NDEF).
pub const MAX_URL: usize = 1024;

/// Reads a member card's URL: `https://HOST/m/CODE?m=UIDxCOUNTER` (other query
/// parameters are ignored). The message says what is wrong.
pub fn parse_card_url(url: &str) -> Result<CardTap, String> {
    const SHAPE: &str = "a member card's URL is https://<domain>/m/<code>?m=<14 hex UID>x<6 hex counter> (the card's UID+counter mirror must be on)";
    if url.chars().count() > MAX_URL {
        return Err(format!("the URL is over {MAX_URL} characters; {SHAPE}"));
    }
    if url
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '#')
    {
        return Err(format!(
            "the URL holds spaces, control characters or a #; {SHAPE}"
        ));
    }
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| format!("not an https URL; {SHAPE}"))?;
    let (host, rest) = rest.split_once('/').ok_or_else(|| SHAPE.to_owned())?;
    let (name, port) = host.split_once(':').unwrap_or((host, "1"));
    let host_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit());
    if !host_ok {
        return Err(format!("the host {host:?} is not a domain name; {SHAPE}"));
    }
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let code = path
        .strip_prefix("m/")
        .filter(|c| !c.is_empty() && c.len() <= 64 && c.bytes().all(|b| b.is_ascii_alphanumeric()))
        .ok_or_else(|| format!("the path is not /m/<code>; {SHAPE}"))?;
    let (uid, counter) = query
        .split('&')
        .filter_map(|kv| kv.strip_prefix("m="))
        .find_map(|m| {
            let well_formed = m.len() == 21
                && m.bytes().enumerate().all(|(i, b)| {
                    if i == 14 {
                        b == b'x' || b == b'X'
                    } else {
                        b.is_ascii_hexdigit()
                    }
                });
            well_formed
                .then(|| tapkit_core::ntag::parse_mirror_text(m))
                .flatten()
        })
        .ok_or_else(|| format!("the URL has no m=<UID>x<counter> mirror; {SHAPE}"))?;
    Ok(CardTap {
        host: host.to_ascii_lowercase(),
        code: code.to_owned(),
        uid: tapkit_core::hex::encode(&uid),
        counter,
    })
}

/// Why a member's standing refuses a check-in on `day`, if it does (`grace_days`: how
/// long after a failed payment a past-due member may still check in).
pub fn standing_refusal(m: &Standing<'_>, day: i64, grace_days: u32) -> Option<&'static str> {
    match m.status {
        "active" => None,
        "past_due" => {
            let s = super::dunning::Standing::PastDue {
                failed_on: m.failed_on.unwrap_or(day),
                retries: 0,
            };
            (!s.may_check_in(day, grace_days)).then_some("past_due")
        }
        "paused" => Some("paused"),
        "lapsed" => Some("lapsed"),
        _ => Some("cancelled"),
    }
}

/// What staff see of the member.
#[derive(Debug, Clone, Serialize)]
pub struct Shown {
    /// First name, when the brand gave one.
    pub first_name: Option<String>,
    /// The plan's name.
    pub plan: String,
    /// Visits left this period (`None`: unlimited).
    pub visits_left: Option<i64>,
    /// Of them, rolled over from last month.
    pub rolled_over_visits: i64,
    /// The add-on discount, basis points.
    pub add_on_discount_bp: i64,
    /// `standard`, `high` or `instant`.
    pub priority: &'static str,
}

/// The answer to a check-in.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    /// Whether a visit was used.
    pub accepted: bool,
    /// Why not: `no_visits_left`, `paused`, `past_due`, `lapsed`, `cancelled`,
    /// `unknown_card`, `revoked_card`, `counter_not_rising` (a copied card) or
    /// `kiosk_not_allowed`.
    pub reason: Option<String>,
    /// The member, when the card is one of a member's.
    pub member: Option<Shown>,
    /// Whether this answers a read the kiosk had sent before.
    pub replayed: bool,
}

fn priority(p: Priority) -> &'static str {
    match p {
        Priority::Standard => "standard",
        Priority::High => "high",
        Priority::Instant => "instant",
    }
}

fn shown(m: &DeskView, cfg: &MembershipConfig) -> Shown {
    let plan = cfg.plan(&m.plan);
    Shown {
        first_name: m.first_name.clone(),
        plan: plan.map_or_else(|| m.plan.clone(), |p| p.name.clone()),
        visits_left: m.visits_left(),
        rolled_over_visits: m.rolled_left(),
        add_on_discount_bp: plan.map_or(0, |p| p.add_on_discount_bp),
        priority: plan.map_or("standard", |p| priority(p.priority)),
    }
}

/// Checks a kiosk's idempotency key: 1 to 100 visible ASCII characters.
pub fn check_key(key: Option<&str>) -> Result<Option<&str>, ApiError> {
    match key {
        None => Ok(None),
        Some(k) if !k.is_empty() && k.len() <= 100 && k.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Some(k))
        }
        Some(_) => Err(ApiError::field(
            "Idempotency-Key",
            "Idempotency-Key must be 1 to 100 visible ASCII characters, one per read of the card",
        )),
    }
}

/// Checks a member in from the card's URL, for the kiosk `k`.
pub async fn check_in(
    s: &AppState,
    k: &Kiosk,
    url: &str,
    key: Option<&str>,
    now: i64,
) -> Result<Answer, ApiError> {
    let tap = parse_card_url(url).map_err(|e| ApiError::field("url", e))?;
    let cfg = &s.config.program.membership;
    let ours = tap.host == s.config.program.domain.to_ascii_lowercase();
    let recorded = s
        .store
        .check_in_tap(&Tap {
            program_id: s.program.id,
            code: ours.then_some(tap.code.as_str()),
            uid: &tap.uid,
            counter: i64::from(tap.counter),
            kiosk_id: k.id,
            kiosk_allowed: cfg.checkin_kiosks.is_empty() || cfg.checkin_kiosks.contains(&k.id),
            idempotency_key: key,
            now,
            grace_days: cfg.grace_days,
            refuse: standing_refusal,
        })
        .await?;
    let member = recorded.member;
    let (done, replayed) = match recorded.recorded {
        Recorded::New(c) => (c, false),
        Recorded::Replayed(c) => (c, true),
    };
    let known = !matches!(
        done.reason.as_deref(),
        Some("unknown_card" | "kiosk_not_allowed")
    );
    Ok(Answer {
        accepted: done.accepted,
        reason: done.reason,
        member: member.filter(|_| known).map(|m| shown(&m, cfg)),
        replayed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_cards_url_is_read() {
        let t = parse_card_url("https://book.example.com/m/3f9a0c2b7d1e?m=04a1b2c3d4e5f6x00002A")
            .unwrap();
        assert_eq!(
            t,
            CardTap {
                host: "book.example.com".into(),
                code: "3f9a0c2b7d1e".into(),
                uid: "04A1B2C3D4E5F6".into(),
                counter: 42,
            }
        );
        for bad in [
            "http://book.example.com/m/abc?m=04A1B2C3D4E5F6x00002A",
            "https://book.example.com/r/abc?m=04A1B2C3D4E5F6x00002A",
            "https://book.example.com/m/abc",
            "https://book.example.com/m/abc?m=04A1B2C3D4E5F6x2A",
            "https://book.example.com/m/a-b?m=04A1B2C3D4E5F6x00002A",
            "https://book.example.com/m/abc?m=+4A1B2C3D4E5F6x00002A",
            "https://book.example.com/m/?m=04A1B2C3D4E5F6x00002A",
            "",
        ] {
            assert!(parse_card_url(bad).is_err(), "{bad}");
        }
        let long = format!(
            "https://book.example.com/m/abc?m=04A1B2C3D4E5F6x00002A&{}",
            "x".repeat(2000)
        );
        assert!(parse_card_url(&long).unwrap_err().contains("1024"));
    }
}
