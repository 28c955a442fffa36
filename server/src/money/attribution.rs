//! Attribution: the first event of a booking re-validates the token the checkout read
//! from the `tapkit_ref_js` cookie (its signature, that its click exists and was
//! attributed, that the booking came inside the cookie's lifetime) and stamps the
//! booking once; later events use the stamp. [`stamp`] is pure: the token is verified
//! and its click loaded by [`crate::money::conversions`].

use crate::keys::{Attribution, Keys};
use crate::money::wire::Event;
use crate::store::money::{Booking, ClickRow};
use crate::store::vocab::{BookingAttribution, UnattributedReason};

/// The event's attribution token, verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token {
    /// The checkout sent none.
    Absent,
    /// Its signature does not verify.
    Forged,
    /// A token this server issued.
    Valid(Attribution),
}

impl Token {
    /// Verifies the event's token.
    pub fn of(ev: &Event, keys: &Keys) -> Self {
        match &ev.attribution {
            None => Self::Absent,
            Some(t) => keys.verify_attribution(t).map_or(Self::Forged, Self::Valid),
        }
    }
}

/// The booking's stamp, from its first event, the verified token and the token's click
/// (`None` when it does not exist).
pub fn stamp(
    ev: &Event,
    token: Token,
    click: Option<&ClickRow>,
    cookie_days: i64,
    now: i64,
) -> Booking {
    let mut b = Booking {
        id: 0,
        booking_id: ev.booking_id.clone(),
        attribution: BookingAttribution::None,
        reason: None,
        click_id: None,
        affiliate_id: None,
        channel: None,
        click_at: None,
        click_ip_hash: None,
        customer_id: ev.customer_id.clone(),
        stamped_at: now,
    };
    let reason = match (token, click) {
        (Token::Absent, _) => UnattributedReason::NoAttributionToken,
        (Token::Forged, _) => UnattributedReason::ForgedOrDamagedToken,
        (Token::Valid(_), None) => UnattributedReason::UnknownClick,
        (Token::Valid(_), Some(c)) if c.outcome != "attributed" || c.affiliate_id.is_none() => {
            UnattributedReason::ClickNotAttributed
        }
        (Token::Valid(_), Some(c)) if ev.occurred_at > c.at + cookie_days * 86_400_000 => {
            UnattributedReason::AttributionExpired
        }
        (Token::Valid(a), Some(c)) => {
            b.attribution = BookingAttribution::Attributed;
            b.click_id = Some(a.click_id);
            b.affiliate_id = c.affiliate_id;
            b.channel = Some(c.channel.clone());
            b.click_at = Some(c.at);
            b.click_ip_hash = Some(c.ip_hash.clone());
            return b;
        }
    };
    b.reason = Some(reason);
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::wire::Kind;

    const DAY: i64 = 86_400_000;

    fn event(at: i64) -> Event {
        Event {
            event_id: "e1".into(),
            kind: Kind::BookingPaid,
            action: None,
            booking_id: "b1".into(),
            occurred_at: at,
            amount_minor: Some(100),
            currency: Some("USD".into()),
            customer_id: Some("c1".into()),
            email_sha256: None,
            phone_sha256: None,
            email_domain: None,
            attribution: None,
        }
    }

    fn click(outcome: &str, affiliate: Option<i64>, at: i64) -> ClickRow {
        ClickRow {
            affiliate_id: affiliate,
            at,
            outcome: outcome.into(),
            channel: "nfc".into(),
            ip_hash: "ab".into(),
        }
    }

    #[test]
    fn a_booking_is_stamped_once_with_the_reason() {
        let valid = Token::Valid(Attribution {
            click_id: 7,
            issued_ms: 0,
        });
        let ok = click("attributed", Some(3), 10 * DAY);
        let cases: [(Token, Option<ClickRow>, i64, Option<UnattributedReason>); 6] = [
            (
                Token::Absent,
                None,
                11 * DAY,
                Some(UnattributedReason::NoAttributionToken),
            ),
            (
                Token::Forged,
                None,
                11 * DAY,
                Some(UnattributedReason::ForgedOrDamagedToken),
            ),
            (
                valid,
                None,
                11 * DAY,
                Some(UnattributedReason::UnknownClick),
            ),
            (
                valid,
                Some(click("preview", Some(3), 10 * DAY)),
                11 * DAY,
                Some(UnattributedReason::ClickNotAttributed),
            ),
            (
                valid,
                Some(ok.clone()),
                10 * DAY + 30 * DAY + 1,
                Some(UnattributedReason::AttributionExpired),
            ),
            (valid, Some(ok), 10 * DAY + 30 * DAY, None),
        ];
        for (token, click, at, want) in cases {
            let b = stamp(&event(at), token, click.as_ref(), 30, 99);
            assert_eq!(b.reason, want, "{token:?} {click:?} at {at}");
            assert_eq!(
                b.attribution == BookingAttribution::Attributed,
                want.is_none()
            );
            assert_eq!(b.customer_id.as_deref(), Some("c1"));
            assert_eq!(b.stamped_at, 99);
            if want.is_none() {
                assert_eq!(
                    (b.click_id, b.affiliate_id, b.channel.as_deref()),
                    (Some(7), Some(3), Some("nfc"))
                );
            }
        }
    }
}
