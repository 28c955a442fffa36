//! The kiosk's wire format: the JSON bodies `display-kiosk` and the server exchange on
//! `/api/kiosk/…`, as serde types both sides share. The rotating QR token the kiosk
//! shows is in [`crate::kiosk`]; the `Authorization: Bearer kiosk.<id>.<secret hex>`
//! header is not a body and stays with the server's extractor.
//!
//! | call | request | answer |
//! |---|---|---|
//! | `POST /api/kiosk/enroll` | [`EnrollRequest`] | [`EnrollResponse`] |
//! | `GET /api/kiosk/config` | — (`If-None-Match: "<version>"`) | [`DisplayConfig`] (`ETag: "<version>"`), or 304 |
//! | `POST /api/kiosk/heartbeat` | [`Heartbeat`] | [`HeartbeatResponse`] |
//! | `GET /api/kiosk/roster` | — | [`SignedRoster`] holding a [`Roster`] |
//!
//! **The field order is part of the format.** The server built these bodies with
//! `serde_json::json!`, whose maps sort their keys, so every struct here declares its
//! fields in alphabetical order: serialised, it gives the same bytes as before. For
//! [`DisplayConfig`] that is more than cosmetic: its `version` (also the ETag) is a digest
//! of the serialised config without the version, so reordering fields would change every
//! kiosk's version and make the whole fleet fetch its config again. The server's tests
//! compare these types byte for byte with the `json!` bodies they replaced.
//!
//! Tolerance is on the reading side, where the kiosk reads what a newer or older server
//! sends: unknown fields are ignored and fields a server may leave out have defaults.
//! The bodies the server reads ([`EnrollRequest`], [`Heartbeat`]) refuse unknown
//! fields, as the server always did.

use serde::{Deserialize, Serialize};

/// Seconds between heartbeats when the server's answer does not say.
pub const DEFAULT_HEARTBEAT_SECS: i64 = 45;

/// `POST /api/kiosk/enroll`: the one-time code the admin gave the kiosk's installer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The enrolment code as typed (`7KQ2M-9XD4P`; the server ignores case and hyphens).
    pub code: String,
}

/// The answer to [`EnrollRequest`]: who the kiosk is now, and its secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollResponse {
    /// The referral code of the partner whose counter this is.
    pub affiliate_code: String,
    /// The kiosk's id.
    pub kiosk_id: i64,
    /// The kiosk's secret, 64 lowercase hex digits: it signs the QR tokens and
    /// authenticates the kiosk. Never printed by `Debug`.
    pub secret: String,
    /// The server's clock when it answered, Unix ms (the kiosk does not need it).
    #[serde(default)]
    pub server_time_ms: Option<i64>,
}

impl std::fmt::Debug for EnrollResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollResponse")
            .field("affiliate_code", &self.affiliate_code)
            .field("kiosk_id", &self.kiosk_id)
            .field("server_time_ms", &self.server_time_ms)
            .finish_non_exhaustive() // never print the secret
    }
}

/// `GET /api/kiosk/config`: what the screen shows. Fields in alphabetical order (see the
/// module docs: the version is a digest of these bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisplayConfig {
    /// The partner's referral code (the QR's URL is built from it and [`Self::domain`]).
    pub affiliate_code: String,
    /// The brand name on the screen.
    pub brand_name: String,
    /// The colours.
    pub colors: Colors,
    /// The brand's booking domain.
    pub domain: String,
    /// Seconds between heartbeats.
    pub heartbeat_secs: i64,
    /// The kiosk this config is for.
    pub kiosk_id: i64,
    /// A PNG logo, base64; `null` or absent for none.
    #[serde(default)]
    pub logo_png: Option<String>,
    /// Seconds per QR token step.
    pub rotation_secs: i64,
    /// The line under the brand.
    pub tagline: String,
    /// `https://{domain}/r/{affiliate_code}`, for people reading the JSON (the kiosk
    /// builds the URL itself from the checked code, so an old server without it is fine).
    #[serde(default)]
    pub url: String,
    /// Digest of everything above, 16 hex digits; the config's ETag, and what heartbeats
    /// report. Left out of the JSON while empty, which is how the server serialises the
    /// config to take that digest.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
}

/// The display's colours, each `#rrggbb`. Alphabetical, like [`DisplayConfig`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Colors {
    /// The pointer toward the NFC pad.
    pub accent: String,
    /// The background.
    pub background: String,
    /// The text.
    pub foreground: String,
}

