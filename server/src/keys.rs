//! Secrets and what is derived from them: signed attribution tokens for the cookie,
//! kiosk and web keys, and API tokens (only their SHA-256 is stored). The keyed hash of
//! client IPs lives with the tap, in [`crate::tap::ip_keys`].

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// The server's keys, derived from one secret so each use has its own key.
#[derive(Clone)]
pub struct Keys {
    cookie: HmacSha256,
    kiosk: HmacSha256,
    web: HmacSha256,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)") // never print key material
    }
}

use tapkit_core::hex::{decode as unhex, encode_lower as hex};

pub(crate) const ANY_KEY_LENGTH: &str = "HMAC-SHA256 takes keys of any length";

fn derive(secret: &[u8], purpose: &str) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(secret).expect(ANY_KEY_LENGTH);
    m.update(purpose.as_bytes());
    let key = m.finalize().into_bytes();
    HmacSha256::new_from_slice(&key).expect(ANY_KEY_LENGTH)
}

/// A parsed attribution token: which click, issued when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribution {
    /// The click id.
    pub click_id: i64,
    /// Issued at, Unix ms.
    pub issued_ms: i64,
}

impl Keys {
    /// Keys from the server secret (at least 32 bytes).
    pub fn new(secret: &[u8]) -> Self {
        Self {
            cookie: derive(secret, "tapkit attribution cookie v1"),
            kiosk: derive(secret, "tapkit kiosk secret v1"),
            web: derive(secret, "tapkit web console v1"),
        }
    }

    /// A kiosk's secret: derived from the server secret, its id and its enrolment
    /// generation, so it is never stored and a new enrolment makes the old one useless.
    pub fn kiosk_secret(&self, kiosk_id: i64, generation: i64) -> [u8; 32] {
        let mut m = self.kiosk.clone();
        m.update(format!("{kiosk_id}.{generation}").as_bytes());
        m.finalize().into_bytes().into()
    }

    /// A MAC (hex) of `value` for one `purpose` of the console and portal (session
    /// cookies, CSRF tokens).
    pub fn web_mac(&self, purpose: &str, value: &str) -> String {
        let mut m = self.web.clone();
        m.update(purpose.as_bytes());
        m.update(b"\0");
        m.update(value.as_bytes());
        hex(&m.finalize().into_bytes())
    }

    /// Checks a [`Self::web_mac`] in constant time.
    pub fn web_verify(&self, purpose: &str, value: &str, mac_hex: &str) -> bool {
        let Ok(bytes) = unhex(mac_hex) else {
            return false;
        };
        let mut m = self.web.clone();
        m.update(purpose.as_bytes());
        m.update(b"\0");
        m.update(value.as_bytes());
        m.verify_slice(&bytes).is_ok()
    }

    fn cookie_mac(&self, click_id: i64, issued_ms: i64) -> HmacSha256 {
        let mut m = self.cookie.clone();
        m.update(format!("{click_id}.{issued_ms}").as_bytes());
        m
    }

    /// The cookie value naming a click: `v1.<click>.<issued ms>.<HMAC hex>`.
    pub fn sign_attribution(&self, click_id: i64, issued_ms: i64) -> String {
        let mac = self.cookie_mac(click_id, issued_ms).finalize().into_bytes();
        format!("v1.{click_id}.{issued_ms}.{}", hex(&mac))
    }

    /// Checks a cookie value (constant-time MAC comparison); anything forged, tampered
    /// with or malformed is `None`.
    pub fn verify_attribution(&self, token: &str) -> Option<Attribution> {
        let mut parts = token.split('.');
        let (Some("v1"), Some(click), Some(issued), Some(mac), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let click_id: i64 = click.parse().ok()?;
        let issued_ms: i64 = issued.parse().ok()?;
        if mac.len() != 64 {
            return None;
        }
        if !mac.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let bytes = unhex(mac).ok()?;
        self.cookie_mac(click_id, issued_ms)
            .verify_slice(&bytes)
            .ok()?;
        Some(Attribution {
            click_id,
            issued_ms,
        })
    }
}

/// Whether two secrets are equal, in time that depends only on their length.
pub fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A new API token: `tk_` + 32 random bytes in hex.
pub fn new_api_token() -> String {
    let mut b = [0u8; 32];
    // Without OS randomness no safe token can be made; fail loudly rather than weakly.
    getrandom::fill(&mut b).unwrap_or_else(|e| panic!("no OS randomness for an API token: {e}"));
    format!("tk_{}", hex(&b))
}

/// A random value for sessions, sign-in links and CSRF pre-sessions: 32 bytes, hex.
pub fn random_hex() -> String {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).unwrap_or_else(|e| panic!("no OS randomness for a session: {e}"));
    hex(&b)
}

/// What is stored for an API token: its SHA-256, hex.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// A new random server secret (hex), for a fresh data directory.
pub fn new_secret() -> String {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b)
        .unwrap_or_else(|e| panic!("no OS randomness for the server secret: {e}"));
    hex(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribution_tokens_verify_and_resist_tampering() {
        let k = Keys::new(b"0123456789abcdef0123456789abcdef");
        let t = k.sign_attribution(42, 1_700_000_000_000);
        assert_eq!(
            k.verify_attribution(&t),
            Some(Attribution {
                click_id: 42,
                issued_ms: 1_700_000_000_000
            })
        );
        let forged = t.replacen("v1.42.", "v1.43.", 1);
        assert_eq!(k.verify_attribution(&forged), None);
        let other = Keys::new(b"another secret another secret 00");
        assert_eq!(other.verify_attribution(&t), None);
        for junk in [
            "",
            "v1",
            "v1.1.2",
            "v1.a.b.c",
            "v2.1.2.00",
            &format!("{t}.x"),
            &t[..t.len() - 1],
        ] {
            assert_eq!(k.verify_attribution(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn api_tokens_are_random_and_hashed() {
        let (a, b) = (new_api_token(), new_api_token());
        assert_ne!(a, b);
        assert!(a.starts_with("tk_") && a.len() == 67);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), token_hash(&b));
    }
}
