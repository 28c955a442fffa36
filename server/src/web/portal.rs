//! The partner portal: the partner's link, card status and QR downloads with share
//! helpers; earnings (pending, payable, paid, by month), referral history without
//! customer data, tier and progress. Every page reads the partner from the session,
//! never from the URL, so no id in a URL can show another partner's data.

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{Redirect, Response};
use axum::routing::get;
use maud::{Markup, PreEscaped, html};

use super::auth::{PartnerSession, Role};
use super::{channel_name, date, download, money, page, shell, signin};
use crate::AppState;
use crate::store::{Affiliate, now_ms};
use crate::web::WebError;

/// The portal's navigation.
pub const NAV: super::Nav = &[
    ("My link and card", "/portal"),
    ("Earnings", "/portal/earnings"),
];

/// The portal's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/portal", get(home))
        .route("/portal/", get(|| async { Redirect::permanent("/portal") }))
        .route("/portal/earnings", get(earnings))
        .route("/portal/qr.png", get(qr_png))
        .route("/portal/qr.svg", get(qr_svg))
        .route("/portal/card.pdf", get(card_pdf))
        .merge(signin::routes(Role::Partner))
        .merge(signin::link_sign_in_routes(Role::Partner, sign_in_page))
}

fn suspended_notice(a: &Affiliate) -> Markup {
    html! {
        @if a.status == "suspended" {
            div.notice.bad role="alert" {
                strong { "Your partner account is suspended." }
                " Customers who tap your card or scan your code still reach the booking site, but their bookings earn no commission. Contact the program to sort it out."
            }
        }
    }
}

// ---------------------------------------------------------------- sign-in

fn sign_in_page(
    s: &AppState,
    csrf: &str,
    sent_to: Option<&str>,
    error: Option<&str>,
    note: Option<&str>,
) -> Markup {
    let sent = sent_to.map(|to| html! {
        "If " strong { (to) } " belongs to a partner of " (s.program.name) ", a sign-in link is on its way. It works once, for 30 minutes. No email? Check the spam folder, or ask the program's admin for a link."
    });
    let body = html! {
        div.signin {
            h1 { "Partner sign-in" }
            (signin::notices(note, error, sent))
            p { "Enter the email address the program has for you; we send you a one-time sign-in link. No password needed." }
            (signin::email_form(Role::Partner, csrf))
        }
    };
    page(s, Role::Partner, "Sign in", "", None, body)
}

