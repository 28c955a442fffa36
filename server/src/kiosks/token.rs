//! The check of the rotating QR token on `/r/{code}?k=…`: a fresh, authentic token of
//! this affiliate's active kiosk attributes; a stale one (a photo of the screen) does
//! not; a forged or misplaced one is flagged.

use tapkit_core::kiosk::{Freshness, KioskToken, step_at};

use super::enrolment::secret;
use crate::AppState;
use crate::store::StoreError;

/// Checks a kiosk scan's `k` token for this affiliate. Returns the reason to withhold
/// attribution, if any, and whether the click is flagged (forged or misplaced tokens)
/// rather than merely unattributed (a stale photo of the screen).
pub async fn check_token(
    s: &AppState,
    affiliate_id: i64,
    raw: &str,
    now_ms: i64,
) -> Result<Option<(&'static str, bool)>, StoreError> {
    let Ok(t) = KioskToken::parse(raw) else {
        return Ok(Some(("bad_kiosk_token", true)));
    };
    // The directory's copy answers a good token without a database read; any other
    // answer is decided on the kiosk's row, which a re-enrolment on another replica a
    // moment ago may have changed.
    if let Some(k) = s.directory.kiosk(t.kiosk_id)
        && k.affiliate_id == affiliate_id
        && k.active
        && t.authentic(&s.keys.kiosk_secret(t.kiosk_id, k.generation))
    {
        return Ok(freshness(s, &t, now_ms));
    }
    let Some(k) = s.store.kiosk(t.kiosk_id).await? else {
        return Ok(Some(("unknown_kiosk", true)));
    };
    if k.affiliate_id != affiliate_id {
        return Ok(Some(("kiosk_of_another_affiliate", true)));
    }
    if !t.authentic(&secret(s, &k)) {
        // A genuine token of the previous secret (the box was re-enrolled or retired) is
        // an old photo, not a forgery; anything else is forged.
        let previous =
            k.generation > 0 && t.authentic(&s.keys.kiosk_secret(k.id, k.generation - 1));
        return Ok(Some(match (previous, k.status == "active") {
            (true, true) => ("kiosk_reenrolled", false),
            (true, false) => ("kiosk_retired", false),
            (false, _) => ("forged_kiosk_token", true),
        }));
    }
    if k.status != "active" {
        return Ok(Some(("kiosk_retired", false)));
    }
    Ok(freshness(s, &t, now_ms))
}

/// An authentic token of an active kiosk: whether it is of the current time steps.
fn freshness(s: &AppState, t: &KioskToken, now_ms: i64) -> Option<(&'static str, bool)> {
    let cfg = &s.config.program.kiosk;
    match t.freshness(step_at(now_ms, cfg.rotation_secs), cfg.token_window_steps) {
        Freshness::Fresh => None,
        Freshness::Stale => Some(("stale_kiosk_token", false)),
        Freshness::Ahead => Some(("kiosk_clock_ahead", false)),
    }
}
