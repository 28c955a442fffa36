//! The renewal run: on the 1st of each month every live member moves into the new period
//! with a renewal invoice and the period's visits. It runs inside the server (hourly, and
//! at start), so after downtime it catches up period by period; each pass is idempotent
//! and safe on several replicas at once ([`crate::store::Store::renewal_pass`]).

use std::time::Duration;

use super::billing::Period;
use super::plans::{MembershipConfig, Visits};
use crate::store::members::{PlanPrice, RenewalPass};
use crate::store::{Store, StoreError};

/// What a run did, over all the periods it caught up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Renewed {
    /// Passes (one per period moved into, per group of members).
    pub passes: u32,
    /// Renewal invoices issued.
    pub invoiced: u64,
    /// Member-periods advanced.
    pub advanced: u64,
    /// Cancellations that took effect.
    pub cancelled: u64,
}

/// Brings every live member of the program up to the period that holds `now` (Unix ms).
pub async fn run(
    store: &Store,
    cfg: &MembershipConfig,
    program_id: i64,
    currency: &str,
    now: i64,
) -> Result<Renewed, StoreError> {
    let current = Period::of_day(now.div_euclid(86_400_000)).to_string();
    let plans: Vec<PlanPrice<'_>> = cfg
        .plans
        .iter()
        .map(|p| PlanPrice {
            id: &p.id,
            price_minor: p.price_minor,
            visits: match p.visits {
                Visits::Limited(n) => Some(i64::from(n)),
                Visits::Unlimited => None,
            },
        })
        .collect();
    let mut done = Renewed::default();
    while let Some(from) = store.oldest_unrenewed_period(program_id, &current).await? {
        let Some(p) = Period::parse(&from) else {
            return Err(StoreError::Config(format!(
                "a member's period {from:?} is not YYYY-MM"
            )));
        };
        let to = p.next().to_string();
        let pass: RenewalPass = store
            .renewal_pass(program_id, &from, &to, &plans, currency, now)
            .await?;
        done.passes += 1;
        done.invoiced += pass.invoiced;
        done.advanced += pass.advanced;
        done.cancelled += pass.cancelled;
        if pass.advanced == 0 && pass.cancelled == 0 {
            // Another replica moved them meanwhile, or nobody was left to move; the next
            // look at the oldest period decides.
            if store.oldest_unrenewed_period(program_id, &current).await? == Some(from.clone()) {
                return Err(StoreError::Config(format!(
                    "members of period {from} could not be renewed (a plan they hold is missing from the config?)"
                )));
            }
        }
    }
    Ok(done)
}

/// Runs the renewal every `every` (and once now) until the process ends; a failure is
/// logged and tried again at the next tick.
pub fn spawn(
    store: Store,
    cfg: MembershipConfig,
    program_id: i64,
    currency: String,
    every: Duration,
) {
    if cfg.plans.is_empty() {
        return;
    }
    let shared = std::sync::Arc::new((store, cfg, currency));
    super::every(every, move || {
        let shared = shared.clone();
        async move {
            let (store, cfg, currency) = &*shared;
            match run(store, cfg, program_id, currency, crate::store::now_ms()).await {
                Ok(r) if r.passes > 0 => tracing::info!(
                    invoiced = r.invoiced,
                    advanced = r.advanced,
                    cancelled = r.cancelled,
                    "membership renewal"
                ),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(%e, "membership renewal failed; retrying at the next tick")
                }
            }
        }
    });
}