// ---------------------------------------------------------------- home

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The share buttons' links for a referral `link`: SMS, WhatsApp and email, each
/// carrying the same message (with the friend's offer, for a referrer's link).
pub fn share_links(program: &str, link: &str, offer: Option<&str>) -> [(&'static str, String); 3] {
    let text = match offer {
        Some(o) => format!("Book with {program} through my link and get {o}: {link}"),
        None => format!("Book with {program} through my link: {link}"),
    };
    [
        ("Share by SMS", format!("sms:?&body={}", enc(&text))),
        (
            "Share on WhatsApp",
            format!("https://wa.me/?text={}", enc(&text)),
        ),
        (
            "Share by email",
            format!(
                "mailto:?subject={}&body={}",
                enc(&format!("Book with {program}")),
                enc(&text)
            ),
        ),
    ]
}

async fn home(
    PartnerSession(sess, a): PartnerSession,
    State(s): State<AppState>,
) -> Result<Response, WebError> {
    let cards = s.store.cards(Some(a.id)).await?;
    let tier = tier_progress(&s, &a).await?;
    let link = crate::api::partners::link_of(&s, &a.code);
    let offer = match a.kind.as_str() {
        kind if s
            .config
            .program
            .rewards
            .as_ref()
            .and_then(|r| r.friend_offer.as_ref())
            .is_some_and(|o| o.for_kinds.iter().any(|k| k == kind)) =>
        {
            super::refer::offer_text(&s)
        }
        _ => None,
    };
    let shares = share_links(&s.program.name, &link, offer.as_deref());
    let active: Vec<_> = cards.iter().filter(|c| c.status == "active").collect();
    let body = html! {
        h1 { "Hello, " (a.name) }
        (suspended_notice(&a))
        section aria-labelledby="h-link" {
            h2 id="h-link" { "Your link" }
            p { "Every booking made through this link, your card or your QR code counts for you." }
            div.linkbox {
                label.muted for="partner-link" style="width:100%" { "Your referral link" }
                input id="partner-link" readonly value=(link);
                button type="button" data-copy="partner-link" hidden { "Copy link" }
            }
            h3 { "Share it" }
            div.row {
                @for (label, href) in &shares {
                    a.button.secondary href=(href) rel="noopener" { (label) }
                }
            }
        }
        section aria-labelledby="h-qr" {
            h2 id="h-qr" { "Your QR code" }
            img.qr src="/portal/qr.svg" alt={"QR code that opens " (link)} width="192" height="192";
            p.muted { "Scans of this code count as QR visits for you." }
            div.row {
                a.button href="/portal/qr.png" download { "PNG, 1024 px" }
                a.button.secondary href="/portal/qr.svg" download { "SVG (any size)" }
                a.button.secondary href="/portal/card.pdf" download { "Print PDF of your card" }
            }
        }
        section aria-labelledby="h-card" {
            h2 id="h-card" { "Your card" }
            @if active.is_empty() && a.kind == "business" {
                p { "Your NFC card is being prepared." }
            } @else if active.is_empty() {
                p { "Your link and QR code are your way in; NFC cards go to business partners' counters." }
            } @else {
                @for c in &active {
                    p { span.badge.ok { "active" } " Card ending " code { (c.uid.get(c.uid.len().saturating_sub(4)..).unwrap_or("")) } ", since " (date(c.provisioned_at)) "." }
                }
            }
            @let ended: Vec<_> = cards.iter().filter(|c| c.status != "active").collect();
            @if !ended.is_empty() {
                p.muted { "Earlier cards: "
                    @for (i, c) in ended.iter().enumerate() { @if i > 0 { ", " } "ending " (c.uid.get(c.uid.len().saturating_sub(4)..).unwrap_or("")) " (" (c.status) ")" }
                }
            }
            p.muted { "Card lost? Tell the program: it is switched off and a new one is made." }
        }
        section aria-labelledby="h-tier" {
            h2 id="h-tier" { "Your tier" }
            (tier)
        }
        script { (PreEscaped(crate::web::COPY_SCRIPT)) }
    };
    Ok(shell(&s, &sess, "My link and card", "/portal", body))
}

async fn tier_progress(s: &AppState, a: &Affiliate) -> Result<Markup, String> {
    let c = &s.config.program.commission;
    let month = tapkit_core::date::month_of_ms(now_ms());
    let lifetime = c.tier_window == crate::money::rules::TierWindow::Lifetime;
    let n = s
        .store
        .earned_referrals(a.id, (!lifetime).then_some(month.as_str()))
        .await
        .map_err(|e| e.to_string())?;
    let (window, more) = if lifetime {
        ("in all".to_owned(), "")
    } else {
        (format!("in {month}"), " this month")
    };
    if c.tiers.is_empty() {
        return Ok(html! { p { (n) " converted referrals " (window) "." } });
    }
    let current = c.tier(a.tier.as_deref(), n);
    let fixed = a
        .tier
        .as_deref()
        .is_some_and(|t| c.tiers.iter().any(|x| x.name == t));
    let next = c
        .tiers
        .iter()
        .filter_map(|t| t.min_referrals.filter(|m| *m > n).map(|m| (t, m)))
        .min_by_key(|(_, m)| *m);
    Ok(html! {
        p { "Tier: " strong { (current.unwrap_or("none yet")) } @if fixed { " (set by the program)" } }
        p { (n) " converted referrals " (window) "." }
        @if let (false, Some((t, m))) = (fixed, next) {
            @let pct = (u64::from(n) * 100 / u64::from(m.max(1))).min(100);
            div.progress role="progressbar" aria-label={"Progress to " (t.name)} aria-valuemin="0" aria-valuemax=(m) aria-valuenow=(n) {
                span style={"width:" (pct) "%"} {}
            }
            p.muted { (m - n) " more" (more) " to reach " (t.name) "." }
        }
    })
}

// ---------------------------------------------------------------- earnings

/// A referrer's rewards with what is left and each use (the portal's earnings page and
/// the member's page).
pub(crate) fn rewards_table(
    s: &AppState,
    rewards: &[(
        crate::store::rewards::Reward,
        Vec<crate::store::rewards::Redemption>,
    )],
) -> Markup {
    let currency = &s.config.program.commission.currency;
    html! {
        h2 { "Your rewards" }
        p.muted { "Issued the moment a referral is serviced. Give the code at checkout; a credit can be used over several visits." }
        div.scroll tabindex="0" role="region" aria-label="Your rewards" { table {
            thead { tr { th scope="col" { "Code" } th scope="col" { "For" } th.n scope="col" { "Left" } th scope="col" { "Status" } th scope="col" { "History" } } }
            tbody { @for (r, uses) in rewards { tr {
                th scope="row" { code { (r.code) } }
                td { (crate::rewards::notify::worth_text(r, currency)) }
                td.n { (money(r.balance, &r.unit)) }
                td { (reward_status(r)) }
                td {
                    "issued " (date(r.issued_at)) "; use by " (date(r.expires_at))
                    @for u in uses { br; "used " (date(u.redeemed_at)) ": " (money(u.discount_minor, currency)) " off" @if u.reversed_at.is_some() { " (refunded, given back)" } }
                }
            } } }
        } }
    }
}

fn reward_status(r: &crate::store::rewards::Reward) -> &'static str {
    match r.closed_reason.as_deref() {
        Some("refunded") => "withdrawn (the referral was refunded)",
        Some(_) => "expired",
        None if r.expires_at <= now_ms() => "expired",
        None if r.balance == 0 => "used",
        None => "ready to use",
    }
}

