//! Memberships (issue 19), the decisions first: the plans a program sells, calendar-month
//! billing periods with proration, visit allowances with one month of rollover, and the
//! dunning state a failed payment starts. Everything here is pure (facts in, decision
//! out) and integer money, so it is tested on its own, property tests included; the
//! store, the renewal run, payments and the console build on it.
//!
//! - [`plans`]: `[program.membership]` and its `[[program.membership.plans]]`, checked
//!   at start-up.
//! - [`billing`]: periods, the prorated first charge, the upgrade charge.
//! - [`visits`]: a period's allowance, rolled-over visits used first.
//! - [`dunning`]: `active` → `past_due` → `lapsed`, and back on a successful retry.
//! - [`mrr`]: monthly recurring revenue and its movements, reconciling month to month.
//! - [`charges`]: asking the brand's payment system to charge members, and dunning on
//!   its answers (signed requests, idempotency keys, retries, emails).
//! - [`payments`]: an invoice paid or refunded, on the ledger, with the membership
//!   commission of the partner who brought the member and its clawback.
//! - [`renewal`]: the monthly renewal run (idempotent, catches up after downtime).
//! - [`started`]: the signed `membership_started` event of the brand's checkout.
//! - [`payment_events`]: the signed `payment_succeeded` / `payment_failed` events that
//!   follow a charge the payment system answered `202` to.
//! - [`checkin`]: a member card tapped at the counter's kiosk: one visit, once per tap.
//! - [`service`]: creating a member (checked input, prorated first invoice), and the
//!   start-up check that no plan in use left the config.

pub mod billing;
pub mod charges;
pub mod checkin;
pub mod dunning;
pub mod mrr;
pub mod payment_events;
pub mod payments;
pub mod plans;
pub mod renewal;
pub mod service;
pub mod started;
pub mod visits;

/// Runs `job` now and then every `every` until the process ends (a tick missed while
/// the job ran is delayed, not bunched): the renewal run and the charges.
pub(crate) fn every<F, Fut>(every: std::time::Duration, mut job: F)
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            job().await;
        }
    });
}
