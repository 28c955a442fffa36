//! The review queue: open and decided reviews, and the verdict buttons.

use super::prelude::*;

use crate::money::reviews;
use crate::web::auth::{AdminForm, AdminSession};
use crate::web::{shell, when};

pub(super) async fn reviews(
    AdminSession(sess): AdminSession,
    State(s): State<AppState>,
    QueryFields(q): QueryFields,
) -> Result<Response, WebError> {
    let all = s.store.reviews(s.program.id, false).await?;
    let names: std::collections::HashMap<i64, String> = match s.store.affiliates(false).await {
        Ok(a) => a.into_iter().map(|a| (a.id, a.name)).collect(),
        Err(e) => return Err(WebError::internal(e)),
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
    Ok(shell(&s, &sess, "Reviews", "/admin/reviews", body))
}

pub(super) async fn decide(
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
