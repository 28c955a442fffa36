//! Members: the program's plans, who holds them (status, period, visits left, the
//! partner who brought them), the recovered share of failed payments, and the invoices
//! still open — the brand settles those
//! itself while no payment system is connected. Its wide tables scroll sideways on a
//! phone, so each scrolling region takes keyboard focus (WCAG 2.1.1; axe checks it).

use super::prelude::*;

use crate::members::plans::Visits;
use crate::members::service::visits_left;
use crate::web::auth::AdminSession;
use crate::web::{money, shell, when};

/// Members and open invoices shown at most (newest members, oldest invoices first).
const SHOWN: i64 = 500;

pub(super) async fn members(
    AdminSession(sess): AdminSession,
    State(s): State<AppState>,
) -> Result<Response, WebError> {
    let cfg = &s.config.program.membership;
    let list = s.store.members(s.program.id, SHOWN).await?;
    let open = s.store.open_invoices(s.program.id, SHOWN).await?;
    let recovery = s.store.payment_recovery(s.program.id).await?;
    let partners: std::collections::HashMap<i64, String> = s
        .store
        .affiliates(false)
        .await?
        .into_iter()
        .map(|a| (a.id, a.name))
        .collect();
    let customers: std::collections::HashMap<i64, &str> = list
        .iter()
        .map(|m| (m.id, m.customer_id.as_str()))
        .collect();
    let count = |status: &str| list.iter().filter(|m| m.status == status).count();
    let currency = &s.config.program.commission.currency;
    let body = html! {
        h1 { "Members" }
        @if cfg.plans.is_empty() {
            p.lead { "This program sells no membership plans yet. Add them to the program's config as "
                code { "[[program.membership.plans]]" } " (see " code { "docs/memberships.md" } ") and restart the server." }
        } @else {
            p.lead { (list.len()) @if list.len() == 1 { " member: " } @else { " members: " } (count("active")) " active, " (count("past_due")) " past due, "
                (count("paused")) " paused, " (count("lapsed")) " lapsed, " (count("cancelled")) " cancelled." }
            h2 { "Plans" }
            div.scroll tabindex="0" role="region" aria-label="Plans" { table {
                thead { tr { th scope="col" { "Plan" } th scope="col" { "Price a month" } th scope="col" { "Visits a month" }
                    th scope="col" { "Add-on discount" } th scope="col" { "Members" } } }
                tbody { @for p in &cfg.plans { tr {
                    td { (p.name) " " code { (p.id) } }
                    td { (money(p.price_minor, currency)) }
                    td { @match p.visits { Visits::Limited(n) => (n), Visits::Unlimited => "unlimited" } }
                    td { (p.add_on_discount_bp / 100) " %" }
                    td { (list.iter().filter(|m| m.plan == p.id && !matches!(m.status.as_str(), "cancelled" | "lapsed")).count()) }
                } } }
            } }
        }
        h2 { "Members" }
        @if list.is_empty() { p.muted { "No members yet." } } @else {
            div.scroll tabindex="0" role="region" aria-label="Members" { table {
                thead { tr { th scope="col" { "Customer" } th scope="col" { "Plan" } th scope="col" { "Status" }
                    th scope="col" { "Period" } th scope="col" { "Visits left" } th scope="col" { "Brought by" } th scope="col" { "Since" } } }
                tbody { @for m in &list { tr {
                    td { code { (m.customer_id) } }
                    td { (m.plan) @if let Some(next) = &m.pending_plan { " → " (next) " next period" } }
                    td { (super::partners::status_badge(&m.status))
                        @if m.cancel_at_period_end { " cancels at period end" }
                        @if let Some(until) = &m.paused_until { " paused until " (until) } }
                    td { (m.period) }
                    td { @match visits_left(m) { Some(n) => (n), None => "unlimited" } }
                    td { (m.affiliate_id.and_then(|a| partners.get(&a).cloned()).unwrap_or_else(|| "—".into())) }
                    td { (when(m.created_at)) }
                } } }
            } }
        }
        h2 { "Failed payments" }
        @if recovery.failed == 0 { p.muted { "No charge has failed." } } @else {
            p { strong { (recovery.recovered) " of " (recovery.failed) } " invoices whose charge failed were recovered ("
                (recovery.recovered * 100 / recovery.failed) " %); " (recovery.retrying) " still being retried on the dunning schedule." }
        }
        h2 { "Open invoices" }
        @if open.is_empty() { p.muted { "None open." } } @else {
            p { "Issued and not yet settled. Without a payment system connected, the brand collects them itself." }
            div.scroll tabindex="0" role="region" aria-label="Open invoices" { table {
                thead { tr { th scope="col" { "Customer" } th scope="col" { "Period" } th scope="col" { "Kind" }
                    th scope="col" { "Plan" } th scope="col" { "Amount" } th scope="col" { "Issued" } } }
                tbody { @for i in &open { tr {
                    td { code { (customers.get(&i.member_id).copied().unwrap_or("—")) } }
                    td { (i.period) }
                    td { (i.kind) }
                    td { (i.plan) }
                    td { (money(i.amount_minor, &i.currency)) }
                    td { (when(i.created_at)) }
                } } }
            } }
        }
    };
    Ok(shell(&s, &sess, "Members", "/admin/members", body))
}
