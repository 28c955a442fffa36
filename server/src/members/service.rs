//! Members, the service: checks what a caller sends, decides with [`super::billing`] and
//! [`super::visits`], and writes through the store.

use super::billing::{Period, first_charge};
use super::plans::{MembershipConfig, Visits};
use crate::store::members::{Invoice, Member, NewMember};
use crate::store::{Store, StoreError};

/// Why a membership request was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MemberError {
    /// A field is missing or malformed; `field` names it.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// No such member.
    #[error("member not found")]
    NotFound,
    /// No such invoice.
    #[error("invoice not found")]
    InvoiceNotFound,
    /// A commission rule could not price the payment.
    #[error(transparent)]
    Price(#[from] crate::money::rules::PriceError),
    /// The member's state does not allow it (the message says why and what to do).
    #[error("{0}")]
    Conflict(String),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The most whole periods one pause may last.
pub const MAX_PAUSE_PERIODS: i64 = 12;

async fn load(store: &Store, id: i64) -> Result<Member, MemberError> {
    store.member(id).await?.ok_or(MemberError::NotFound)
}

fn plan_of<'c>(cfg: &'c MembershipConfig, id: &str) -> Result<&'c super::plans::Plan, MemberError> {
    cfg.plan(id).ok_or_else(|| {
        let ids: Vec<&str> = cfg.plans.iter().map(|p| p.id.as_str()).collect();
        invalid(
            "plan",
            if ids.is_empty() {
                "this program sells no plans; add [[program.membership.plans]] to its config"
                    .to_owned()
            } else {
                format!(
                    "{id:?} is not a plan of this program; use one of {}",
                    ids.join(", ")
                )
            },
        )
    })
}

fn visits_column(v: Visits) -> Option<i64> {
    match v {
        Visits::Limited(n) => Some(i64::from(n)),
        Visits::Unlimited => None,
    }
}

/// Changes a member's plan on `now`. A dearer plan is an upgrade: it takes effect at
/// once, raises the period's visits to the new plan's and issues the prorated
/// difference ([`super::billing::upgrade_charge`]). Any other plan waits for the next
/// period (the renewal run applies it); choosing the current plan again drops a waiting
/// change. Returns the member and the upgrade's invoice.
pub async fn change_plan(
    store: &Store,
    cfg: &MembershipConfig,
    currency: &str,
    id: i64,
    plan: &str,
    now: i64,
) -> Result<(Member, Option<Invoice>), MemberError> {
    let new = plan_of(cfg, plan)?;
    let m = load(store, id).await?;
    if !matches!(m.status.as_str(), "active" | "past_due") {
        return Err(MemberError::Conflict(format!(
            "member {id} is {}: only an active or past-due member changes plan",
            m.status
        )));
    }
    let day = now.div_euclid(86_400_000);
    let current = Period::of_day(day).to_string();
    if m.period != current {
        return Err(MemberError::Conflict(format!(
            "member {id} is still in period {}; the renewal run has not reached {current} yet, try again in an hour",
            m.period
        )));
    }
    let old_price = cfg.plan(&m.plan).map_or(0, |p| p.price_minor);
    let (plan_now, pending, visits, upgrade) = if new.id == m.plan {
        (m.plan.as_str(), None, m.visits_included, None)
    } else if new.price_minor > old_price {
        let mut a = super::visits::Allowance::new(
            m.visits_included
                .and_then(|n| u32::try_from(n).ok())
                .map_or(Visits::Unlimited, Visits::Limited),
            0,
        );
        a.raise_to(new.visits);
        let charge = super::billing::upgrade_charge(old_price, new.price_minor, day);
        (
            new.id.as_str(),
            None,
            visits_column(a.included),
            Some((charge, currency)),
        )
    } else {
        (
            m.plan.as_str(),
            Some(new.id.as_str()),
            m.visits_included,
            None,
        )
    };
    store
        .change_member_plan(
            id, &m.plan, &m.period, plan_now, pending, visits, upgrade, now,
        )
        .await?
        .ok_or_else(|| {
            MemberError::Conflict(format!(
                "member {id} changed while its plan was being changed; read it again and retry"
            ))
        })
}

