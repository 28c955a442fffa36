//! What arrives at `POST /api/conversions`: the `Tapkit-Signature` header (HMAC-SHA256 of
//! `"<t>.<body>"` with the webhook secret, within a tolerance window) and the event body,
//! validated field by field into an [`Event`]. Pure: no store, no clock of its own.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use tapkit_core::date::parse_rfc3339_ms;

use crate::api::ApiError;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "tapkit-signature";

/// Event kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Signed up, asked for a quote (see `action`).
    Lead,
    /// A booking was paid.
    BookingPaid,
    /// A booking was serviced.
    BookingServiced,
    /// A booking was refunded.
    BookingRefunded,
    /// A purchase.
    Purchase,
}

impl Kind {
    /// The kind with this wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "lead" => Self::Lead,
            "booking_paid" => Self::BookingPaid,
            "booking_serviced" => Self::BookingServiced,
            "booking_refunded" => Self::BookingRefunded,
            "purchase" => Self::Purchase,
            _ => return None,
        })
    }

    /// The kinds a booking took, as its event rows store them: a word no version of
    /// Tapkit writes is an error, never skipped (it would change what is decided).
    pub fn parse_stored(kinds: &[String]) -> Result<Vec<Self>, crate::store::vocab::UnknownWord> {
        kinds
            .iter()
            .map(|k| {
                Self::parse(k).ok_or_else(|| crate::store::vocab::UnknownWord {
                    what: "conversion_events.kind",
                    word: k.clone(),
                })
            })
            .collect()
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lead => "lead",
            Self::BookingPaid => "booking_paid",
            Self::BookingServiced => "booking_serviced",
            Self::BookingRefunded => "booking_refunded",
            Self::Purchase => "purchase",
        }
    }
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No header.
    #[error(
        "the Tapkit-Signature header is missing; sign the body: t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">"
    )]
    Missing,
    /// Not `t=…,v1=…`.
    #[error(
        "the Tapkit-Signature header is malformed ({0}); expected t=<unix seconds>,v1=<64 hex digits>"
    )]
    Malformed(&'static str),
    /// Too old or in the future.
    #[error(
        "the signature timestamp is {0} s away from the server's clock (at most {1} s allowed): a replayed delivery, or a clock to fix"
    )]
    Stale(i64, i64),
    /// No v1 matched.
    #[error(
        "the signature does not match the body: check the webhook secret and that the exact raw body is signed"
    )]
    Mismatch,
}

