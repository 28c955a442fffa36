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
    let overdrafts = s.store.overdrafts(s.program.id, SHOWN).await?;
    let (from, to) = last_twelve_months();
    let mrr = crate::members::service::mrr_months(&s.store, cfg, s.program.id, from, to).await?;
    let labels: Vec<String> = mrr.iter().map(|m| m.month.clone()).collect();
    let plan_names: Vec<&str> = cfg.plans.iter().map(|p| p.name.as_str()).collect();
    // Per month, each plan's MRR in whole currency units (members × the plan's price).
    let by_plan: Vec<Vec<i64>> = mrr
        .iter()
        .map(|m| {
            cfg.plans
                .iter()
                .map(|p| {
                    let n = i64::try_from(m.by_plan.get(&p.id).copied().unwrap_or(0)).unwrap_or(0);
                    n.saturating_mul(p.price_minor) / 100
                })
                .collect()
        })
        .collect();
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
        @if !cfg.plans.is_empty() {
            h2 { "Monthly recurring revenue" }
            p { "The last twelve months, each member at its plan's full monthly price. The movements reconcile: each month's MRR is the previous one plus new, reactivated and expansion, minus contraction and churned. "
                a href="/admin/members/mrr.csv" download { "Download as CSV" } " (or " code { "GET /api/admin/memberships/mrr?from=YYYY-MM&to=YYYY-MM" } ")." }
            (crate::web::chart::stacked_bars("mrr", &format!("MRR per month by plan ({currency}, whole units)"), &labels, &plan_names, &by_plan))
            div.scroll tabindex="0" role="region" aria-label="MRR per month" { table {
                thead { tr { th scope="col" { "Month" } th.n scope="col" { "MRR" } th.n scope="col" { "New" } th.n scope="col" { "Reactivated" }
                    th.n scope="col" { "Expansion" } th.n scope="col" { "Contraction" } th.n scope="col" { "Churned" }
                    th.n scope="col" { "Members" } th.n scope="col" { "Churn rate" } th.n scope="col" { "Revenue per member" } } }
                tbody { @for m in &mrr { tr {
                    th scope="row" { (m.month) }
                    td.n { (money(m.mrr_minor, currency)) } td.n { (money(m.new_minor, currency)) } td.n { (money(m.reactivated_minor, currency)) }
                    td.n { (money(m.expansion_minor, currency)) } td.n { (money(m.contraction_minor, currency)) } td.n { (money(m.churned_minor, currency)) }
                    td.n { (m.members) } td.n { (m.churn_rate_bp / 100) "." (format!("{:02}", m.churn_rate_bp % 100)) " %" } td.n { (money(m.arpm_minor, currency)) }
                } } }
            } }
        }
        h2 { "Offline check-in overdrafts" }
        @if overdrafts.is_empty() { p.muted { "None: every visit given while a kiosk was offline was owed." } } @else {
            p { "Visits a counter display gave from its roster while it could not reach the server, that the member was not owed by the time the server heard of them. They are kept as given; settle them with the member." }
            div.scroll tabindex="0" role="region" aria-label="Offline check-in overdrafts" { table {
                thead { tr { th scope="col" { "Customer" } th scope="col" { "Why not owed" } th scope="col" { "Given at the desk" }
                    th scope="col" { "Kiosk" } th scope="col" { "Reported" } } }
                tbody { @for c in &overdrafts { tr {
                    td { code { (c.member_id.and_then(|m| customers.get(&m).copied()).unwrap_or("—")) } }
                    td { (c.overdraft.as_deref().unwrap_or("").replace('_', " ")) }
                    td { (when(c.offline_at.unwrap_or(c.at))) }
                    td { (c.kiosk_id) }
                    td { (when(c.at)) }
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

/// The twelve months to this one.
fn last_twelve_months() -> (
    crate::members::billing::Period,
    crate::members::billing::Period,
) {
    use crate::members::billing::Period;
    let to = Period::of_day(crate::store::now_ms().div_euclid(86_400_000));
    (crate::members::mrr::twelve_months_to(to), to)
}

/// `GET /admin/members/mrr.csv`: the members page's MRR table, the last twelve months,
/// amounts in minor units.
pub(super) async fn mrr_csv(
    AdminSession(_): AdminSession,
    State(s): State<AppState>,
) -> Result<Response, WebError> {
    let (from, to) = last_twelve_months();
    let mrr = crate::members::service::mrr_months(
        &s.store,
        &s.config.program.membership,
        s.program.id,
        from,
        to,
    )
    .await?;
    let mut w = csv::Writer::from_writer(Vec::new());
    let currency = &s.config.program.commission.currency;
    let mut rows = vec![vec![
        "month".to_owned(),
        "currency".to_owned(),
        "mrr_minor".to_owned(),
        "new_minor".to_owned(),
        "reactivated_minor".to_owned(),
        "expansion_minor".to_owned(),
        "contraction_minor".to_owned(),
        "churned_minor".to_owned(),
        "members".to_owned(),
        "churn_rate_bp".to_owned(),
        "arpm_minor".to_owned(),
    ]];
    for m in &mrr {
        rows.push(vec![
            m.month.clone(),
            currency.clone(),
            m.mrr_minor.to_string(),
            m.new_minor.to_string(),
            m.reactivated_minor.to_string(),
            m.expansion_minor.to_string(),
            m.contraction_minor.to_string(),
            m.churned_minor.to_string(),
            m.members.to_string(),
            m.churn_rate_bp.to_string(),
            m.arpm_minor.to_string(),
        ]);
    }
    for r in &rows {
        w.write_record(r)
            .map_err(|e| WebError::internal(e.to_string()))?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| WebError::internal(e.to_string()))?;
    Ok(crate::web::download(
        "text/csv; charset=utf-8",
        &format!("mrr-{from}-to-{to}.csv"),
        bytes,
    ))
}
