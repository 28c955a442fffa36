//! Provisioning: which partners still need a card, and the print PDF of their cards.

use super::prelude::*;

use crate::store::Affiliate;
use crate::web::auth::{AdminSession, Role};
use crate::web::{date, download, message_page, shell};

pub(super) async fn provisioning(
    AdminSession(sess): AdminSession,
    State(s): State<AppState>,
    QueryFields(q): QueryFields,
) -> Result<Response, WebError> {
    let need = s.store.affiliates(true).await?;
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
    Ok(shell(
        &s,
        &sess,
        "Provisioning",
        "/admin/provisioning",
        body,
    ))
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
                member: false,
            })
            .collect();
        tapkit_print::render_pdf(&cards, &domain, &t, kind, false)
            .map(|(pdf, _)| pdf)
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| format!("PDF rendering stopped: {e}"))?
}

pub(super) async fn cards_pdf(
    AdminSession(_): AdminSession,
    State(s): State<AppState>,
    QueryFields(q): QueryFields,
) -> Response {
    use tapkit_print::layout::SheetKind;
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
            Err(e) => return e.into_response(),
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