fn status_text(status: &str, amount: i64) -> &'static str {
    match status {
        "reversed" if amount == 0 => "repriced",
        "pending" => "waiting for the service",
        "held" => "in review",
        "earned" => "earned",
        "reversed" => "refunded",
        "refused" => "not counted",
        _ => "other",
    }
}

async fn earnings(
    PartnerSession(sess, a): PartnerSession,
    State(s): State<AppState>,
) -> Result<Response, WebError> {
    let result = async {
        let owed = s.store.owed(a.id).await?;
        let months = s.store.earnings_by_month(a.id).await?;
        let refs = s.store.referrals(a.id, 500).await?;
        let payouts = s.store.affiliate_payouts(a.id).await?;
        let members = s.store.members_brought(a.id).await?;
        let rewards = s.store.rewards_of(a.id, 100).await?;
        Ok::<_, crate::store::StoreError>((owed, months, refs, payouts, members, rewards))
    }
    .await;
    let (owed, months, refs, payouts, members, rewards) = result?;
    let plan_name = |id: &str| {
        s.config
            .program
            .membership
            .plan(id)
            .map_or_else(|| id.to_owned(), |p| p.name.clone())
    };
    let tier = tier_progress(&s, &a).await?;
    use std::collections::BTreeMap;
    let mut pending: BTreeMap<String, i64> = BTreeMap::new();
    for m in &months {
        *pending.entry(m.unit.clone()).or_default() += m.pending;
    }
    // Not paid yet: the payable balance, plus closed months' payouts not marked paid
    // (closing a month moves them out of the payable balance).
    let mut payable: BTreeMap<String, i64> =
        owed.into_iter().map(|o| (o.unit, o.amount_minor)).collect();
    let mut paid: BTreeMap<String, i64> = BTreeMap::new();
    for (_, unit, amount, at) in &payouts {
        let bucket = if at.is_some() {
            &mut paid
        } else {
            &mut payable
        };
        *bucket.entry(unit.clone()).or_default() += amount;
    }
    let list = |m: &BTreeMap<String, i64>| -> Markup {
        html! {
            @if m.values().all(|v| *v == 0) { "0" }
            @for (i, (u, v)) in m.iter().filter(|(_, v)| **v != 0).enumerate() { @if i > 0 { br; } (money(*v, u)) }
        }
    };
    let body = html! {
        h1 { "Earnings" }
        p.lead { (a.name) " · code " code { (a.code) } }
        (suspended_notice(&a))
        div.cards {
            div.stat { span.v { (list(&pending)) } "pending (waiting for the service or a review)" }
            div.stat { span.v { (list(&payable)) } "earned, not paid yet (paid after the month closes and a " (s.config.program.commission.holding_days) "-day holding period)" }
            div.stat { span.v { (list(&paid)) } "paid to you so far" }
        }
        h2 { "By month" }
        @if months.is_empty() { p.muted { "No referrals yet. Share your link to get started." } } @else {
            div.scroll { table {
                thead { tr { th scope="col" { "Month" } th.n scope="col" { "Pending" } th.n scope="col" { "Earned" } th.n scope="col" { "Refunded" } } }
                tbody { @for m in &months { tr {
                    th scope="row" { (m.month) }
                    td.n { (money(m.pending, &m.unit)) } td.n { (money(m.earned, &m.unit)) } td.n { (money(m.refunded, &m.unit)) }
                } } }
            } }
        }
        @if !rewards.is_empty() { (rewards_table(&s, &rewards)) }
        h2 { "Payouts" }
        @if payouts.is_empty() { p.muted { "No payout yet: months are closed at the start of the next month." } } @else {
            div.scroll { table {
                thead { tr { th scope="col" { "Month" } th.n scope="col" { "Amount" } th scope="col" { "Status" } } }
                tbody { @for (p, u, amount, at) in &payouts { tr {
                    th scope="row" { (p) }
                    td.n { (money(*amount, u)) }
                    td { @match at { Some(t) => { span.badge.ok { "paid" } " " (date(*t)) }, None => @if *amount > 0 { span.badge.warn { "being paid" } } @else { span.muted { "carried to next month" } } } }
                } } }
            } }
        }
        h2 { "Referral history" }
        p.muted { "Dates, channel and status only: customers' details are not shown." }
        @if refs.is_empty() { p.muted { "None yet." } } @else {
            div.scroll { table {
                thead { tr { th scope="col" { "Date" } th scope="col" { "Came through" } th scope="col" { "Status" } th.n scope="col" { "Commission" } } }
                tbody { @for r in &refs { tr {
                    td { (date(r.at)) }
                    td { (r.channel.as_deref().map_or("—", channel_name)) }
                    td { (status_text(&r.status, r.amount_minor)) }
                    td.n { (money(r.amount_minor, &r.unit)) }
                } } }
            } }
        }
        @if !members.is_empty() || !s.config.program.membership.plans.is_empty() {
            h2 { "Members you brought" }
            p.muted { "Customers who became members through your link or card: when they joined, their plan and whether they are still members. Customers' details are not shown." }
            @if members.is_empty() { p.muted { "None yet." } } @else {
                div.scroll tabindex="0" role="region" aria-label="Members you brought" { table {
                    thead { tr { th scope="col" { "Joined" } th scope="col" { "Plan" } th scope="col" { "Status" } } }
                    tbody { @for (plan, status, at) in &members { tr {
                        td { (date(*at)) }
                        td { (plan_name(plan)) }
                        td { (status.replace('_', " ")) }
                    } } }
                } }
            }
        }
        h2 { "Tier" }
        (tier)
    };
    Ok(shell(&s, &sess, "Earnings", "/portal/earnings", body))
}

