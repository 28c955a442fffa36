//! The admin console: overview and click analytics, affiliates (search, create,
//! suspend, kill a channel, cards, kiosks, sign-in links), provisioning status and print
//! PDFs, the review queue, month close and payouts, CSV exports, and the program's
//! configuration.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};

use super::auth::{
    ADMIN_MADE_LINK_MS, AdminForm, AdminSession, Role, Session, make_link, verify_password,
};
use super::{
    Fields, channel_name, chart, date, day_range, download, message_page, money, page, respond,
    respond_setting, server_error, shell, signin, when,
};
use crate::AppState;
use crate::api::ApiError;
use crate::money::reviews;
use crate::store::web::Export;
use crate::store::{Affiliate, now_ms};

/// The console's navigation.
pub const NAV: super::Nav = &[
    ("Overview", "/admin"),
    ("Affiliates", "/admin/affiliates"),
    ("Provisioning", "/admin/provisioning"),
    ("Reviews", "/admin/reviews"),
    ("Payouts", "/admin/payouts"),
    ("Exports", "/admin/exports"),
    ("Program", "/admin/program"),
];

const CHANNELS: [&str; 4] = ["nfc", "qr", "kiosk", "link"];

/// The console's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(overview))
        .route("/admin/", get(|| async { Redirect::permanent("/admin") }))
        .route("/admin/sign-in", get(sign_in_form).post(sign_in))
        .route("/admin/sign-out", post(signin::admin_sign_out))
        .route(
            "/admin/link/{token}",
            get(signin::admin_open).post(signin::admin_use),
        )
        .route("/admin/affiliates", get(affiliates).post(create))
        .route("/admin/affiliates/{id}", get(affiliate))
        .route("/admin/affiliates/{id}/{action}", post(affiliate_action))
        .route("/admin/provisioning", get(provisioning))
        .route("/admin/provisioning/cards.pdf", get(cards_pdf))
        .route("/admin/reviews", get(reviews))
        .route("/admin/reviews/{id}/{verdict}", post(decide))
        .route("/admin/payouts", get(payouts))
        .route("/admin/payouts/close", post(close))
        .route("/admin/payouts/{id}/paid", post(paid))
        .route("/admin/periods/{file}", get(period_file))
        .route("/admin/exports", get(exports))
        .route("/admin/exports/{file}", get(export))
        .route("/admin/program", get(program))
}

fn csrf_field(sess: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(sess.csrf); }
}

/// A small POST form with one button.
fn button_form(sess: &Session, action: &str, label: &str, class: &str) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf_field(sess))
            button type="submit" class=(class) { (label) }
        }
    }
}

fn done_notice(q: &Fields) -> Markup {
    let text = match q.get("done") {
        Some("created") => "Affiliate created.",
        Some("suspended") => {
            "Suspended: its taps and scans still reach the booking site but earn nothing."
        }
        Some("reactivated") => "Reactivated.",
        Some("killed") => "Channel turned off.",
        Some("approved") => "Approved.",
        Some("rejected") => "Rejected.",
        Some("closed") => "Month closed; the payout report is below.",
        Some("paid") => "Marked paid.",
        _ => return html! {},
    };
    html! { p.notice.ok role="status" { (text) } }
}

fn error_notice(text: &str) -> Markup {
    html! { p.notice.bad role="alert" { (text) } }
}

// ---------------------------------------------------------------- sign-in

fn sign_in_page(
    s: &AppState,
    csrf: &str,
    error: Option<&str>,
    email: &str,
    note: Option<&str>,
) -> Markup {
    let body = html! {
        div.signin {
            h1 { "Admin sign-in" }
            @if let Some(n) = note { p.notice.ok role="status" { (n) } }
            @if let Some(e) = error { (error_notice(e)) }
            form method="post" action="/admin/sign-in" {
                input type="hidden" name="csrf" value=(csrf);
                label for="email" { "Email" }
                input id="email" name="email" type="email" autocomplete="username" required value=(email);
                label for="password" { "Password" }
                input id="password" name="password" type="password" autocomplete="current-password" required;
                p { button type="submit" { "Sign in" } }
            }
            p.muted {
                "No password yet, or forgotten? On the server, "
                code { "tapkit-server admin link --email YOU" }
                " prints a one-time sign-in link."
            }
        }
    };
    page(s, Role::Admin, "Sign in", "", None, body)
}

async fn sign_in_form(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    signin::form(&s, Role::Admin, &headers, q, |csrf, note| {
        sign_in_page(&s, csrf, None, "", note)
    })
    .await
}

