//! The program's configuration as it is in force: domain, cookie, fraud rules, tiers and rules.

use super::prelude::*;

use crate::web::auth::AdminSession;
use crate::web::{channel_name, money, shell};

pub(super) fn reward_text(
    c: &crate::money::rules::Commission,
    r: &crate::money::rules::Reward,
) -> String {
    let unit = c.unit(r);
    let mut parts = Vec::new();
    if let Some(f) = r.fixed_minor {
        parts.push(money(f, &unit));
    }
    if let Some(bp) = r.percent_bp {
        let mut t = format!("{}.{:02} % of the amount", bp / 100, bp % 100);
        if let Some(cap) = r.cap_minor {
            t.push_str(&format!(" (at most {})", money(cap, &unit)));
        }
        if r.unit == crate::money::rules::UnitKind::Credit {
            t.push_str(" as credit");
        }
        parts.push(t);
    }
    if r.unit == crate::money::rules::UnitKind::Voucher {
        parts.push(money(r.count.unwrap_or(1), &unit));
    }
    parts.join(" + ")
}

pub(super) async fn program(
    AdminSession(sess): AdminSession,
    State(s): State<AppState>,
) -> Response {
    let p = &s.config.program;
    let c = &p.commission;
    let body = html! {
        h1 { "Program" }
        p.lead { "The program as the server's configuration file sets it (read-only here; change the file and restart)." }
        dl.kv.panel {
            dt { "Name" } dd { (p.name) }
            dt { "Card and QR domain" } dd { (p.domain) }
            dt { "Booking site" } dd { (p.booking_url) }
            dt { "Attribution" } dd { @if p.last_touch { "last touch" } @else { "first touch" } ", cookie " (p.cookie_days) " days" @if let Some(d) = &p.cookie_domain { " on " (d) } }
            dt { "Currency" } dd { (c.currency) }
            dt { "Holding period" } dd { (c.holding_days) " days before earned commissions become payable" }
            dt { "Channels" } dd {
                @for (i, ch) in CHANNELS.iter().enumerate() {
                    @if i > 0 { ", " }
                    (channel_name(ch)) " " @if s.directory.killed(-1, ch) { (status_badge("off")) } @else { (status_badge("active")) }
                }
            }
        }
        h2 { "Tiers" }
        @if c.tiers.is_empty() { p.muted { "No tiers." } } @else {
            div.scroll { table {
                thead { tr { th scope="col" { "Tier" } th scope="col" { "Reached with" } } }
                tbody { @for t in &c.tiers { tr {
                    td { (t.name) }
                    td { @match t.min_referrals { Some(n) => { (n) " converted referrals in a month" }, None => "assigned by an admin" } }
                } } }
            } }
        }
        h2 { "Commission rules" }
        p.muted { "The first rule that matches a conversion pays." }
        div.scroll { table {
            thead { tr { th scope="col" { "#" } th scope="col" { "Rule" } th scope="col" { "On" } th scope="col" { "Only for" } th scope="col" { "Pays" } } }
            tbody { @for (i, r) in c.rules.iter().enumerate() { tr {
                td { (i + 1) }
                td { (r.name.as_deref().unwrap_or("—")) }
                td { (format!("{:?}", r.on).to_lowercase()) @if let Some(a) = &r.action { " (" (a) ")" } }
                td {
                    @if let Some(k) = &r.affiliate_kind { (k) " " }
                    @if let Some(t) = &r.tier { "tier " (t) " " }
                    @if r.first_only { "first conversion only" }
                }
                td { @for (k, w) in r.rewards.iter().enumerate() { @if k > 0 { " + " } (reward_text(c, w)) } }
            } } }
        } }
        h2 { "Fraud rules" }
        dl.kv.panel {
            dt { "Too fast" } dd { "conversions within " (p.fraud.min_seconds_after_click) " s of the click earn nothing" }
            dt { "Spot checks" } dd { @if p.fraud.review_every == 0 { "off" } @else { "every " (p.fraud.review_every) "th attributed conversion is held for review" } }
            dt { "One address" } dd { @if p.fraud.max_per_ip_per_day == 0 { "off" } @else { (p.fraud.max_per_ip_per_day) " conversions a day from one hashed IP are held" } }
            dt { "One email domain" } dd { @if p.fraud.max_per_email_domain_per_day == 0 { "off" } @else { (p.fraud.max_per_email_domain_per_day) " a day for one partner from one company domain are held" } }
            dt { "Click rate limit" } dd { @if s.config.rate_limit_per_hour == 0 { "off" } @else { (s.config.rate_limit_per_hour) " clicks an hour from one hashed IP" } }
        }
    };
    shell(&s, &sess, "Program", "/admin/program", body)
}