// ---------------------------------------------------------------- downloads

fn qr_files(s: &AppState, a: &Affiliate) -> Result<(Vec<u8>, String), String> {
    tapkit_print::portal_qr(&tapkit_print::qr_url(&s.config.program.domain, &a.code))
}

async fn qr_png(
    PartnerSession(_, a): PartnerSession,
    State(s): State<AppState>,
) -> Result<Response, WebError> {
    match qr_files(&s, &a) {
        Ok((png, _)) => Ok(download("image/png", &format!("{}-qr.png", a.code), png)),
        Err(e) => Err(WebError::internal(e)),
    }
}

async fn qr_svg(
    PartnerSession(_, a): PartnerSession,
    State(s): State<AppState>,
) -> Result<Response, WebError> {
    match qr_files(&s, &a) {
        Ok((_, svg)) => {
            let mut r = download(
                "image/svg+xml",
                &format!("{}-qr.svg", a.code),
                svg.into_bytes(),
            );
            // Shown inline on the home page too.
            r.headers_mut().insert(
                header::CONTENT_DISPOSITION,
                header::HeaderValue::from_static("inline"),
            );
            Ok(r)
        }
        Err(e) => Err(WebError::internal(e)),
    }
}

async fn card_pdf(
    PartnerSession(_, a): PartnerSession,
    State(s): State<AppState>,
) -> Result<Response, WebError> {
    let code = a.code.clone();
    match super::admin::provisioning::print_pdf(
        &s,
        vec![a],
        tapkit_print::layout::SheetKind::PerCard,
    )
    .await
    {
        Ok(pdf) => Ok(download(
            "application/pdf",
            &format!("{code}-card.pdf"),
            pdf,
        )),
        Err(e) => Err(WebError::internal(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::share_links;

    /// Percent-decodes a query value (the test's own decoder, not the encoder's inverse).
    fn decode(v: &str) -> String {
        let b = v.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                out.push(u8::from_str_radix(&v[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn share_links_decode_to_the_message_and_the_link() {
        let link = "https://glow.example/r/CARLA-7K2M9Q?utm_source=share";
        let want = "Book with Glow & Co through my link and get 15 % off your first visit: https://glow.example/r/CARLA-7K2M9Q?utm_source=share";
        let [sms, wa, mail] = share_links("Glow & Co", link, Some("15 % off your first visit"));
        assert_eq!(sms.0, "Share by SMS");
        assert_eq!(decode(sms.1.strip_prefix("sms:?&body=").unwrap()), want);
        assert_eq!(
            decode(wa.1.strip_prefix("https://wa.me/?text=").unwrap()),
            want
        );
        let (subject, body) = mail
            .1
            .strip_prefix("mailto:?subject=")
            .unwrap()
            .split_once("&body=")
            .unwrap();
        assert_eq!(decode(subject), "Book with Glow & Co");
        assert_eq!(decode(body), want);
        // Nothing in a link that would end the value early.
        for (_, href) in [&sms, &wa, &mail] {
            let value = href.split_once('=').unwrap().1;
            assert!(!value.contains([' ', '?', '#', '+']), "{href}");
        }
        let [plain, _, _] = share_links("Glow", "https://g/r/X", None);
        assert_eq!(
            decode(plain.1.strip_prefix("sms:?&body=").unwrap()),
            "Book with Glow through my link: https://g/r/X"
        );
    }
}