/// `POST /api/kiosk/heartbeat`: the kiosk's health, every `heartbeat_secs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// The kiosk's clock, Unix ms (the server records the skew).
    #[serde(deserialize_with = "crate::json_int::whole")]
    pub clock_ms: i64,
    /// The version of the config on screen; `null` before the first one arrives.
    #[serde(default)]
    pub config_version: Option<String>,
    /// The kiosk's last problem, if any.
    #[serde(default)]
    pub last_error: Option<String>,
    /// Seconds since the kiosk started.
    #[serde(deserialize_with = "crate::json_int::whole")]
    pub uptime_secs: i64,
    /// The kiosk software's version.
    pub version: String,
}

/// The answer to a [`Heartbeat`]: the server's clock and the current config version, so
/// a change made by the admin reaches the screen with the next heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatResponse {
    /// The version of the config the kiosk should show; empty when a server does not
    /// say (the kiosk then asks for the config, and gets a 304 if it has it).
    #[serde(default)]
    pub config_version: String,
    /// Seconds until the next heartbeat.
    #[serde(default = "default_heartbeat_secs")]
    pub heartbeat_secs: i64,
    /// The server's clock, Unix ms; absent, the kiosk takes its own clock for the server's.
    #[serde(default)]
    pub server_time_ms: Option<i64>,
}

fn default_heartbeat_secs() -> i64 {
    DEFAULT_HEARTBEAT_SECS
}

/// `GET /api/kiosk/roster`: the members a kiosk may check in while the server cannot be
/// reached. `roster` is the [`Roster`] as JSON text and `signature` its HMAC-SHA256 under
/// the kiosk's secret ([`sign_roster`]): the kiosk checks the bytes before it parses
/// them, and again whenever it loads the copy it keeps on disk, so a roster edited on the
/// kiosk's disk, or one meant for another kiosk, is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedRoster {
    /// The [`Roster`], serialised.
    pub roster: String,
    /// [`sign_roster`] of `roster`, 64 lowercase hex digits.
    pub signature: String,
}

/// The roster a kiosk checks members in from while offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roster {
    /// The kiosk it was made for.
    pub kiosk_id: i64,
    /// Its version: when the server made it, Unix ms (a newer roster has a larger one).
    pub version: i64,
    /// After this (Unix ms, the server's clock) offline check-ins are refused.
    pub expires_at_ms: i64,
    /// The live member cards.
    pub cards: Vec<RosterCard>,
}

/// One member card in a [`Roster`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterCard {
    /// The card's UID, 14 upper-case hex digits.
    pub uid: String,
    /// The member's page code (the card's URL is `/m/{code}`).
    pub code: String,
    /// The member's first name, when the brand gave one.
    #[serde(default)]
    pub first_name: Option<String>,
    /// The plan's name.
    pub plan: String,
    /// `active`, `past_due` (within grace: may check in) or `paused` …; only `active` and
    /// `past_due` cards are checked in offline.
    pub status: String,
    /// Visits left this period when the roster was made (`None`: unlimited).
    #[serde(default)]
    pub visits_left: Option<i64>,
    /// Of them, rolled over from last period.
    #[serde(default)]
    pub rolled_over_visits: i64,
    /// The plan's add-on discount, basis points.
    #[serde(default)]
    pub add_on_discount_bp: i64,
    /// `standard`, `high` or `instant`.
    pub priority: String,
    /// The highest mirror counter the server has accepted from the card (-1: none).
    pub last_counter: i64,
}

fn roster_mac(secret: &[u8]) -> hmac::Hmac<sha2::Sha256> {
    use hmac::Mac;
    let Ok(m) = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret) else {
        unreachable!("HMAC-SHA256 takes keys of any length")
    };
    m
}

/// The signature of a roster's JSON text under the kiosk's secret: HMAC-SHA256 over
/// `"tapkit kiosk roster v1."` followed by the text, as 64 lowercase hex digits.
pub fn sign_roster(secret: &[u8], roster: &str) -> String {
    use hmac::Mac;
    let mut m = roster_mac(secret);
    m.update(b"tapkit kiosk roster v1.");
    m.update(roster.as_bytes());
    crate::hex::encode_lower(&m.finalize().into_bytes())
}