async fn sign_in(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let f = Fields::parse(&body);
    let (set, csrf) = match signin::posted_form(&s, &headers, &f, |csrf, error| {
        sign_in_page(&s, csrf, Some(error), "", None)
    }) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let email = f.get("email").unwrap_or("").trim().to_lowercase();
    let password = f.get("password").unwrap_or("").to_owned();
    if email.len() > 200 || !email.contains('@') || password.len() > 1024 {
        return respond_setting(
            StatusCode::UNPROCESSABLE_ENTITY,
            &sign_in_page(
                &s,
                &csrf,
                Some("Enter your email address and password."),
                "",
                None,
            ),
            set,
        );
    }
    if !s.web.begin_attempt(&email, now_ms()) {
        return respond_setting(
            StatusCode::TOO_MANY_REQUESTS,
            &sign_in_page(
                &s,
                &csrf,
                Some(
                    "Too many wrong passwords for this email: wait 15 minutes, or use a one-time link.",
                ),
                &email,
                None,
            ),
            set,
        );
    }
    // At most a few argon2 checks at once (each holds 19 MiB); a flood waits its turn.
    let Ok(_permit) = s.web.hashing.acquire().await else {
        return server_error("the password check queue is closed");
    };
    let admin = match s.store.admin_by_email(&email).await {
        Ok(a) => a,
        Err(e) => return server_error(&e.to_string()),
    };
    let stored = admin.as_ref().and_then(|(_, h)| h.clone());
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, stored.as_deref()))
        .await
        .unwrap_or(false);
    match (ok, admin) {
        (true, Some((id, _))) => {
            s.web.succeeded(&email);
            match Session::start(&s, Role::Admin, id).await {
                Ok(cookie) => {
                    tracing::info!(admin = id, "admin signed in with a password");
                    let mut r = Redirect::to("/admin").into_response();
                    r.headers_mut().append(header::SET_COOKIE, cookie);
                    r
                }
                Err(e) => server_error(&e.to_string()),
            }
        }
        _ => respond_setting(
            StatusCode::UNAUTHORIZED,
            &sign_in_page(
                &s,
                &csrf,
                Some("That email and password do not match an admin. Check both and try again."),
                &email,
                None,
            ),
            set,
        ),
    }
}

// ---------------------------------------------------------------- overview

async fn overview(
    AdminSession(sess): AdminSession,
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Fields::parse(q.unwrap_or_default().as_bytes());
    let (from, to, range_error) = match day_range(q.get("from"), q.get("to")) {
        Ok((f, t)) => (f, t, None),
        Err(e) => {
            let (f, t) = day_range(None, None).unwrap_or((0, 0));
            (f, t, Some(e))
        }
    };
    let result = async {
        let (days, _) = s.store.analytics(from, to, None).await?;
        let conv = s.store.conversions_per_day(s.program.id, from, to).await?;
        let flagged = s.store.flagged_reasons(from, to).await?;
        let affiliates = s.store.affiliates(false).await?;
        let kiosks = crate::kiosks::admin::kiosks_of(&s, None).await?;
        Ok::<_, crate::store::StoreError>((days, conv, flagged, affiliates, kiosks))
    }
    .await;
    let (days, conv, flagged, affiliates, kiosks) = match result {
        Ok(v) => v,
        Err(e) => return server_error(&e.to_string()),
    };
    let n_days = usize::try_from(to - from + 1).unwrap_or(0);
    let labels: Vec<String> = (from..=to).map(tapkit_core::date::format_date).collect();
    let mut per_day = vec![vec![0i64; 4]; n_days];
    let mut conv_day = vec![vec![0i64; 1]; n_days];
    let mut by_channel = [0i64; 4];
    let (mut clicks, mut attributed, mut visitors, mut flagged_n, mut previews) = (0, 0, 0, 0, 0);
    let mut per_aff: std::collections::BTreeMap<i64, [i64; 5]> = Default::default();
    for d in &days {
        if let Some(row) = usize::try_from(d.day - from)
            .ok()
            .and_then(|i| per_day.get_mut(i))
        {
            for (k, v) in d.by_channel.iter().enumerate() {
                row[k] += v;
            }
        }
        for (k, v) in d.by_channel.iter().enumerate() {
            by_channel[k] += v;
        }
        clicks += d.clicks;
        attributed += d.attributed;
        visitors += d.visitors;
        flagged_n += d.flagged;
        previews += d.previews;
        let e = per_aff.entry(d.affiliate_id).or_default();
        e[0] += d.clicks;
        e[1] += d.attributed;
        e[2] += d.visitors;
        e[3] += d.flagged;
        e[4] += d.previews;
    }
    let mut conversions = 0;
    for (day, n) in &conv {
        if let Some(row) = usize::try_from(day - from)
            .ok()
            .and_then(|i| conv_day.get_mut(i))
        {
            row[0] += n;
        }
        conversions += n;
    }
    let names: std::collections::HashMap<i64, &Affiliate> =
        affiliates.iter().map(|a| (a.id, a)).collect();
    let now = now_ms();
    let online = kiosks
        .iter()
        .filter(|k| crate::kiosks::admin::is_online(&s, k, now))
        .count();
    let active_kiosks = kiosks.iter().filter(|k| k.status == "active").count();
    let series: Vec<&str> = CHANNELS.iter().map(|c| channel_name(c)).collect();
    let body = html! {
        h1 { "Overview" }
        @if let Some(e) = &range_error { (error_notice(e)) }
        form.row method="get" action="/admin" aria-label="Date range" {
            div { label for="from" { "From" } input id="from" name="from" type="date" value=(tapkit_core::date::format_date(from)); }
            div { label for="to" { "To" } input id="to" name="to" type="date" value=(tapkit_core::date::format_date(to)); }
            div { button type="submit" class="secondary" { "Show" } }
        }
        h2 { "Totals" }
        div.cards {
            div.stat { span.v { (clicks) } "clicks" }
            div.stat { span.v { (visitors) } "unique visitors" }
            div.stat { span.v { (attributed) } "attributed clicks" }
            div.stat { span.v { (conversions) } "conversions" }
            div.stat { span.v { (flagged_n) } "flagged (not counted)" }
            div.stat { span.v { (previews) } "link previews (not counted)" }
            div.stat { span.v { (online) " / " (active_kiosks) } "counter displays online" }
        }
        h2 { "Clicks per day, by channel" }
        (chart::stacked_bars("clicks-day", "Clicks per day by channel", &labels, &series, &per_day))
        h2 { "Conversions per day" }
        (chart::stacked_bars("conv-day", "Attributed conversions per day", &labels, &["Conversions"], &conv_day))
        h2 { "Clicks by channel" }
        (chart::hbars("by-channel", "Clicks by channel", &CHANNELS.iter().zip(by_channel).map(|(c, v)| (channel_name(c).to_owned(), v)).collect::<Vec<_>>()))
        h2 { "By affiliate" }
        @if per_aff.is_empty() {
            p.muted { "No clicks in this range." }
        } @else {
            div.scroll { table {
                caption.muted { "Flagged traffic and previews are shown apart and never counted as clicks." }
                thead { tr {
                    th scope="col" { "Affiliate" } th.n scope="col" { "Clicks" } th.n scope="col" { "Attributed" }
                    th.n scope="col" { "Visitors" } th.n scope="col" { "Flagged" } th.n scope="col" { "Previews" }
                } }
                tbody {
                    @for (id, v) in &per_aff {
                        tr {
                            th scope="row" { a href={"/admin/affiliates/" (id)} { (names.get(id).map_or("(unknown)", |a| a.name.as_str())) } }
                            td.n { (v[0]) } td.n { (v[1]) } td.n { (v[2]) } td.n { (v[3]) } td.n { (v[4]) }
                        }
                    }
                }
            } }
        }
        h2 { "Flagged traffic" }
        @if flagged.is_empty() {
            p.muted { "Nothing flagged in this range." }
        } @else {
            div.scroll { table {
                thead { tr { th scope="col" { "Kind" } th scope="col" { "Reason" } th.n scope="col" { "Count" } } }
                tbody { @for r in &flagged { tr {
                    td { @if r.outcome == "preview" { "Link preview" } @else { "Flagged" } }
                    td { (reason_text(&r.reason)) }
                    td.n { (r.n) }
                } } }
            } }
        }
    };
    shell(&s, &sess, "Overview", "/admin", body)
}

