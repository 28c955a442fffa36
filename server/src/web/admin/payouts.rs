//! Month close and payouts: closed periods, their CSV and PDF reports, marking payouts paid.

use super::prelude::*;

use crate::web::auth::{AdminForm, AdminSession, Role};
use crate::web::{date, download, message_page, money, shell, when};

pub(super) async fn payouts(
    AdminSession(sess): AdminSession,
    State(s): State<AppState>,
    QueryFields(q): QueryFields,
) -> Result<Response, WebError> {
    let periods = s.store.closed_periods(s.program.id).await?;
    let shown = q
        .get("period")
        .map(str::to_owned)
        .or_else(|| periods.first().map(|(p, _)| p.clone()));
    let lines = match &shown {
        Some(p) if periods.iter().any(|(x, _)| x == p) => {
            s.store.payout_lines(s.program.id, p).await?
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
    Ok(shell(&s, &sess, "Payouts", "/admin/payouts", body))
}

pub(super) async fn close(State(s): State<AppState>, AdminForm(_, f): AdminForm) -> Response {
    let period = f.get("period").unwrap_or("").trim().to_owned();
    match crate::money::payouts::close(&s, &period, now_ms()).await {
        Ok(r) => {
            tracing::info!(period = %r.period, lines = r.lines.len(), "period closed in the console");
            Redirect::to(&format!("/admin/payouts?period={}&done=closed", r.period)).into_response()
        }
        Err(e) => error_redirect(&s, "/admin/payouts", &ApiError::from(e)),
    }
}

pub(super) async fn paid(
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

pub(super) async fn period_file(
    AdminSession(_): AdminSession,
    State(s): State<AppState>,
    Path(file): Path<String>,
) -> Result<Response, WebError> {
    let (period, ext) = file.rsplit_once('.').unwrap_or((&file, ""));
    let r = match crate::money::payouts::period_param(period) {
        Ok(p) => crate::money::payouts::closed_report(&s, &p).await,
        Err(e) => Err(e),
    };
    let r = match r {
        Ok(r) => r,
        Err(e) => {
            return Ok(message_page(
                &s,
                Role::Admin,
                StatusCode::NOT_FOUND,
                "No such report",
                &e.message(),
                "/admin/payouts",
            ));
        }
    };
    match ext {
        "csv" => match crate::money::payouts::csv(&r) {
            Ok(b) => Ok(download(
                "text/csv; charset=utf-8",
                &format!("payouts-{period}.csv"),
                b,
            )),
            Err(e) => Err(WebError::internal(e)),
        },
        "pdf" => {
            let lines = s.store.period_commissions(s.program.id, period).await?;
            let name = s.program.name.clone();
            match tokio::task::spawn_blocking(move || crate::money::payouts::pdf(&r, &name, &lines))
                .await
            {
                Ok(b) => Ok(download(
                    "application/pdf",
                    &format!("payouts-{period}.pdf"),
                    b,
                )),
                Err(e) => Err(WebError::internal(e)),
            }
        }
        _ => Ok(message_page(
            &s,
            Role::Admin,
            StatusCode::NOT_FOUND,
            "No such report",
            "Reports are .csv or .pdf.",
            "/admin/payouts",
        )),
    }
}