/// Whether `signature` is [`sign_roster`] of `roster` (constant-time comparison).
pub fn roster_authentic(secret: &[u8], roster: &str, signature: &str) -> bool {
    use hmac::Mac;
    let Ok(given) = crate::hex::decode(signature) else {
        return false;
    };
    let mut m = roster_mac(secret);
    m.update(b"tapkit kiosk roster v1.");
    m.update(roster.as_bytes());
    m.verify_slice(&given).is_ok()
}

/// `POST /api/kiosk/check-in`: a member card's URL as read, mirror and all. A check-in
/// the kiosk granted offline, from its roster, carries when (`offline_at_ms`) and is
/// submitted once the server is back, with the same `Idempotency-Key` it was queued with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckInRequest {
    /// When the kiosk let the member in from its roster, Unix ms (the server's clock as
    /// the kiosk knows it); absent for a check-in asked before the member is let in.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::json_int::whole_opt"
    )]
    pub offline_at_ms: Option<i64>,
    /// The card's URL, `https://{domain}/m/{code}?m=<UID>x<counter>`.
    pub url: String,
}

/// The member as the check-in's answer shows them to staff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckInMember {
    /// The plan's add-on discount, basis points.
    #[serde(default)]
    pub add_on_discount_bp: i64,
    /// First name, when the brand gave one.
    #[serde(default)]
    pub first_name: Option<String>,
    /// The plan's name.
    pub plan: String,
    /// `standard`, `high` or `instant`.
    pub priority: String,
    /// Of the visits left, those rolled over from last period.
    #[serde(default)]
    pub rolled_over_visits: i64,
    /// Visits left this period (`None`: unlimited).
    #[serde(default)]
    pub visits_left: Option<i64>,
}

/// The answer to a [`CheckInRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckInAnswer {
    /// Whether a visit was used.
    pub accepted: bool,
    /// The member, when the card is one of a member's.
    #[serde(default)]
    pub member: Option<CheckInMember>,
    /// For an offline check-in the server would have refused: why (it is kept as given,
    /// and shown to the admin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overdraft: Option<String>,
    /// Why not: `no_visits_left`, `paused`, `past_due`, `lapsed`, `cancelled`,
    /// `unknown_card`, `revoked_card`, `counter_not_rising` or `kiosk_not_allowed`.
    #[serde(default)]
    pub reason: Option<String>,
    /// Whether this answers a read the kiosk had sent before.
    #[serde(default)]
    pub replayed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::IntoDeserializer;
    use serde::de::value::{Error, MapDeserializer};

    /// Deserialises from `key = value` pairs of text (serde's own value deserialiser:
    /// core has no JSON parser; the byte-for-byte JSON tests are the server's).
    fn from_pairs<T: serde::de::DeserializeOwned>(pairs: &[(&str, &str)]) -> Result<T, Error> {
        T::deserialize(MapDeserializer::new(
            pairs.iter().map(|&(k, v)| (k, v.into_deserializer())),
        ))
    }

    #[test]
    fn a_heartbeat_answer_from_a_server_that_says_little_has_defaults() {
        let r: HeartbeatResponse = from_pairs(&[]).unwrap();
        assert_eq!(
            r,
            HeartbeatResponse {
                config_version: String::new(),
                heartbeat_secs: DEFAULT_HEARTBEAT_SECS,
                server_time_ms: None,
            }
        );
        let r: HeartbeatResponse =
            from_pairs(&[("config_version", "abc"), ("something_new", "x")]).unwrap();
        assert_eq!(r.config_version, "abc", "unknown fields are ignored");
    }

    #[test]
    fn what_the_server_reads_refuses_unknown_fields_and_names_missing_ones() {
        let e =
            from_pairs::<EnrollRequest>(&[("code", "7KQ2M-9XD4P"), ("kiosk", "1")]).unwrap_err();
        assert!(e.to_string().contains("unknown field `kiosk`"), "{e}");
        let e = from_pairs::<EnrollRequest>(&[]).unwrap_err();
        assert!(e.to_string().contains("missing field `code`"), "{e}");
        let e = from_pairs::<Heartbeat>(&[("version", "0.1.0")]).unwrap_err();
        assert!(e.to_string().contains("missing field"), "{e}");
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let r = EnrollResponse {
            affiliate_code: "SHINE-7K2M9Q".into(),
            kiosk_id: 3,
            secret: "ab".repeat(32),
            server_time_ms: Some(1),
        };
        let d = format!("{r:?}");
        assert!(d.contains("SHINE-7K2M9Q") && !d.contains("abab"), "{d}");
    }
}