fn reason_text(r: &str) -> String {
    match r {
        "rate_limited" => "Too many clicks from one address (rate limit)".into(),
        "replayed_counter" => "Card tap counter did not increase (copied or replayed URL)".into(),
        "preview" | "" => "Link preview or crawler".into(),
        other => other.replace('_', " "),
    }
}

// ---------------------------------------------------------------- affiliates

async fn affiliates(
    AdminSession(sess): AdminSession,
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Fields::parse(q.unwrap_or_default().as_bytes());
    list_page(&s, &sess, &q, None, &Fields::default(), StatusCode::OK).await
}

async fn list_page(
    s: &AppState,
    sess: &Session,
    q: &Fields,
    error: Option<String>,
    form: &Fields,
    status: StatusCode,
) -> Response {
    let all = match s.store.affiliates(false).await {
        Ok(a) => a,
        Err(e) => return server_error(&e.to_string()),
    };
    let search = q.get("q").unwrap_or("").trim().to_lowercase();
    let want = q.get("status").unwrap_or("");
    let list: Vec<&Affiliate> = all
        .iter()
        .filter(|a| {
            search.is_empty()
                || a.name.to_lowercase().contains(&search)
                || a.code.to_lowercase().contains(&search)
                || a.contact
                    .as_deref()
                    .is_some_and(|c| c.to_lowercase().contains(&search))
        })
        .filter(|a| want.is_empty() || a.status == want)
        .collect();
    let kind = form.get("kind").unwrap_or("business");
    let body = html! {
        h1 { "Affiliates" }
        (done_notice(q))
        form.row method="get" action="/admin/affiliates" role="search" {
            div { label for="q" { "Search" } input id="q" name="q" type="search" value=(q.get("q").unwrap_or("")) placeholder="name, code or contact"; }
            div {
                label for="status" { "Status" }
                select id="status" name="status" {
                    option value="" selected[want.is_empty()] { "Any" }
                    option value="active" selected[want == "active"] { "Active" }
                    option value="suspended" selected[want == "suspended"] { "Suspended" }
                }
            }
            div { button type="submit" class="secondary" { "Search" } }
        }
        p.muted { (list.len()) " of " (all.len()) " affiliates" }
        div.scroll { table {
            thead { tr {
                th scope="col" { "Name" } th scope="col" { "Code" } th scope="col" { "Kind" }
                th scope="col" { "Status" } th scope="col" { "Created" }
            } }
            tbody { @for a in &list { tr {
                th scope="row" { a href={"/admin/affiliates/" (a.id)} { (a.name) } }
                td { code { (a.code) } }
                td { (a.kind) }
                td { (status_badge(&a.status)) }
                td { (date(a.created_at)) }
            } } }
        } }
        h2 id="new" { "New affiliate" }
        @if let Some(e) = &error { (error_notice(e)) }
        form.panel method="post" action="/admin/affiliates" aria-labelledby="new" {
            (csrf_field(sess))
            label for="name" { "Name" }
            input id="name" name="name" required maxlength="200" value=(form.get("name").unwrap_or(""));
            label for="kind" { "Kind" }
            select id="kind" name="kind" {
                option value="business" selected[kind == "business"] { "Business partner" }
                option value="influencer" selected[kind == "influencer"] { "Influencer" }
                option value="customer" selected[kind == "customer"] { "Customer" }
            }
            label for="contact" { "Contact (email or phone; optional)" }
            input id="contact" name="contact" maxlength="200" value=(form.get("contact").unwrap_or(""));
            p { button type="submit" { "Create affiliate" } }
        }
    };
    respond(
        status,
        &page(
            s,
            Role::Admin,
            "Affiliates",
            "/admin/affiliates",
            Some(&sess.csrf),
            body,
        ),
    )
}

