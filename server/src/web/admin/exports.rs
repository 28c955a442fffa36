//! CSV exports of clicks, conversions, commissions and the ledger.

use super::prelude::*;

use crate::store::web::Export;
use crate::web::auth::{AdminSession, Role};
use crate::web::{day_range, download, message_page, shell};

pub(super) async fn exports(
    AdminSession(sess): AdminSession,
    State(s): State<AppState>,
    QueryFields(q): QueryFields,
) -> Response {
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

pub(super) async fn export(
    AdminSession(_): AdminSession,
    State(s): State<AppState>,
    Path(file): Path<String>,
    QueryFields(q): QueryFields,
) -> Result<Response, WebError> {
    let Some(which) = Export::parse(&file) else {
        return Ok(message_page(
            &s,
            Role::Admin,
            StatusCode::NOT_FOUND,
            "No such export",
            "Exports are clicks.csv, conversions.csv and commissions.csv.",
            "/admin/exports",
        ));
    };
    let (from, to) = match day_range(q.get("from"), q.get("to")) {
        Ok(r) => r,
        Err(e) => {
            return Ok(error_redirect(
                &s,
                "/admin/exports",
                &ApiError::field("from", e),
            ));
        }
    };
    let (header_row, rows) = s
        .store
        .export_rows(
            which,
            s.program.id,
            from * 86_400_000,
            (to + 1) * 86_400_000,
        )
        .await?;
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
        return Err(WebError::internal(e));
    }
    match w.into_inner() {
        Ok(bytes) => Ok(download(
            "text/csv; charset=utf-8",
            &format!(
                "{}-{}-to-{}.csv",
                which.name(),
                tapkit_core::date::format_date(from),
                tapkit_core::date::format_date(to)
            ),
            bytes,
        )),
        Err(e) => Err(WebError::internal(e)),
    }
}
