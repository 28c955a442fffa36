//! The counter display's rotating QR token: `?k={kiosk}.{step}.{mac}`.
//!
//! A kiosk shows `https://{domain}/r/{code}?k={token}`. The token names the kiosk, a time
//! step (Unix seconds / the step length, TOTP-like) and a MAC: the first 8 bytes of
//! HMAC-SHA256 under the kiosk's own secret over `"tapkit kiosk qr v1.{kiosk}.{step}"`,
//! as 16 lowercase hex digits. The kiosk computes it locally, so it keeps rotating while
//! offline; the server recomputes it and accepts a step within a small window of its own
//! clock. A photo of the screen shared later carries an old step: it still redirects but
//! earns nothing.
//!
//! 64 bits of MAC make guessing hopeless (each guess is one HTTP request), and the whole
//! token stays short enough (about 30 characters) for a QR code that scans from a metre.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Length of the MAC in the token, in hex digits.
pub const MAC_HEX: usize = 16;

/// The step length used unless the program configures another (seconds).
pub const DEFAULT_STEP_SECS: i64 = 60;

/// A parsed, not yet verified token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KioskToken {
    /// The kiosk's id (as the server numbers them).
    pub kiosk_id: i64,
    /// The time step it was made for.
    pub step: i64,
    mac: [u8; 8],
}

/// Why a token string is not a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three dot-separated parts of the right form.
    #[error("a kiosk token is `<kiosk>.<step>.<16 hex digits>`")]
    Malformed,
}

/// The step (Unix seconds divided by `step_secs`) at a time in Unix milliseconds.
pub fn step_at(unix_ms: i64, step_secs: i64) -> i64 {
    unix_ms.div_euclid(1000).div_euclid(step_secs.max(1))
}

fn mac(secret: &[u8], kiosk_id: i64, step: i64) -> [u8; 8] {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut m) = HmacSha256::new_from_slice(secret) else {
        unreachable!("HMAC-SHA256 takes keys of any length")
    };
    m.update(format!("tapkit kiosk qr v1.{kiosk_id}.{step}").as_bytes());
    let full = m.finalize().into_bytes();
    let mut out = [0u8; 8];
    out.copy_from_slice(&full[..8]);
    out
}

/// The token a kiosk shows during `step`.
pub fn sign(secret: &[u8], kiosk_id: i64, step: i64) -> String {
    format!(
        "{kiosk_id}.{step}.{}",
        crate::hex::encode_lower(&mac(secret, kiosk_id, step))
    )
}

impl KioskToken {
    /// Parses `<kiosk>.<step>.<mac>` strictly: decimal numbers without signs or leading
    /// junk, exactly 16 hex digits.
    pub fn parse(s: &str) -> Result<Self, TokenError> {
        let mut parts = s.split('.');
        let (Some(id), Some(step), Some(mac_hex), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let number = |t: &str| -> Result<i64, TokenError> {
            if t.is_empty() || t.len() > 15 || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(TokenError::Malformed);
            }
            t.parse().map_err(|_| TokenError::Malformed)
        };
        let kiosk_id = number(id)?;
        let step = number(step)?;
        if mac_hex.len() != MAC_HEX || !mac_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(TokenError::Malformed);
        }
        let bytes = crate::hex::decode(mac_hex).map_err(|_| TokenError::Malformed)?;
        let mut mac = [0u8; 8];
        mac.copy_from_slice(&bytes);
        Ok(Self {
            kiosk_id,
            step,
            mac,
        })
    }

    /// Whether the MAC is right for this kiosk's secret (constant-time comparison).
    pub fn authentic(&self, secret: &[u8]) -> bool {
        let Ok(mut m) = HmacSha256::new_from_slice(secret) else {
            return false;
        };
        m.update(format!("tapkit kiosk qr v1.{}.{}", self.kiosk_id, self.step).as_bytes());
        m.verify_truncated_left(&self.mac).is_ok()
    }

    /// Where the token's step lies against `now_step`, given a window of `window` steps
    /// either side (clock skew between kiosk and server, plus the time a customer takes
    /// to scan and open the link).
    pub fn freshness(&self, now_step: i64, window: i64) -> Freshness {
        let d = now_step.saturating_sub(self.step);
        if d > window {
            Freshness::Stale
        } else if d < -window {
            Freshness::Ahead
        } else {
            Freshness::Fresh
        }
    }
}

/// See [`KioskToken::freshness`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Inside the window.
    Fresh,
    /// Older than the window: a photo or a shared link.
    Stale,
    /// Newer than the window: the kiosk's clock runs ahead.
    Ahead,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECRET: &[u8] = b"a kiosk secret of thirty-two byt";

    #[test]
    fn signed_tokens_parse_and_verify() {
        let t = sign(SECRET, 7, 29_485_731);
        assert_eq!(t.len(), "7.29485731.".len() + MAC_HEX);
        let p = KioskToken::parse(&t).unwrap();
        assert_eq!((p.kiosk_id, p.step), (7, 29_485_731));
        assert!(p.authentic(SECRET));
        assert!(!p.authentic(b"another kiosk's secret"));
        // The MAC binds kiosk and step: moving either breaks it.
        let mac = t.rsplit('.').next().unwrap();
        for moved in [format!("8.29485731.{mac}"), format!("7.29485732.{mac}")] {
            assert!(
                !KioskToken::parse(&moved).unwrap().authentic(SECRET),
                "{moved}"
            );
        }
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for junk in [
            "",
            "7",
            "7.1",
            "7.1.abc",
            "7.1.0123456789abcdeg",
            "7.1.0123456789abcdef.x",
            "-7.1.0123456789abcdef",
            "+7.1.0123456789abcdef",
            "7. 1.0123456789abcdef",
            "9999999999999999.1.0123456789abcdef",
            "7.1.0123456789abcdef0",
        ] {
            assert_eq!(
                KioskToken::parse(junk),
                Err(TokenError::Malformed),
                "{junk:?}"
            );
        }
    }

    #[test]
    fn the_window_tolerates_skew_both_ways() {
        let t = KioskToken::parse(&sign(SECRET, 1, 1000)).unwrap();
        assert_eq!(t.freshness(1000, 2), Freshness::Fresh);
        assert_eq!(t.freshness(1002, 2), Freshness::Fresh);
        assert_eq!(t.freshness(998, 2), Freshness::Fresh);
        assert_eq!(t.freshness(1003, 2), Freshness::Stale);
        assert_eq!(t.freshness(997, 2), Freshness::Ahead);
        assert_eq!(t.freshness(i64::MIN, 2), Freshness::Ahead);
        assert_eq!(t.freshness(i64::MAX, 2), Freshness::Stale);
    }

    #[test]
    fn steps_follow_the_clock() {
        assert_eq!(step_at(0, 60), 0);
        assert_eq!(step_at(59_999, 60), 0);
        assert_eq!(step_at(60_000, 60), 1);
        assert_eq!(step_at(-1, 60), -1);
        assert_eq!(step_at(1_000, 0), 1, "a zero step length is treated as 1 s");
    }

    proptest! {
        #[test]
        fn parsing_never_panics_and_round_trips(s in ".{0,60}", id in 0i64..1_000_000, step in 0i64..100_000_000) {
            let _ = KioskToken::parse(&s);
            let t = sign(SECRET, id, step);
            let p = KioskToken::parse(&t).unwrap();
            prop_assert!(p.authentic(SECRET));
            prop_assert_eq!((p.kiosk_id, p.step), (id, step));
        }
    }
}