fn status_badge(status: &str) -> Markup {
    let class = match status {
        "active" | "online" | "paid" | "approved" | "earned" => "badge ok",
        "suspended" | "offline" | "lost" | "rejected" | "reversed" | "refused" => "badge bad",
        _ => "badge warn",
    };
    html! { span class=(class) { (status) } }
}

async fn create(State(s): State<AppState>, AdminForm(sess, f): AdminForm) -> Response {
    let contact = f.get("contact");
    match crate::api::partners::new_affiliate(
        &s,
        f.get("name").unwrap_or(""),
        f.get("kind").unwrap_or(""),
        contact,
    )
    .await
    {
        Ok(a) => {
            tracing::info!(affiliate = a.id, "affiliate created in the console");
            Redirect::to(&format!("/admin/affiliates/{}?done=created", a.id)).into_response()
        }
        Err(e) => {
            list_page(
                &s,
                &sess,
                &Fields::default(),
                Some(e.message()),
                &f,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

async fn load_affiliate(s: &AppState, raw: &str) -> Result<Affiliate, Response> {
    let not_found = |s: &AppState| {
        message_page(
            s,
            Role::Admin,
            StatusCode::NOT_FOUND,
            "No such affiliate",
            "There is no affiliate with this number.",
            "/admin/affiliates",
        )
    };
    let Ok(id) = raw.parse::<i64>() else {
        return Err(not_found(s));
    };
    match s.store.affiliate(id).await {
        Ok(a) if a.program_id == s.program.id => Ok(a),
        Ok(_) | Err(crate::store::StoreError::NotFound(_)) => Err(not_found(s)),
        Err(e) => Err(server_error(&e.to_string())),
    }
}

async fn affiliate(
    AdminSession(sess): AdminSession,
    State(s): State<AppState>,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let a = match load_affiliate(&s, &raw).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let q = Fields::parse(q.unwrap_or_default().as_bytes());
    affiliate_page(&s, &sess, &a, &q, None, StatusCode::OK).await
}

async fn affiliate_page(
    s: &AppState,
    sess: &Session,
    a: &Affiliate,
    q: &Fields,
    extra: Option<Markup>,
    status: StatusCode,
) -> Response {
    let result = async {
        let cards = s.store.cards(Some(a.id)).await?;
        let kiosks = crate::kiosks::admin::kiosks_of(s, Some(a.id)).await?;
        let owed = s.store.owed(a.id).await?;
        Ok::<_, crate::store::StoreError>((cards, kiosks, owed))
    }
    .await;
    let (cards, kiosks, owed) = match result {
        Ok(v) => v,
        Err(e) => return server_error(&e.to_string()),
    };
    let now = now_ms();
    let link = crate::api::partners::link_of(s, &a.code);
    let base = format!("/admin/affiliates/{}", a.id);
    let body = html! {
        p { a href="/admin/affiliates" { "← All affiliates" } }
        h1 { (a.name) " " (status_badge(&a.status)) }
        (done_notice(q))
        @if let Some(x) = extra { (x) }
        dl.kv.panel {
            dt { "Code" } dd { code { (a.code) } }
            dt { "Link" } dd { a href=(link) { (link) } }
            dt { "Kind" } dd { (a.kind) }
            dt { "Contact" } dd { (a.contact.as_deref().unwrap_or("—")) }
            dt { "Tier" } dd { (a.tier.as_deref().unwrap_or("by volume")) }
            dt { "Owed" } dd {
                @if owed.is_empty() { "nothing" }
                @for (i, o) in owed.iter().enumerate() { @if i > 0 { ", " } (money(o.amount_minor, &o.unit)) }
            }
            dt { "Created" } dd { (when(a.created_at)) }
        }
        h2 { "Actions" }
        div.row {
            @if a.status == "active" {
                (button_form(sess, &format!("{base}/suspend"), "Suspend", "danger"))
            } @else {
                (button_form(sess, &format!("{base}/reactivate"), "Reactivate", ""))
            }
            (button_form(sess, &format!("{base}/sign-in-link"), "Make a portal sign-in link", "secondary"))
        }
        h3 id="kill" { "Channels" }
        p.muted { "Turning a channel off keeps the redirect working but stops attribution through it." }
        ul {
            @for c in CHANNELS {
                li { (channel_name(c)) ": "
                    @if s.directory.killed(a.id, c) { (status_badge("off")) } @else { (status_badge("active")) }
                }
            }
        }
        form.row method="post" action={(base) "/kill"} aria-labelledby="kill" {
            (csrf_field(sess))
            div {
                label for="channel" { "Channel to turn off" }
                select id="channel" name="channel" {
                    @for c in CHANNELS { option value=(c) { (channel_name(c)) } }
                }
            }
            div { button type="submit" class="danger" { "Turn off" } }
        }
        h2 { "Cards" }
        @if cards.is_empty() {
            p.muted { "No card yet: it is listed under " a href="/admin/provisioning" { "Provisioning" } "." }
        } @else {
            div.scroll { table {
                thead { tr { th scope="col" { "UID" } th scope="col" { "Status" } th scope="col" { "Provisioned" } th.n scope="col" { "Last tap counter" } } }
                tbody { @for c in &cards { tr {
                    td { code { (c.uid) } }
                    td { (status_badge(&c.status)) }
                    td { (when(c.provisioned_at)) }
                    td.n { (c.last_counter.map(|v| v.to_string()).unwrap_or_else(|| "—".into())) }
                } } }
            } }
        }
        h2 { "Counter displays" }
        @if kiosks.is_empty() {
            p.muted { "None." }
        } @else {
            div.scroll { table {
                thead { tr { th scope="col" { "Name" } th scope="col" { "Status" } th scope="col" { "Last seen" } th scope="col" { "Last problem" } } }
                tbody { @for k in &kiosks { tr {
                    td { (k.name) }
                    td { @if k.status == "retired" { (status_badge("retired")) } @else if crate::kiosks::admin::is_online(s, k, now) { (status_badge("online")) } @else { (status_badge("offline")) } }
                    td { (k.last_seen.map(when).unwrap_or_else(|| "never".into())) }
                    td { (k.last_error.as_deref().unwrap_or("—")) }
                } } }
            } }
        }
    };
    respond(
        status,
        &page(
            s,
            Role::Admin,
            &a.name,
            "/admin/affiliates",
            Some(&sess.csrf),
            body,
        ),
    )
}

async fn affiliate_action(
    State(s): State<AppState>,
    Path((raw, action)): Path<(String, String)>,
    AdminForm(sess, f): AdminForm,
) -> Response {
    let a = match load_affiliate(&s, &raw).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let back = |done: &str| {
        Redirect::to(&format!("/admin/affiliates/{}?done={done}", a.id)).into_response()
    };
    let result: Result<Response, ApiError> = match action.as_str() {
        "suspend" => crate::api::partners::set_status(&s, a.id, "suspended")
            .await
            .map(|_| back("suspended")),
        "reactivate" => crate::api::partners::set_status(&s, a.id, "active")
            .await
            .map(|_| back("reactivated")),
        "kill" => {
            crate::api::partners::kill_channel(&s, Some(a.id), f.get("channel").unwrap_or(""))
                .await
                .map(|()| back("killed"))
        }
        "sign-in-link" => {
            let url = match make_link(&s, Role::Partner, a.id, ADMIN_MADE_LINK_MS).await {
                Ok(u) => u,
                Err(e) => return server_error(&e.to_string()),
            };
            // No mail server: the admin hands the link over, and the log keeps it (as
            // the issue asks) for an admin working from the server's console.
            let emailed = match a.contact.as_deref().filter(|c| c.contains('@')) {
                Some(to) => super::auth::send_link(&s, to, &a.name, &url).await,
                None => Ok(false),
            };
            if !matches!(emailed, Ok(true)) {
                tracing::info!(affiliate = a.id, link = %url, "partner sign-in link made (no email sent)");
            }
            let extra = html! {
                div.panel.notice.ok role="status" {
                    h2 { "Sign-in link for " (a.name) }
                    @match &emailed {
                        Ok(true) => p { "Emailed to " (a.contact.as_deref().unwrap_or("")) ". You can also hand it over yourself:" },
                        Ok(false) => p { "No email was sent (no mail server is configured, or the contact is not an email address). Send this link to the partner yourself:" },
                        Err(e) => p { "Emailing it failed (" (e) "). Send this link to the partner yourself:" },
                    }
                    div.linkbox {
                        label.muted for="signin-link" { "Sign-in link (works once, for 7 days)" }
                        input id="signin-link" readonly value=(url);
                    }
                }
            };
            return affiliate_page(
                &s,
                &sess,
                &a,
                &Fields::default(),
                Some(extra),
                StatusCode::OK,
            )
            .await;
        }
        _ => Err(ApiError::NotFound("action")),
    };
    match result {
        Ok(r) => {
            tracing::info!(affiliate = a.id, action = %action, "console action");
            r
        }
        Err(e) => {
            let extra = error_notice(&e.message());
            affiliate_page(
                &s,
                &sess,
                &a,
                &Fields::default(),
                Some(extra),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

// ---------------------------------------------------------------- provisioning

async fn provisioning(
    AdminSession(sess): AdminSession,
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Fields::parse(q.unwrap_or_default().as_bytes());
    let need = match s.store.affiliates(true).await {
        Ok(a) => a,
        Err(e) => return server_error(&e.to_string()),
    };
    let need: Vec<&Affiliate> = need.iter().filter(|a| a.status == "active").collect();
    let body = html! {
        h1 { "Provisioning" }
        @if let Some(e) = q.get("error") { @if e == "none" { (error_notice("Choose at least one affiliate for the PDF.")) } }
        p.lead { (need.len()) " active affiliates still need a card." }
        @if need.is_empty() {
            p { "Every active affiliate has a card." }
        } @else {
            form method="get" action="/admin/provisioning/cards.pdf" {
                div.scroll { table {
                    thead { tr { th scope="col" { "Print" } th scope="col" { "Name" } th scope="col" { "Code" } th scope="col" { "Kind" } th scope="col" { "Since" } } }
                    tbody { @for a in &need { tr {
                        td { input type="checkbox" name="id" value=(a.id) checked id={"p" (a.id)} aria-label={"Print " (a.name)}; }
                        td { label for={"p" (a.id)} style="font-weight:400;margin:0" { (a.name) } }
                        td { code { (a.code) } }
                        td { (a.kind) }
                        td { (date(a.created_at)) }
                    } } }
                } }
                div.row {
                    div {
                        label for="layout" { "Layout" }
                        select id="layout" name="layout" {
                            option value="a4" { "A4 sheets, 10 cards" }
                            option value="letter" { "US Letter sheets, 8 cards" }
                            option value="sra3" { "SRA3 sheets, 21 cards" }
                            option value="per-card" { "One card per page (card makers)" }
                        }
                    }
                    div { button type="submit" { "Download print PDF" } }
                }
            }
            p.muted { "Cards are encoded at the reader with " code { "provisioner provision --server …" } "; a card registered there leaves this list." }
        }
    };
    shell(&s, &sess, "Provisioning", "/admin/provisioning", body)
}

/// Renders the print PDF of some affiliates (blocking work off the async threads).
pub async fn print_pdf(
    s: &AppState,
    list: Vec<Affiliate>,
    kind: tapkit_print::layout::SheetKind,
) -> Result<Vec<u8>, String> {
    let domain = s.config.program.domain.clone();
    tokio::task::spawn_blocking(move || {
        let t = tapkit_print::template::Template::builtin()?;
        let cards: Vec<tapkit_print::CardSpec> = list
            .iter()
            .map(|a| tapkit_print::CardSpec {
                name: a.name.clone(),
                code: a.code.clone(),
                kind: a.kind.clone(),
                nfc_url: format!("https://{domain}/r/{}", a.code),
            })
            .collect();
        tapkit_print::render_pdf(&cards, &domain, &t, kind, false)
            .map(|(pdf, _, _)| pdf)
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| format!("PDF rendering stopped: {e}"))?
}

async fn cards_pdf(
    AdminSession(_): AdminSession,
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
) -> Response {
    use tapkit_print::layout::SheetKind;
    let q = Fields::parse(q.unwrap_or_default().as_bytes());
    let kind = match q.get("layout").unwrap_or("a4") {
        "a4" => SheetKind::A4,
        "letter" => SheetKind::Letter,
        "sra3" => SheetKind::Sra3,
        "per-card" => SheetKind::PerCard,
        _ => {
            return message_page(
                &s,
                Role::Admin,
                StatusCode::UNPROCESSABLE_ENTITY,
                "Unknown layout",
                "Choose a layout from the list.",
                "/admin/provisioning",
            );
        }
    };
    let mut list = Vec::new();
    for raw in q.all("id") {
        match load_affiliate(&s, raw).await {
            Ok(a) => list.push(a),
            Err(r) => return r,
        }
    }
    if list.is_empty() {
        return Redirect::to("/admin/provisioning?error=none").into_response();
    }
    match print_pdf(&s, list, kind).await {
        Ok(pdf) => download("application/pdf", "partner-cards.pdf", pdf),
        Err(e) => message_page(
            &s,
            Role::Admin,
            StatusCode::UNPROCESSABLE_ENTITY,
            "The PDF cannot be made",
            &e,
            "/admin/provisioning",
        ),
    }
}

// ---------------------------------------------------------------- reviews

async fn reviews(
    AdminSession(sess): AdminSession,
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Fields::parse(q.unwrap_or_default().as_bytes());
    let all = match s.store.reviews(s.program.id, false).await {
        Ok(r) => r,
        Err(e) => return server_error(&e.to_string()),
    };
    let names: std::collections::HashMap<i64, String> = match s.store.affiliates(false).await {
        Ok(a) => a.into_iter().map(|a| (a.id, a.name)).collect(),
        Err(e) => return server_error(&e.to_string()),
    };
    let open: Vec<_> = all.iter().filter(|r| r.decision.is_none()).collect();
    let decided: Vec<_> = all
        .iter()
        .rev()
        .filter(|r| r.decision.is_some())
        .take(50)
        .collect();
    let name = |id: Option<i64>| {
        id.and_then(|i| names.get(&i).cloned())
            .unwrap_or_else(|| "—".into())
    };
    let body = html! {
        h1 { "Review queue" }
        (done_notice(&q))
        (flash_error(&s, &q))
        p.lead { (open.len()) " held conversions wait for a decision. Approved ones earn; rejected ones earn nothing. Decisions are final." }
        @if !open.is_empty() {
            div.scroll { table {
                thead { tr { th scope="col" { "Booking" } th scope="col" { "Affiliate" } th scope="col" { "Why held" } th scope="col" { "Held" } th scope="col" { "Decision" } } }
                tbody { @for r in &open { tr {
                    td { code { (r.booking_id) } }
                    td { (name(r.affiliate_id)) }
                    td { (r.reason.as_str().replace('_', " ")) }
                    td { (when(r.created_at)) }
                    td { div.row {
                        (button_form(&sess, &format!("/admin/reviews/{}/approve", r.id), "Approve", ""))
                        (button_form(&sess, &format!("/admin/reviews/{}/reject", r.id), "Reject", "danger"))
                    } }
                } } }
            } }
        }
        h2 { "Decided" }
        @if decided.is_empty() { p.muted { "None yet." } } @else {
            div.scroll { table {
                thead { tr { th scope="col" { "Booking" } th scope="col" { "Affiliate" } th scope="col" { "Why held" } th scope="col" { "Decision" } th scope="col" { "When" } } }
                tbody { @for r in &decided { tr {
                    td { code { (r.booking_id) } }
                    td { (name(r.affiliate_id)) }
                    td { (r.reason.as_str().replace('_', " ")) }
                    td { (status_badge(r.decision.map_or("", |d| d.as_str()))) }
                    td { (r.decided_at.map(when).unwrap_or_default()) }
                } } }
            } }
        }
    };
    shell(&s, &sess, "Reviews", "/admin/reviews", body)
}

/// Back to `path` with the error's message; the message travels signed so that a
/// crafted link cannot put words of its own into the console.
fn error_redirect(s: &AppState, path: &str, e: &ApiError) -> Response {
    let msg = e.message();
    let enc = |t: &str| -> String {
        t.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    let sig = s.keys.web_mac("console error", &msg);
    Redirect::to(&format!("{path}?error={}&sig={sig}", enc(&msg))).into_response()
}

/// The error a redirect carried, if its signature is good.
fn flash_error(s: &AppState, q: &Fields) -> Markup {
    match (q.get("error"), q.get("sig")) {
        (Some(e), Some(sig)) if s.keys.web_verify("console error", e, sig) => error_notice(e),
        _ => html! {},
    }
}

async fn decide(
    State(s): State<AppState>,
    Path((raw, verdict)): Path<(String, String)>,
    AdminForm(..): AdminForm,
) -> Response {
    // The service the API calls too; the console has checked the session in place of
    // the bearer token.
    let decided = async {
        let (id, v) = reviews::parse_route(&raw, &verdict)?;
        reviews::verdict(&s, id, v, None).await
    };
    match decided.await {
        Ok(d) => Redirect::to(&format!("/admin/reviews?done={}", d.decision)).into_response(),
        Err(e) => error_redirect(&s, "/admin/reviews", &e),
    }
}

// ---------------------------------------------------------------- payouts

async fn payouts(
    AdminSession(sess): AdminSession,
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Fields::parse(q.unwrap_or_default().as_bytes());
    let periods = match s.store.closed_periods(s.program.id).await {
        Ok(p) => p,
        Err(e) => return server_error(&e.to_string()),
    };
    let shown = q
        .get("period")
        .map(str::to_owned)
        .or_else(|| periods.first().map(|(p, _)| p.clone()));
    let lines = match &shown {
        Some(p) if periods.iter().any(|(x, _)| x == p) => {
            match s.store.payout_lines(s.program.id, p).await {
                Ok(l) => l,
                Err(e) => return server_error(&e.to_string()),
            }
        }
        _ => Vec::new(),
    };
    let last_month = {
        let (y, m, _) = tapkit_core::date::civil_from_days(now_ms() / 86_400_000);
        if m == 1 {
            format!("{}-12", y - 1)
        } else {
            format!("{y}-{:02}", m - 1)
        }
    };
    let body = html! {
        h1 { "Payouts" }
        (done_notice(&q))
        (flash_error(&s, &q))
        h2 id="close" { "Close a month" }
        p.muted { "Closing a month computes each partner's payout from the ledger (earned minus reversals, after the holding period and the minimum). Closing again shows the same report." }
        form.row method="post" action="/admin/payouts/close" aria-labelledby="close" {
            (csrf_field(&sess))
            div { label for="period" { "Month" } input id="period" name="period" type="month" required value=(last_month) pattern="[0-9]{4}-[0-9]{2}"; }
            div { button type="submit" { "Close month" } }
        }
        h2 { "Closed months" }
        @if periods.is_empty() { p.muted { "No month is closed yet." } } @else {
            div.scroll { table {
                thead { tr { th scope="col" { "Month" } th scope="col" { "Closed" } th scope="col" { "Report" } } }
                tbody { @for (p, at) in &periods { tr {
                    th scope="row" { a href={"/admin/payouts?period=" (p)} { (p) } }
                    td { (when(*at)) }
                    td { a href={"/admin/periods/" (p) ".csv"} { "CSV" } " · " a href={"/admin/periods/" (p) ".pdf"} { "PDF" } }
                } } }
            } }
        }
        @if let Some(p) = &shown { @if !lines.is_empty() {
            h2 { "Payouts for " (p) }
            div.scroll { table {
                thead { tr {
                    th scope="col" { "Partner" } th.n scope="col" { "Earned" } th.n scope="col" { "Reversed" }
                    th.n scope="col" { "Payout" } th.n scope="col" { "Carried" } th scope="col" { "Paid" }
                } }
                tbody { @for l in &lines { tr {
                    th scope="row" { (l.name) " " span.muted { "(" (l.code) ")" } }
                    td.n { (money(l.earned_minor, &l.unit)) }
                    td.n { (money(l.reversed_minor, &l.unit)) }
                    td.n { strong { (money(l.payout_minor, &l.unit)) } }
                    td.n { (money(l.carried_minor, &l.unit)) }
                    td {
                        @if let Some(at) = l.paid_at {
                            (status_badge("paid")) " " (date(at)) @if let Some(r) = &l.paid_reference { " · " (r) }
                        } @else if l.payout_minor > 0 {
                            form.row method="post" action={"/admin/payouts/" (l.id) "/paid"} {
                                (csrf_field(&sess))
                                div { label.muted for={"ref" (l.id)} { "Reference" } input id={"ref" (l.id)} name="reference" maxlength="200" size="12"; }
                                div { button type="submit" { "Mark paid" } }
                            }
                        } @else { span.muted { "nothing to pay" } }
                    }
                } } }
            } }
        } }
    };
    shell(&s, &sess, "Payouts", "/admin/payouts", body)
}

async fn close(State(s): State<AppState>, AdminForm(_, f): AdminForm) -> Response {
    let period = f.get("period").unwrap_or("").trim().to_owned();
    match crate::money::payouts::close(&s, &period, now_ms()).await {
        Ok(r) => {
            tracing::info!(period = %r.period, lines = r.lines.len(), "period closed in the console");
            Redirect::to(&format!("/admin/payouts?period={}&done=closed", r.period)).into_response()
        }
        Err(e) => error_redirect(&s, "/admin/payouts", &ApiError::from(e)),
    }
}

async fn paid(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    AdminForm(_, f): AdminForm,
) -> Response {
    let reference = f.get("reference").map(str::trim).filter(|r| !r.is_empty());
    match crate::money::payouts::pay(&s, &raw, reference).await {
        Ok(_) => Redirect::to("/admin/payouts?done=paid").into_response(),
        Err(e) => error_redirect(&s, "/admin/payouts", &e),
    }
}

async fn period_file(
    AdminSession(_): AdminSession,
    State(s): State<AppState>,
    Path(file): Path<String>,
) -> Response {
    let (period, ext) = file.rsplit_once('.').unwrap_or((&file, ""));
    let r = match crate::money::payouts::period_param(period) {
        Ok(p) => crate::money::payouts::closed_report(&s, &p).await,
        Err(e) => Err(e),
    };
    let r = match r {
        Ok(r) => r,
        Err(e) => {
            return message_page(
                &s,
                Role::Admin,
                StatusCode::NOT_FOUND,
                "No such report",
                &e.message(),
                "/admin/payouts",
            );
        }
    };
    match ext {
        "csv" => match crate::money::payouts::csv(&r) {
            Ok(b) => download(
                "text/csv; charset=utf-8",
                &format!("payouts-{period}.csv"),
                b,
            ),
            Err(e) => server_error(&e.to_string()),
        },
        "pdf" => {
            let lines = match s.store.period_commissions(s.program.id, period).await {
                Ok(l) => l,
                Err(e) => return server_error(&e.to_string()),
            };
            let name = s.program.name.clone();
            match tokio::task::spawn_blocking(move || crate::money::payouts::pdf(&r, &name, &lines))
                .await
            {
                Ok(b) => download("application/pdf", &format!("payouts-{period}.pdf"), b),
                Err(e) => server_error(&e.to_string()),
            }
        }
        _ => message_page(
            &s,
            Role::Admin,
            StatusCode::NOT_FOUND,
            "No such report",
            "Reports are .csv or .pdf.",
            "/admin/payouts",
        ),
    }
}

// ---------------------------------------------------------------- exports

async fn exports(
    AdminSession(sess): AdminSession,
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Fields::parse(q.unwrap_or_default().as_bytes());
    let (from, to) = day_range(None, None).unwrap_or((0, 0));
    let body = html! {
        h1 { "Exports" }
        (flash_error(&s, &q))
        p.lead { "CSV files for a date range (UTC, both days included). They hold no IP hashes, user agents or customer data." }
        @for (file, label) in [("clicks.csv", "Clicks (taps and scans)"), ("conversions.csv", "Conversions (webhook events)"), ("commissions.csv", "Commissions")] {
            @let id = file.trim_end_matches(".csv");
            form.row.panel method="get" action={"/admin/exports/" (file)} aria-labelledby={"h-" (id)} {
                h2 id={"h-" (id)} style="width:100%;margin:0" { (label) }
                div { label for={"from-" (id)} { "From" } input id={"from-" (id)} name="from" type="date" required value=(tapkit_core::date::format_date(from)); }
                div { label for={"to-" (id)} { "To" } input id={"to-" (id)} name="to" type="date" required value=(tapkit_core::date::format_date(to)); }
                div { button type="submit" { "Download CSV" } }
            }
        }
    };
    shell(&s, &sess, "Exports", "/admin/exports", body)
}

async fn export(
    AdminSession(_): AdminSession,
    State(s): State<AppState>,
    Path(file): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let Some(which) = Export::parse(&file) else {
        return message_page(
            &s,
            Role::Admin,
            StatusCode::NOT_FOUND,
            "No such export",
            "Exports are clicks.csv, conversions.csv and commissions.csv.",
            "/admin/exports",
        );
    };
    let q = Fields::parse(q.unwrap_or_default().as_bytes());
    let (from, to) = match day_range(q.get("from"), q.get("to")) {
        Ok(r) => r,
        Err(e) => return error_redirect(&s, "/admin/exports", &ApiError::field("from", e)),
    };
    let (header_row, rows) = match s
        .store
        .export_rows(
            which,
            s.program.id,
            from * 86_400_000,
            (to + 1) * 86_400_000,
        )
        .await
    {
        Ok(r) => r,
        Err(e) => return server_error(&e.to_string()),
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut write = || -> Result<Vec<u8>, String> {
        w.write_record(&header_row).map_err(|e| e.to_string())?;
        for r in &rows {
            // Cells that a spreadsheet would run as a formula are defused.
            w.write_record(r.iter().map(|c| {
                if c.parse::<i64>().is_ok() {
                    c.clone()
                } else {
                    crate::money::payouts::cell(c)
                }
            }))
            .map_err(|e| e.to_string())?;
        }
        w.flush().map_err(|e| e.to_string())?;
        Ok(Vec::new())
    };
    if let Err(e) = write() {
        return server_error(&e);
    }
    match w.into_inner() {
        Ok(bytes) => download(
            "text/csv; charset=utf-8",
            &format!(
                "{}-{}-to-{}.csv",
                which.name(),
                tapkit_core::date::format_date(from),
                tapkit_core::date::format_date(to)
            ),
            bytes,
        ),
        Err(e) => server_error(&e.to_string()),
    }
}

// ---------------------------------------------------------------- program

fn reward_text(c: &crate::money::rules::Commission, r: &crate::money::rules::Reward) -> String {
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

async fn program(AdminSession(sess): AdminSession, State(s): State<AppState>) -> Response {
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