/// Checks a `Tapkit-Signature` header value against the raw body.
pub fn verify_signature(
    header: Option<&str>,
    body: &[u8],
    secret: &[u8],
    now_secs: i64,
    tolerance_secs: i64,
) -> Result<i64, SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        let (k, v) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed("a part without ="))?;
        match k {
            "t" => {
                if v.is_empty() || v.len() > 12 || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(SignatureError::Malformed("t is not unix seconds"));
                }
                t = Some(
                    v.parse::<i64>()
                        .map_err(|_| SignatureError::Malformed("t is not unix seconds"))?,
                );
            }
            "v1" => {
                let mac = tapkit_core::hex::decode(v)
                    .ok()
                    .filter(|m| m.len() == 32)
                    .ok_or(SignatureError::Malformed("v1 is not 64 hex digits"))?;
                sigs.push(mac);
            }
            _ => {} // other schemes (v0 …) are ignored, as Stripe does
        }
    }
    let t = t.ok_or(SignatureError::Malformed("no t="))?;
    if sigs.is_empty() {
        return Err(SignatureError::Malformed("no v1="));
    }
    let skew = now_secs - t;
    if skew.abs() > tolerance_secs {
        return Err(SignatureError::Stale(skew, tolerance_secs));
    }
    let mac = body_mac(secret, t, body);
    // Several v1 values let the sender roll its secret; each is checked in constant time.
    if sigs.iter().any(|s| mac.clone().verify_slice(s).is_ok()) {
        Ok(t)
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// HMAC-SHA256 of `"<t>.<body>"`, the signed content.
fn body_mac(secret: &[u8], t: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The signature header value for a body (for senders, tests and the demo).
pub fn sign(body: &[u8], secret: &[u8], t: i64) -> String {
    let mac = body_mac(secret, t, body);
    format!(
        "t={t},v1={}",
        tapkit_core::hex::encode_lower(&mac.finalize().into_bytes())
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEvent {
    event_id: String,
    kind: String,
    booking_id: String,
    occurred_at: String,
    #[serde(default, deserialize_with = "tapkit_core::json_int::whole_opt")]
    amount_minor: Option<i64>,
    currency: Option<String>,
    customer_id: Option<String>,
    customer_email_sha256: Option<String>,
    customer_phone_sha256: Option<String>,
    customer_email_domain: Option<String>,
    action: Option<String>,
    attribution: Option<String>,
}

/// A validated conversion event.
#[derive(Debug, Clone)]
pub struct Event {
    /// The sender's id (de-duplication key).
    pub event_id: String,
    /// Kind.
    pub kind: Kind,
    /// Lead action (`account_created`, `rfq` …).
    pub action: Option<String>,
    /// The booking (or lead, purchase) id in the sender's system.
    pub booking_id: String,
    /// When it happened, Unix ms.
    pub occurred_at: i64,
    /// Amount, minor units.
    pub amount_minor: Option<i64>,
    /// Currency.
    pub currency: Option<String>,
    /// The customer's opaque id.
    pub customer_id: Option<String>,
    /// SHA-256 hex of the customer's normalised email.
    pub email_sha256: Option<String>,
    /// SHA-256 hex of the customer's normalised phone.
    pub phone_sha256: Option<String>,
    /// The customer's email domain, lower case.
    pub email_domain: Option<String>,
    /// The attribution token from the readable cookie.
    pub attribution: Option<String>,
}

/// An id or name: checked as sent (1 to 200 characters, as the OpenAPI document's
/// maxLength counts them, no control characters, not blank), then trimmed.
pub(crate) fn id_field(field: &'static str, v: String) -> Result<String, ApiError> {
    if v.chars().count() > 200 || v.chars().any(char::is_control) || v.trim().is_empty() {
        return Err(ApiError::field(
            field,
            format!("{field} must be 1 to 200 characters without control characters"),
        ));
    }
    Ok(v.trim().to_owned())
}

/// An email domain as sent: an optional leading `@`, then labels of ASCII letters,
/// digits and `-` joined by dots (at least two), at most 253 characters in all.
fn email_domain(v: &str) -> Option<String> {
    let d = v.strip_prefix('@').unwrap_or(v);
    let labels_ok = d.split('.').count() >= 2
        && d.split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    (v.len() <= 253 && labels_ok).then(|| d.to_ascii_lowercase())
}

fn sha_field(field: &'static str, v: Option<String>) -> Result<Option<String>, ApiError> {
    match v {
        None => Ok(None),
        Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(Some(h.to_ascii_lowercase()))
        }
        Some(_) => Err(ApiError::field(
            field,
            format!("{field} must be the SHA-256 of the normalised value as 64 hex digits"),
        )),
    }
}

/// An event's `occurred_at`: RFC 3339, at most 5 minutes in the server's future.
pub(crate) fn occurred_at_field(v: &str, now: i64) -> Result<i64, ApiError> {
    let at = parse_rfc3339_ms(v).ok_or_else(|| {
        ApiError::field(
            "occurred_at",
            format!("occurred_at {v:?} is not an RFC 3339 time like 2026-11-21T10:54:03Z"),
        )
    })?;
    if at > now + 300_000 {
        return Err(ApiError::field(
            "occurred_at",
            "occurred_at is more than 5 minutes in the future; check the sender's clock",
        ));
    }
    Ok(at)
}

/// The attribution token as sent: at most 300 characters, then trimmed; blank is none.
pub(crate) fn attribution_field(v: Option<String>) -> Result<Option<String>, ApiError> {
    if v.as_ref().is_some_and(|a| a.chars().count() > 300) {
        return Err(ApiError::field(
            "attribution",
            "attribution is longer than any token this server issues; send the tapkit_ref_js cookie's value",
        ));
    }
    Ok(v.map(|a| a.trim().to_owned()).filter(|a| !a.is_empty()))
}

/// Parses and validates a webhook body (`currency` and `max_amount_minor` are the
/// program's).
pub fn parse_event(
    body: &[u8],
    currency: &str,
    max_amount_minor: i64,
    now: i64,
) -> Result<Event, ApiError> {
    let w: WireEvent = crate::api::json_object(body).map_err(|e| ApiError::Invalid {
        status: axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        field: None,
        message: format!("the body is not a valid conversion event: {e}"),
    })?;
    let kind = Kind::parse(&w.kind).ok_or_else(|| {
        ApiError::field(
            "kind",
            format!(
                "kind {:?} is not lead, booking_paid, booking_serviced, booking_refunded, purchase or membership_started",
                w.kind
            ),
        )
    })?;
    let occurred_at = occurred_at_field(&w.occurred_at, now)?;
    if let Some(a) = w.amount_minor
        && a < 0
    {
        return Err(ApiError::field(
            "amount_minor",
            "amount_minor must not be negative (a refund is kind booking_refunded)",
        ));
    }
    if let Some(a) = w.amount_minor
        && a > max_amount_minor
    {
        return Err(ApiError::field(
            "amount_minor",
            format!(
                "amount_minor {a} is above this program's maximum of {max_amount_minor} minor units \
                 (12500 = 125.00); if a booking really is that large, the program's admin can \
                 raise program.commission.max_amount_minor in Tapkit's config"
            ),
        ));
    }
    if matches!(kind, Kind::BookingPaid | Kind::Purchase) && w.amount_minor.is_none() {
        return Err(ApiError::field(
            "amount_minor",
            format!(
                "{} needs amount_minor (integer minor units, e.g. 12500 for 125.00) and currency",
                kind.as_str()
            ),
        ));
    }
    match (&w.amount_minor, &w.currency) {
        (Some(_), None) => {
            return Err(ApiError::field(
                "currency",
                format!("currency is required with amount_minor (this program uses {currency})"),
            ));
        }
        (_, Some(c)) if c != currency => {
            return Err(ApiError::field(
                "currency",
                format!("currency {c:?} is not this program's currency {currency}"),
            ));
        }
        _ => {}
    }
    if w.action.is_some() && kind != Kind::Lead {
        return Err(ApiError::field(
            "action",
            "action only applies to kind lead",
        ));
    }
    let action = w.action.map(|a| id_field("action", a)).transpose()?;
    let email_domain = match w.customer_email_domain {
        None => None,
        Some(d) => Some(email_domain(&d).ok_or_else(|| {
            ApiError::field(
                "customer_email_domain",
                "customer_email_domain must be a domain like example.com",
            )
        })?),
    };
    let attribution = attribution_field(w.attribution)?;
    Ok(Event {
        event_id: id_field("event_id", w.event_id)?,
        kind,
        action,
        booking_id: id_field("booking_id", w.booking_id)?,
        occurred_at,
        amount_minor: w.amount_minor,
        currency: w.currency,
        customer_id: w
            .customer_id
            .map(|c| id_field("customer_id", c))
            .transpose()?,
        email_sha256: sha_field("customer_email_sha256", w.customer_email_sha256)?,
        phone_sha256: sha_field("customer_phone_sha256", w.customer_phone_sha256)?,
        email_domain,
        attribution,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SECRET: &[u8] = b"whsec_test_0123456789";

    #[test]
    fn stored_kinds_read_back_or_fail_naming_the_word() {
        let ok = Kind::parse_stored(&["booking_paid".into(), "lead".into()]).unwrap();
        assert_eq!(ok, [Kind::BookingPaid, Kind::Lead]);
        let e = Kind::parse_stored(&["booking_paid".into(), "paid".into()]).unwrap_err();
        assert_eq!(e.word, "paid");
        assert!(e.to_string().contains("conversion_events.kind"), "{e}");
    }

    #[test]
    fn signatures_verify_and_refuse_precisely() {
        let body = br#"{"event_id":"e1"}"#;
        let h = sign(body, SECRET, 1_800_000_000);
        assert_eq!(
            verify_signature(Some(&h), body, SECRET, 1_800_000_010, 300),
            Ok(1_800_000_000)
        );
        // Tampered body, other secret, stale, future, malformed.
        assert_eq!(
            verify_signature(
                Some(&h),
                br#"{"event_id":"e2"}"#,
                SECRET,
                1_800_000_000,
                300
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(Some(&h), body, b"another secret!!", 1_800_000_000, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(Some(&h), body, SECRET, 1_800_000_301, 300),
            Err(SignatureError::Stale(301, 300))
        );
        assert_eq!(
            verify_signature(Some(&h), body, SECRET, 1_799_999_000, 300),
            Err(SignatureError::Stale(-1000, 300))
        );
        assert_eq!(
            verify_signature(None, body, SECRET, 0, 300),
            Err(SignatureError::Missing)
        );
        for bad in [
            "",
            "t=1",
            "v1=00",
            "t=x,v1=00",
            "t=1,v1=zz",
            "garbage",
            "t=1,v1=abcd",
        ] {
            assert!(
                matches!(
                    verify_signature(Some(bad), body, SECRET, 1, 300),
                    Err(SignatureError::Malformed(_))
                ),
                "{bad:?}"
            );
        }
        // A rolled secret: either signature passes; an unknown scheme is ignored.
        let old = sign(body, b"old secret old secret", 1_800_000_000);
        let both = format!("{},v0=zz,{}", h, old.split(',').nth(1).unwrap());
        assert!(
            verify_signature(
                Some(&both),
                body,
                b"old secret old secret",
                1_800_000_000,
                300
            )
            .is_ok()
        );
    }

    /// The default program's maximum amount.
    const MAX: i64 = crate::money::rules::DEFAULT_MAX_AMOUNT_MINOR;

    #[test]
    fn an_amount_above_the_programs_maximum_is_refused_naming_the_setting() {
        let now = 1_800_000_000_000;
        let body = |amount: i64| {
            format!(
                r#"{{"event_id":"e1","kind":"booking_paid","booking_id":"b1","occurred_at":"2027-01-15T08:00:00Z","amount_minor":{amount},"currency":"USD"}}"#
            )
        };
        assert_eq!(
            parse_event(body(MAX).as_bytes(), "USD", MAX, now)
                .unwrap()
                .amount_minor,
            Some(MAX)
        );
        for too_big in [MAX + 1, i64::MAX] {
            match parse_event(body(too_big).as_bytes(), "USD", MAX, now) {
                Err(ApiError::Invalid {
                    status,
                    field,
                    message,
                }) => {
                    assert_eq!(status, axum::http::StatusCode::UNPROCESSABLE_ENTITY);
                    assert_eq!(field, Some("amount_minor"));
                    assert!(message.contains(&too_big.to_string()), "{message}");
                    assert!(message.contains("max_amount_minor"), "{message}");
                }
                other => panic!("{too_big}: {other:?}"),
            }
        }
        // A program may set its own maximum.
        assert!(parse_event(body(501).as_bytes(), "USD", 500, now).is_err());
    }

    proptest::proptest! {
        /// Fuzz: any header and body (outside input) gives Ok or a precise error, never a
        /// panic.
        #[test]
        fn any_signature_header_is_answered(h in "\\PC{0,120}", body in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = verify_signature(Some(&h), &body, SECRET, 1_800_000_000, 300);
        }

        #[test]
        fn any_body_is_answered(body in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = parse_event(&body, "USD", MAX, 1_800_000_000_000);
        }

        #[test]
        fn any_json_event_is_answered(
            kind in "(lead|booking_paid|purchase|x)",
            id in "\\PC{0,210}",
            at in "\\PC{0,30}",
            amount in proptest::option::of(proptest::num::i64::ANY),
            currency in proptest::option::of("(USD|EUR|\\PC{0,5})"),
            domain in proptest::option::of("\\PC{0,20}"),
        ) {
            let body = serde_json::json!({
                "event_id": id, "kind": kind, "booking_id": "b", "occurred_at": at,
                "amount_minor": amount, "currency": currency, "customer_email_domain": domain,
            });
            let _ = parse_event(body.to_string().as_bytes(), "USD", MAX, 1_800_000_000_000);
        }
    }

    #[test]
    fn bodies_are_validated_field_by_field() {
        let now = 1_800_000_000_000;
        let ok = br#"{"event_id":"e1","kind":"booking_paid","booking_id":"b1","occurred_at":"2027-01-15T08:00:00Z","amount_minor":12500,"currency":"USD","customer_id":"c1","attribution":"v1.1.2.ab"}"#;
        let e = parse_event(ok, "USD", MAX, now).unwrap();
        assert_eq!(
            (e.kind, e.amount_minor, e.attribution.as_deref()),
            (Kind::BookingPaid, Some(12500), Some("v1.1.2.ab"))
        );
        let field_of = |body: &str| match parse_event(body.as_bytes(), "USD", MAX, now) {
            Err(ApiError::Invalid { field, message, .. }) => (field, message),
            other => panic!("{body}: {other:?}"),
        };
        let base = |extra: &str| {
            format!(
                r#"{{"event_id":"e1","booking_id":"b1","occurred_at":"2027-01-15T08:00:00Z"{extra}}}"#
            )
        };
        assert_eq!(field_of(&base(r#","kind":"sale""#)).0, Some("kind"));
        assert_eq!(
            field_of(&base(r#","kind":"booking_paid""#)).0,
            Some("amount_minor")
        );
        assert_eq!(
            field_of(&base(r#","kind":"purchase","amount_minor":5"#)).0,
            Some("currency")
        );
        assert_eq!(
            field_of(&base(
                r#","kind":"purchase","amount_minor":5,"currency":"EUR""#
            ))
            .0,
            Some("currency")
        );
        assert_eq!(
            field_of(&base(
                r#","kind":"purchase","amount_minor":-5,"currency":"USD""#
            ))
            .0,
            Some("amount_minor")
        );
        assert_eq!(
            field_of(&base(
                r#","kind":"booking_paid","action":"x","amount_minor":5,"currency":"USD""#
            ))
            .0,
            Some("action")
        );
        assert_eq!(
            field_of(&base(r#","kind":"lead","customer_email_sha256":"abc""#)).0,
            Some("customer_email_sha256")
        );
        assert_eq!(
            field_of(&base(
                r#","kind":"lead","customer_email_domain":"not a domain""#
            ))
            .0,
            Some("customer_email_domain")
        );
        let (f, m) = field_of(&base(r#","kind":"lead","colour":"red""#));
        assert!(f.is_none() && m.contains("unknown field `colour`"), "{m}");
        let (_, m) = field_of(r#"{"kind":"lead"}"#);
        assert!(m.contains("missing field"), "{m}");
        let (f, _) = field_of(
            r#"{"event_id":"","kind":"lead","booking_id":"b","occurred_at":"2027-01-15T08:00:00Z"}"#,
        );
        assert_eq!(f, Some("event_id"));
        let (f, _) = field_of(
            r#"{"event_id":"e","kind":"lead","booking_id":"b","occurred_at":"15/01/2027"}"#,
        );
        assert_eq!(f, Some("occurred_at"));
        let (f, _) = field_of(
            r#"{"event_id":"e","kind":"lead","booking_id":"b","occurred_at":"2099-01-15T08:00:00Z"}"#,
        );
        assert_eq!(f, Some("occurred_at"));
        assert!(parse_event(b"\xff\xfe", "USD", MAX, now).is_err());
    }
}