/// Pauses a member for `periods` whole periods from the next one: no charge, no visits;
/// it resumes by itself afterwards.
pub async fn pause(store: &Store, id: i64, periods: i64, now: i64) -> Result<Member, MemberError> {
    if !(1..=MAX_PAUSE_PERIODS).contains(&periods) {
        return Err(invalid(
            "periods",
            format!("a pause lasts 1 to {MAX_PAUSE_PERIODS} whole months"),
        ));
    }
    let m = load(store, id).await?;
    let Some(mut until) = Period::parse(&m.period).map(Period::next) else {
        return Err(MemberError::Conflict(format!(
            "member {id}'s period is unreadable"
        )));
    };
    for _ in 0..periods {
        until = until.next();
    }
    store
        .pause_member(id, &until.to_string(), now)
        .await?
        .ok_or_else(|| {
            MemberError::Conflict(if m.paused_until.is_some() {
                format!("member {id} is already paused or pausing until {}", m.paused_until.as_deref().unwrap_or(""))
            } else if m.cancel_at_period_end {
                format!("member {id} is cancelling at the end of {}; a cancelled membership is not paused", m.period)
            } else {
                format!("member {id} is {}: only an active or past-due member is paused", m.status)
            })
        })
}

/// Cancels a member at the end of the current period.
pub async fn cancel(store: &Store, id: i64, now: i64) -> Result<Member, MemberError> {
    let m = load(store, id).await?;
    store
        .cancel_member(id, now)
        .await?
        .ok_or_else(|| MemberError::Conflict(format!("member {id} is already {}", m.status)))
}

fn invalid(field: &'static str, reason: impl Into<String>) -> MemberError {
    MemberError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// A membership to create, as a caller sends it.
#[derive(Debug, Clone)]
pub struct Join<'a> {
    /// The brand's customer id.
    pub customer_id: &'a str,
    /// Where dunning emails go.
    pub email: &'a str,
    /// The plan's id.
    pub plan: &'a str,
    /// The partner who brought the customer, if any.
    pub affiliate_id: Option<i64>,
    /// The first name staff see at check-in, if given.
    pub first_name: Option<&'a str>,
}

/// Checks a customer id as sent, as the conversion webhook does (so a member's id
/// matches its bookings'): at most 200 characters, no control characters, not blank.
/// Returns it trimmed.
pub fn check_customer_id(v: &str) -> Result<&str, MemberError> {
    if v.chars().count() > 200 || v.chars().any(char::is_control) || v.trim().is_empty() {
        return Err(invalid(
            "customer_id",
            "the brand's customer id: 1 to 200 characters, no control characters, not blank",
        ));
    }
    Ok(v.trim())
}

/// Characters an email may not hold: controls, spaces (as the OpenAPI pattern lists
/// them, which is what a client's validator checks) and a second `@`.
fn not_in_email(c: char) -> bool {
    c.is_control()
        || c.is_whitespace()
        || matches!(
            c,
            '\u{a0}' | '\u{1680}' | '\u{2000}'
                ..='\u{200a}'
                    | '\u{2028}'
                    | '\u{2029}'
                    | '\u{202f}'
                    | '\u{205f}'
                    | '\u{3000}'
                    | '\u{feff}'
                    | '@'
        )
}

/// Checks an email as sent: 3 to 254 characters, one `@` with text on both sides, no
/// spaces or control characters. Returns it lower-cased.
pub fn check_email(v: &str) -> Result<String, MemberError> {
    let n = v.chars().count();
    let ok = (3..=254).contains(&n)
        && v.split_once('@').is_some_and(|(a, d)| {
            !a.is_empty() && !d.is_empty() && !a.chars().chain(d.chars()).any(not_in_email)
        });
    if !ok {
        return Err(invalid(
            "email",
            "an email address like name@example.com (3 to 254 characters, no spaces)",
        ));
    }
    Ok(v.to_lowercase())
}

/// The longest first name kept.
pub const MAX_FIRST_NAME: usize = 50;

/// Checks a first name as sent: at most 50 characters, no control characters; kept
/// trimmed, and blank is none.
pub fn check_first_name(v: Option<&str>) -> Result<Option<&str>, MemberError> {
    match v {
        Some(n) if n.chars().count() > MAX_FIRST_NAME || n.chars().any(char::is_control) => {
            Err(invalid(
                "first_name",
                "the first name staff see at check-in: at most 50 characters on one line",
            ))
        }
        Some(n) if !n.trim().is_empty() => Ok(Some(n.trim())),
        _ => Ok(None),
    }
}

