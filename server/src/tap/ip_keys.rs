//! The keyed hash of client IPs: the raw IP is never stored or logged.

use hmac::Mac;
use tapkit_core::hex::{decode as unhex, encode_lower as hex};

use crate::keys::{ANY_KEY_LENGTH, HmacSha256};
use crate::store::{Store, StoreError};

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
        store: &Store,
        now_ms: i64,
        ip: std::net::IpAddr,
    ) -> Result<String, StoreError> {
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

    async fn fetch(&self, store: &Store, day: i64) -> Result<HmacSha256, StoreError> {
        let mut fresh = [0u8; 32];
        getrandom::fill(&mut fresh).map_err(|e| {
            StoreError::Db(sqlx::Error::Protocol(format!(
                "no OS randomness for the IP key: {e}"
            )))
        })?;
        let hexed = store.ip_key(day, &hex(&fresh)).await?;
        // Never hash with a key other than the stored one: a damaged row fails like any
        // database error, rather than silently hashing with a short key.
        let bytes = unhex(&hexed).map_err(|e| {
            StoreError::Db(sqlx::Error::Protocol(format!(
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
