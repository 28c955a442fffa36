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
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
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
}

/// Checks a customer id as sent: 1 to 200 characters, no control characters.
pub fn check_customer_id(v: &str) -> Result<(), MemberError> {
    let n = v.chars().count();
    if n == 0 || n > 200 || v.chars().any(char::is_control) || v.trim() != v {
        return Err(invalid(
            "customer_id",
            "the brand's customer id: 1 to 200 characters, no control characters or surrounding spaces",
        ));
    }
    Ok(())
}

/// Checks an email as sent: 3 to 254 characters, one `@` with text on both sides, no
/// spaces or control characters. Stored lower-cased.
pub fn check_email(v: &str) -> Result<String, MemberError> {
    let n = v.chars().count();
    let ok = (3..=254).contains(&n)
        && !v.chars().any(|c| c.is_control() || c.is_whitespace())
        && v.split_once('@')
            .is_some_and(|(a, d)| !a.is_empty() && !d.is_empty() && !d.contains('@'));
    if !ok {
        return Err(invalid(
            "email",
            "an email address like name@example.com (3 to 254 characters, no spaces)",
        ));
    }
    Ok(v.to_lowercase())
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
    check_customer_id(j.customer_id)?;
    let email = check_email(j.email)?;
    let plan = cfg.plan(j.plan).ok_or_else(|| {
        let ids: Vec<&str> = cfg.plans.iter().map(|p| p.id.as_str()).collect();
        invalid(
            "plan",
            if ids.is_empty() {
                "this program sells no plans; add [[program.membership.plans]] to its config"
                    .to_owned()
            } else {
                format!(
                    "{:?} is not a plan of this program; use one of {}",
                    j.plan,
                    ids.join(", ")
                )
            },
        )
    })?;
    let day = now.div_euclid(86_400_000);
    let period = Period::of_day(day).to_string();
    let visits_included = match plan.visits {
        Visits::Limited(n) => Some(i64::from(n)),
        Visits::Unlimited => None,
    };
    Ok(store
        .create_member(&NewMember {
            program_id,
            customer_id: j.customer_id,
            email: &email,
            plan: &plan.id,
            period: &period,
            visits_included,
            affiliate_id: j.affiliate_id,
            first_charge_minor: first_charge(plan.price_minor, day),
            currency,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_ids_and_emails_are_checked_as_sent() {
        assert!(check_customer_id("cus_123").is_ok());
        for bad in ["", " cus", "a\u{0}b", &"x".repeat(201)] {
            assert!(check_customer_id(bad).is_err(), "{bad:?}");
        }
        assert_eq!(check_email("Ana@Example.COM").unwrap(), "ana@example.com");
        for bad in ["", "a@", "@b", "a b@c", "a@b@c", "no-at", "a@\u{7}"] {
            assert!(check_email(bad).is_err(), "{bad:?}");
        }
    }
}