/// Creates a member on `plan` from `now` (Unix ms): the full plan's visits for the first
/// period, and an open first invoice of the price prorated to the month's end.
pub async fn join(
    store: &Store,
    cfg: &MembershipConfig,
    program_id: i64,
    currency: &str,
    j: &Join<'_>,
    now: i64,
) -> Result<(Member, Invoice), MemberError> {
    join_by_event(store, cfg, program_id, currency, j, None, now).await
}

/// [`join`], for a signed `membership_started` event: `event_id` is kept, once per
/// program, so a redelivery cannot create a second member.
pub async fn join_by_event(
    store: &Store,
    cfg: &MembershipConfig,
    program_id: i64,
    currency: &str,
    j: &Join<'_>,
    event_id: Option<&str>,
    now: i64,
) -> Result<(Member, Invoice), MemberError> {
    let customer_id = check_customer_id(j.customer_id)?;
    let email = check_email(j.email)?;
    let first_name = check_first_name(j.first_name)?;
    let plan = plan_of(cfg, j.plan)?;
    let day = now.div_euclid(86_400_000);
    let period = Period::of_day(day).to_string();
    let visits_included = visits_column(plan.visits);
    Ok(store
        .create_member(&NewMember {
            program_id,
            customer_id,
            email: &email,
            plan: &plan.id,
            period: &period,
            visits_included,
            affiliate_id: j.affiliate_id,
            first_name,
            first_charge_minor: first_charge(plan.price_minor, day),
            currency,
            event_id,
            now,
        })
        .await?)
}

/// Visits left in the member's current period (`None`: unlimited).
pub fn visits_left(m: &Member) -> Option<i64> {
    let rolled = (m.visits_rolled - m.visits_rolled_used).max(0);
    m.visits_included
        .map(|n| (n - m.visits_used).max(0) + rolled)
}

/// Refuses to start when a plan that members hold has left the config: their billing
/// would have no price.
pub async fn check_plans_in_use(
    store: &Store,
    cfg: &MembershipConfig,
    program_id: i64,
) -> Result<(), StoreError> {
    let missing: Vec<String> = store
        .plans_in_use(program_id)
        .await?
        .into_iter()
        .filter(|p| cfg.plan(p).is_none())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(StoreError::Config(format!(
        "members hold the plan{} {} that [program.membership] no longer lists; put {} back in the config (a plan in use cannot be removed)",
        if missing.len() > 1 { "s" } else { "" },
        missing.join(", "),
        if missing.len() > 1 { "them" } else { "it" },
    )))
}

/// MRR and its movements for each month from `from` to `to` ([`super::mrr::months`]
/// over what the store says was billed).
pub async fn mrr_months(
    store: &Store,
    cfg: &MembershipConfig,
    program_id: i64,
    from: Period,
    to: Period,
) -> Result<Vec<super::mrr::MonthMrr>, StoreError> {
    let billed: Vec<super::mrr::Billed> = store
        .billed_until(program_id, &to.to_string())
        .await?
        .into_iter()
        .map(|(member_id, period, plan)| super::mrr::Billed {
            member_id,
            period,
            plan,
        })
        .collect();
    let prices = cfg
        .plans
        .iter()
        .map(|p| (p.id.clone(), p.price_minor))
        .collect();
    Ok(super::mrr::months(&billed, &prices, from, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_ids_and_emails_are_checked_as_sent() {
        assert!(check_customer_id("cus_123").is_ok());
        assert_eq!(check_customer_id(" cus_1 ").unwrap(), "cus_1");
        for bad in ["", "   ", "a\u{0}b", "a\u{85}", &"x".repeat(201)] {
            assert!(check_customer_id(bad).is_err(), "{bad:?}");
        }
        assert_eq!(check_email("Ana@Example.COM").unwrap(), "ana@example.com");
        for bad in [
            "",
            "a@",
            "@b",
            "a b@c",
            "a@b@c",
            "no-at",
            "a@\u{7}",
            "a@b\u{feff}",
            "a\u{3000}@b",
        ] {
            assert!(check_email(bad).is_err(), "{bad:?}");
        }
    }
}
