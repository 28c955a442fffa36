//! Checking a member in at the counter (issue 20): the kiosk reads the member card's URL
//! (`https://{domain}/m/{code}?m=<UID>x<counter>`, the chip fills the mirror on every
//! read) and posts it to `POST /api/kiosk/check-in`. The decision is pure
//! ([`parse_card_url`], [`standing_refusal`]); the write is one transaction
//! ([`crate::store::Store::check_in_tap`]): the counter rises or the tap is a copy,
//! a visit is taken (rolled-over first, never below zero), and the check-in is logged,
//! at most one accepted per card and counter.

use tapkit_core::kiosk_wire::{
    CheckInAnswer, CheckInMember, CheckInRequest, Roster, RosterCard, SignedRoster, sign_roster,
};

use super::plans::{MembershipConfig, Priority};
use crate::AppState;
use crate::api::ApiError;
use crate::store::checkins::{DeskView, Recorded, Standing, Tap};

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

fn priority(p: Priority) -> &'static str {
    match p {
        Priority::Standard => "standard",
        Priority::High => "high",
        Priority::Instant => "instant",
    }
}

fn shown(m: &DeskView, cfg: &MembershipConfig) -> CheckInMember {
    let plan = cfg.plan(&m.plan);
    CheckInMember {
        first_name: m.first_name.clone(),
        plan: plan.map_or_else(|| m.plan.clone(), |p| p.name.clone()),
        visits_left: m.visits_left(),
        rolled_over_visits: m.rolled_left(),
        add_on_discount_bp: plan.map_or(0, |p| p.add_on_discount_bp),
        priority: plan.map_or("standard", |p| priority(p.priority)).to_owned(),
    }
}

/// How far ahead of the server's clock an offline check-in's time may be (the kiosk's
/// clock runs on the offset it measured; more is a kiosk clock gone wrong).
const OFFLINE_FUTURE_MS: i64 = 10 * 60 * 1000;

/// The kiosks' roster stays valid this long after it was made: an offline kiosk checks
/// members in from it for a day, then refuses and says so.
pub const ROSTER_VALID_MS: i64 = 24 * 60 * 60 * 1000;

/// The signed roster for kiosk `k` (see [`tapkit_core::kiosk_wire::SignedRoster`]):
/// every active member card, with its member's plan, visits and standing as now.
pub async fn roster(
    s: &AppState,
    kiosk_id: i64,
    secret: &[u8],
    now: i64,
) -> Result<SignedRoster, ApiError> {
    let cfg = &s.config.program.membership;
    let allowed = cfg.checkin_kiosks.is_empty() || cfg.checkin_kiosks.contains(&kiosk_id);
    let cards = if allowed {
        s.store.roster_cards(s.program.id).await?
    } else {
        Vec::new()
    };
    let day = now.div_euclid(86_400_000);
    let cards = cards
        .into_iter()
        .map(|(card, m)| {
            let desk = DeskView::from(&m);
            let status = match standing_refusal(
                &Standing {
                    status: &m.status,
                    failed_on: m.failed_on,
                },
                day,
                cfg.grace_days,
            ) {
                None => m.status.clone(),
                Some(why) => why.to_owned(),
            };
            let shown = shown(&desk, cfg);
            RosterCard {
                uid: card.uid,
                code: m.code.clone().unwrap_or_default(),
                first_name: shown.first_name,
                plan: shown.plan,
                status,
                visits_left: shown.visits_left,
                rolled_over_visits: shown.rolled_over_visits,
                add_on_discount_bp: shown.add_on_discount_bp,
                priority: shown.priority,
                last_counter: card.last_counter,
            }
        })
        .collect();
    let r = Roster {
        kiosk_id,
        version: now,
        expires_at_ms: now + ROSTER_VALID_MS,
        cards,
    };
    let text = serde_json::to_string(&r).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(SignedRoster {
        signature: sign_roster(secret, &text),
        roster: text,
    })
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

/// Checks a member in from the card's URL, for the kiosk `kiosk_id`; `offline_at_ms` when
/// the kiosk already let the member in from its roster (then kept whatever happens: a
/// visit not owed becomes an overdraft, and a resubmission of the queue is answered from
/// its key, or from the tap itself when the kiosk sent none).
pub async fn check_in(
    s: &AppState,
    kiosk_id: i64,
    req: &CheckInRequest,
    key: Option<&str>,
    now: i64,
) -> Result<CheckInAnswer, ApiError> {
    let tap = parse_card_url(&req.url).map_err(|e| ApiError::field("url", e))?;
    if req.offline_at_ms.is_some_and(|at| at < 0) {
        return Err(ApiError::field(
            "offline_at_ms",
            "offline_at_ms is Unix milliseconds, 0 or more",
        ));
    }
    // An offline check-in was already given at the desk: it is kept whatever its time
    // says. A kiosk clock ahead of the server's is brought back to now (and logged).
    let offline_at = req.offline_at_ms.map(|at| {
        if at > now + OFFLINE_FUTURE_MS {
            tracing::warn!(
                kiosk = kiosk_id,
                offline_at_ms = at,
                now,
                "an offline check-in is dated in the future: the kiosk's clock is off; kept, dated now"
            );
            now
        } else {
            at
        }
    });
    // Its queue is submitted until answered: without the kiosk's key, the tap itself
    // (card and counter) names it, so a resubmission is answered, never counted again.
    let synthetic;
    let key = match (key, offline_at) {
        (None, Some(_)) => {
            synthetic = format!("offline-{}x{:06X}", tap.uid, tap.counter);
            Some(synthetic.as_str())
        }
        (k, _) => k,
    };
    let cfg = &s.config.program.membership;
    let ours = tap.host == s.config.program.domain.to_ascii_lowercase();
    let recorded = s
        .store
        .check_in_tap(&Tap {
            program_id: s.program.id,
            code: ours.then_some(tap.code.as_str()),
            uid: &tap.uid,
            counter: i64::from(tap.counter),
            kiosk_id,
            kiosk_allowed: cfg.checkin_kiosks.is_empty() || cfg.checkin_kiosks.contains(&kiosk_id),
            idempotency_key: key,
            offline_at,
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
    Ok(CheckInAnswer {
        accepted: done.accepted,
        reason: done.reason,
        overdraft: done.overdraft,
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
