//! Secrets and what is derived from them: the keyed hash of client IPs (the raw IP is
//! never stored or logged), signed attribution tokens for the cookie, and API tokens
//! (only their SHA-256 is stored).

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The server's keys, derived from one secret so each use has its own key.
#[derive(Clone)]
pub struct Keys {
    cookie: HmacSha256,
    kiosk: HmacSha256,
    web: HmacSha256,
}

/// The rotating key of the IP hash: a random key per UTC day, shared by the replicas
/// through the database (`ip_keys`) and deleted after two days, so old hashes cannot be
/// reversed by trying every IPv4 address, not even by someone holding the server secret.
#[derive(Default)]
pub struct IpKeys {
    today: std::sync::RwLock<Option<(i64, HmacSha256)>>,
    /// Held while the day's key is fetched, so that the taps arriving together at the
    /// start of a day (or of the process) wait for one fetch instead of each writing to
    /// `ip_keys` (64 at once queued on SQLite's write lock for seconds).
    loading: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for IpKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IpKeys(..)") // never print key material
    }
}

impl IpKeys {
    /// Keyed hash of a client IP at `now_ms`: 128 bits of HMAC-SHA256 under the day's
    /// key, hex. The key is fetched (or created) once per day per process.
    pub async fn hash(
        &self,
        store: &crate::store::Store,
        now_ms: i64,
        ip: std::net::IpAddr,
    ) -> Result<String, crate::store::StoreError> {
        let day = now_ms.div_euclid(86_400_000);
        let key = match self.cached(day) {
            Some(k) => k,
            None => {
                let _one_fetch = self.loading.lock().await;
                match self.cached(day) {
                    Some(k) => k,
                    None => self.fetch(store, day).await?,
                }
            }
        };
        Ok(hash_with(key, ip))
    }

    fn cached(&self, day: i64) -> Option<HmacSha256> {
        self.today
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .filter(|(d, _)| *d == day)
            .map(|(_, k)| k.clone())
    }

    async fn fetch(
        &self,
        store: &crate::store::Store,
        day: i64,
    ) -> Result<HmacSha256, crate::store::StoreError> {
        let mut fresh = [0u8; 32];
        getrandom::fill(&mut fresh).map_err(|e| {
            crate::store::StoreError::Db(sqlx::Error::Protocol(format!(
                "no OS randomness for the IP key: {e}"
            )))
        })?;
        let hexed = store.ip_key(day, &hex(&fresh)).await?;
        // Never hash with a key other than the stored one: a damaged row fails like any
        // database error, rather than silently hashing with a short key.
        let bytes = unhex(&hexed).map_err(|e| {
            crate::store::StoreError::Db(sqlx::Error::Protocol(format!(
                "the IP key of day {day} in ip_keys is damaged: {e}"
            )))
        })?;
        let k = HmacSha256::new_from_slice(&bytes).expect(ANY_KEY_LENGTH);
        // A tap stamped just before midnight may fetch after one stamped just after:
        // the cache keeps the newer day, or every later tap would fetch again.
        let mut today = self
            .today
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if today.as_ref().is_none_or(|(d, _)| *d < day) {
            *today = Some((day, k.clone()));
        }
        Ok(k)
    }
}

/// The address as text (`203.0.113.7`, `2001:db8::1`), the hash's input, written to the
/// stack: this runs on every tap.
fn hash_with(mut m: HmacSha256, ip: std::net::IpAddr) -> String {
    use std::io::Write as _;
    let mut buf = [0u8; 64]; // the longest IPv6 text is 45 bytes
    let mut w = &mut buf[..];
    let _ = write!(w, "{ip}");
    let len = 64 - w.len();
    m.update(&buf[..len]);
    hex(&m.finalize().into_bytes()[..16])
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)") // never print key material
    }
}

use tapkit_core::hex::{decode as unhex, encode_lower as hex};

const ANY_KEY_LENGTH: &str = "HMAC-SHA256 takes keys of any length";

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
    fn ip_hashes_are_keyed_and_stable() {
        let k = |key: &[u8]| HmacSha256::new_from_slice(key).unwrap();
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let a = k(b"0123456789abcdef0123456789abcdef");
        assert_eq!(
            hash_with(a.clone(), ip("203.0.113.9")),
            hash_with(a.clone(), ip("203.0.113.9"))
        );
        assert_ne!(
            hash_with(a.clone(), ip("203.0.113.9")),
            hash_with(a.clone(), ip("203.0.113.10"))
        );
        assert_ne!(
            hash_with(a.clone(), ip("203.0.113.9")),
            hash_with(k(b"x"), ip("203.0.113.9"))
        );
        // The input is the address's usual text (what earlier versions hashed, so an
        // upgrade keeps the day's visitors), the longest IPv6 form included.
        for text in [
            "203.0.113.9",
            "2001:db8::1",
            "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
            "1111:2222:3333:4444:5555:6666:7777:8888",
        ] {
            let mut m = a.clone();
            m.update(ip(text).to_string().as_bytes());
            assert_eq!(
                hash_with(a.clone(), ip(text)),
                hex(&m.finalize().into_bytes()[..16]),
                "{text}"
            );
        }
        assert_eq!(hash_with(a, ip("203.0.113.9")).len(), 32);
        assert!(!format!("{:?}", IpKeys::default()).contains("0123"));
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
