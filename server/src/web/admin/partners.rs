//! Affiliates: search and create, one affiliate's page (cards, kiosks, owed, sign-in link), and its actions (suspend, reactivate, kill a channel).

use super::prelude::*;

use crate::store::Affiliate;
use crate::web::auth::{ADMIN_MADE_LINK_MS, AdminForm, AdminSession, Role, Session, make_link};
use crate::web::{Fields, channel_name, date, message_page, money, page, respond, when};

pub(super) async fn affiliates(
    AdminSession(sess): AdminSession,
    State(s): State<AppState>,
    QueryFields(q): QueryFields,
) -> Result<Response, WebError> {
    list_page(&s, &sess, &q, None, &Fields::default(), StatusCode::OK).await
}

pub(super) async fn list_page(
    s: &AppState,
    sess: &Session,
    q: &Fields,
    error: Option<String>,
    form: &Fields,
    status: StatusCode,
) -> Result<Response, WebError> {
    let all = s.store.affiliates(false).await?;
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
    Ok(respond(
        status,
        &page(
            s,
            Role::Admin,
            "Affiliates",
            "/admin/affiliates",
            Some(&sess.csrf),
            body,
        ),
    ))
}

pub(super) fn status_badge(status: &str) -> Markup {
    let class = match status {
        "active" | "online" | "paid" | "approved" | "earned" => "badge ok",
        "suspended" | "offline" | "lost" | "rejected" | "reversed" | "refused" => "badge bad",
        _ => "badge warn",
    };
    html! { span class=(class) { (status) } }
}

pub(super) async fn create(
    State(s): State<AppState>,
    AdminForm(sess, f): AdminForm,
) -> Result<Response, WebError> {
    let contact = f.get("contact");
    match crate::api::partners::new_affiliate(
        &s,
        f.get("name").unwrap_or(""),
        f.get("kind").unwrap_or(""),
        contact,
        None,
    )
    .await
    {
        Ok(a) => {
            tracing::info!(affiliate = a.id, "affiliate created in the console");
            Ok(Redirect::to(&format!("/admin/affiliates/{}?done=created", a.id)).into_response())
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

pub(super) async fn load_affiliate(s: &AppState, raw: &str) -> Result<Affiliate, WebError> {
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
        return Err(not_found(s).into());
    };
    match s.store.affiliate(id).await {
        Ok(a) if a.program_id == s.program.id => Ok(a),
        Ok(_) | Err(crate::store::StoreError::NotFound(_)) => Err(not_found(s).into()),
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn affiliate(
    AdminSession(sess): AdminSession,
    State(s): State<AppState>,
    Path(raw): Path<String>,
    QueryFields(q): QueryFields,
) -> Result<Response, WebError> {
    let a = load_affiliate(&s, &raw).await?;
    affiliate_page(&s, &sess, &a, &q, None, StatusCode::OK).await
}

pub(super) async fn affiliate_page(
    s: &AppState,
    sess: &Session,
    a: &Affiliate,
    q: &Fields,
    extra: Option<Markup>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let result = async {
        let cards = s.store.cards(Some(a.id)).await?;
        let kiosks = crate::kiosks::admin::kiosks_of(s, Some(a.id)).await?;
        let owed = s.store.owed(a.id).await?;
        Ok::<_, crate::store::StoreError>((cards, kiosks, owed))
    }
    .await;
    let (cards, kiosks, owed) = result?;
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
    Ok(respond(
        status,
        &page(
            s,
            Role::Admin,
            &a.name,
            "/admin/affiliates",
            Some(&sess.csrf),
            body,
        ),
    ))
}

pub(super) async fn affiliate_action(
    State(s): State<AppState>,
    Path((raw, action)): Path<(String, String)>,
    AdminForm(sess, f): AdminForm,
) -> Result<Response, WebError> {
    let a = load_affiliate(&s, &raw).await?;
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
            let url = make_link(&s, Role::Partner, a.id, ADMIN_MADE_LINK_MS).await?;
            // No mail server: the admin hands the link over, and the log keeps it (as
            // the issue asks) for an admin working from the server's console.
            let emailed = match a.contact.as_deref().filter(|c| c.contains('@')) {
                Some(to) => crate::web::auth::send_link(&s, Role::Partner, to, &a.name, &url).await,
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
            Ok(r)
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
