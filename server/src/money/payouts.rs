//! Month close and payout reports.
//!
//! Closing `YYYY-MM` (after the month has ended, and after every earlier month with
//! ledger activity) computes, per affiliate and unit: what was owed at the start of the
//! month, what was earned and reversed in it, what is still inside its holding period,
//! and pays out the rest when it reaches the program's minimum (cash; credit and
//! vouchers are always issued). Each payout is a ledger transaction
//! `partner_payable → payouts_due` in the closed month; then the period is frozen (the
//! database refuses any later transaction in it: corrections land in the next open
//! month). The report lines are stored, so closing again returns the same report, and
//! the CSV and PDF are rendered from them.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;
use tapkit_core::date::{format_date, parse_month};
use tapkit_print::report::{
    Block, Chapter, Column, MARGIN_MM, ReportFonts, Row, Style, Table, TextReport,
};

use crate::AppState;
use crate::api::Admin;
use crate::api::ApiError;
use crate::money::posting::{period_for, settlement_account};
use crate::store::ledger::{NewTransaction, PayoutLine, PeriodCommission, Posting};
use crate::store::vocab::{Account, TransactionKind};
use crate::store::{StoreError, now_ms};

/// Why a period cannot be closed.
#[derive(Debug, thiserror::Error)]
pub enum CloseError {
    /// Not `YYYY-MM`.
    #[error("period {0:?} is not a month like 2026-10")]
    BadPeriod(String),
    /// The month is not over.
    #[error("{0} has not ended yet; close it from the 1st of the next month (UTC)")]
    NotEnded(String),
    /// An earlier month is open.
    #[error("{0} has ledger activity and is still open; close it before {1}")]
    EarlierOpen(String, String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<CloseError> for ApiError {
    fn from(e: CloseError) -> Self {
        match e {
            CloseError::BadPeriod(_) => ApiError::field("period", e.to_string()),
            CloseError::NotEnded(_) | CloseError::EarlierOpen(..) => {
                ApiError::Conflict(e.to_string())
            }
            CloseError::Store(s) => s.into(),
        }
    }
}

/// A closed period's report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// `YYYY-MM`.
    pub period: String,
    /// Closed, Unix ms.
    pub closed_at: i64,
    /// Lines by affiliate then unit.
    pub lines: Vec<PayoutLine>,
}

/// Closes a period (idempotent: an already closed period returns its stored report).
pub async fn close(s: &AppState, period: &str, now: i64) -> Result<Report, CloseError> {
    let (_, end) = parse_month(period).ok_or_else(|| CloseError::BadPeriod(period.into()))?;
    let pid = s.program.id;
    if let Some(closed_at) = s.store.period_closed_at(pid, period).await? {
        return Ok(report(s, period, closed_at).await?);
    }
    if now < end {
        return Err(CloseError::NotEnded(period.into()));
    }
    let mut tx = s.store.begin_money(pid).await?;
    if !tx.is_closed(period).await? {
        if let Some(open) = tx.earlier_open_period(period).await? {
            return Err(CloseError::EarlierOpen(open, period.into()));
        }
        let balances = tx.period_balances(period).await?;
        let held = tx.held_back(period, end).await?;
        let minimum = s.config.program.commission.minimum_payout_minor;
        let cash = s.config.program.commission.currency.as_str();
        let mut by_affiliate: Vec<(i64, Vec<PayoutLine>)> = Vec::new();
        for b in balances {
            let (affiliate_id, unit) = (b.affiliate_id, b.unit);
            let (opening, earned, reversed) = (b.opening_minor, b.earned_minor, b.reversed_minor);
            let balance = opening + earned - reversed;
            if opening == 0 && earned == 0 && reversed == 0 {
                continue;
            }
            let held_minor = held
                .iter()
                .find(|h| h.affiliate_id == affiliate_id && h.unit == unit)
                .map_or(0, |h| h.held_minor)
                .clamp(0, balance.max(0));
            let available = balance - held_minor;
            let payout = if available > 0 && (unit != cash || available >= minimum) {
                available
            } else {
                0
            };
            let line = PayoutLine {
                id: 0,
                period: period.into(),
                affiliate_id,
                code: String::new(),
                name: String::new(),
                unit: unit.clone(),
                opening_minor: opening,
                earned_minor: earned,
                reversed_minor: reversed,
                held_minor,
                payout_minor: payout,
                carried_minor: balance - payout,
                paid_at: None,
                paid_reference: None,
            };
            match by_affiliate.last_mut() {
                Some((a, lines)) if *a == affiliate_id => lines.push(line),
                _ => by_affiliate.push((affiliate_id, vec![line])),
            }
        }
        for (affiliate_id, lines) in &by_affiliate {
            let postings: Vec<Posting> = lines
                .iter()
                .filter(|l| l.payout_minor > 0)
                .flat_map(|l| {
                    [
                        Posting {
                            account: Account::PartnerPayable,
                            affiliate_id: Some(*affiliate_id),
                            unit: l.unit.clone(),
                            amount_minor: l.payout_minor,
                        },
                        Posting {
                            account: Account::PayoutsDue,
                            affiliate_id: Some(*affiliate_id),
                            unit: l.unit.clone(),
                            amount_minor: -l.payout_minor,
                        },
                    ]
                })
                .collect();
            let txn = if postings.is_empty() {
                None
            } else {
                Some(
                    tx.post(
                        &NewTransaction {
                            period,
                            kind: TransactionKind::Payout,
                            affiliate_id: Some(*affiliate_id),
                            booking_ref: None,
                            memo: format!("payout for {period}"),
                            postings,
                        },
                        now,
                    )
                    .await?,
                )
            };
            for l in lines {
                tx.add_payout(period, l, txn.filter(|_| l.payout_minor > 0))
                    .await?;
            }
        }
        tx.close_period(period, now).await?;
        tx.commit().await?;
    }
    let closed_at = s.store.period_closed_at(pid, period).await?.unwrap_or(now);
    Ok(report(s, period, closed_at).await?)
}

async fn report(s: &AppState, period: &str, closed_at: i64) -> Result<Report, StoreError> {
    Ok(Report {
        period: period.into(),
        closed_at,
        lines: s.store.payout_lines(s.program.id, period).await?,
    })
}

/// Formats minor units of a unit for people: `1234.50 USD`, `3 × free-basic-service`.
pub fn money(amount: i64, unit: &str) -> String {
    if let Some(v) = unit.strip_prefix("voucher:") {
        return format!("{amount} x {v}");
    }
    let (code, suffix) = match unit.strip_prefix("credit:") {
        Some(c) => (c, " credit"),
        None => (unit, ""),
    };
    let sign = if amount < 0 { "-" } else { "" };
    let a = amount.unsigned_abs();
    format!("{sign}{}.{:02} {code}{suffix}", a / 100, a % 100)
}

/// Spreadsheet-safe CSV cell: text starting with = + - @ is prefixed with ' so that a
/// partner named "=HYPERLINK(…)" cannot run a formula in the accountant's spreadsheet.
pub fn cell(v: &str) -> String {
    if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{v}")
    } else {
        v.to_owned()
    }
}

/// The report as CSV (one line per affiliate and unit).
pub fn csv(r: &Report) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "period",
        "affiliate_id",
        "code",
        "name",
        "unit",
        "opening_minor",
        "earned_minor",
        "reversed_minor",
        "held_minor",
        "payout_minor",
        "carried_minor",
        "payout",
    ])?;
    for l in &r.lines {
        w.write_record([
            l.period.clone(),
            l.affiliate_id.to_string(),
            l.code.clone(),
            cell(&l.name),
            l.unit.clone(),
            l.opening_minor.to_string(),
            l.earned_minor.to_string(),
            l.reversed_minor.to_string(),
            l.held_minor.to_string(),
            l.payout_minor.to_string(),
            l.carried_minor.to_string(),
            money(l.payout_minor, &l.unit),
        ])?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// Totals per unit: (unit, payout, carried).
pub fn totals(r: &Report) -> Vec<(String, i64, i64)> {
    let mut t: Vec<(String, i64, i64)> = Vec::new();
    for l in &r.lines {
        match t.iter_mut().find(|x| x.0 == l.unit) {
            Some(x) => {
                x.1 += l.payout_minor;
                x.2 += l.carried_minor;
            }
            None => t.push((l.unit.clone(), l.payout_minor, l.carried_minor)),
        }
    }
    t.sort();
    t
}

fn row(cells: &[&str], bold: bool) -> Row {
    Row {
        cells: cells.iter().map(|c| (*c).to_owned()).collect(),
        bold,
    }
}

fn table(columns: &[(f32, &str)], size_pt: f32, row_gap_mm: f32, rows: Vec<Row>) -> Block {
    Block::Table(Table {
        columns: columns.iter().map(|(x, t)| Column::new(*x, t)).collect(),
        size_pt,
        row_gap_mm,
        rows,
        empty: None,
    })
}

/// The report as text-report data: a summary chapter (totals and one row per partner
/// line) and one chapter per partner with its lines and the commissions of the month.
fn pdf_report(r: &Report, program: &str, commissions: &[PeriodCommission]) -> TextReport {
    let title = format!("Payout report {}", r.period);
    let partners = {
        let mut v: Vec<i64> = r.lines.iter().map(|l| l.affiliate_id).collect();
        v.dedup();
        v.len()
    };
    let totals = totals(r)
        .into_iter()
        .map(|(unit, payout, carried)| {
            row(
                &[
                    &format!("Total payout {}", money(payout, &unit)),
                    &format!("carried {}", money(carried, &unit)),
                ],
                false,
            )
        })
        .collect();
    let lines = r
        .lines
        .iter()
        .map(|l| {
            row(
                &[
                    &l.code,
                    &l.name,
                    &money(l.payout_minor, &l.unit),
                    &money(l.carried_minor, &l.unit),
                ],
                false,
            )
        })
        .collect();
    let summary = Chapter {
        running_title: title.clone(),
        blocks: vec![
            Block::line(Style::bold(18.0), &title),
            Block::Space(2.0),
            Block::line(Style::regular(10.0), program),
            Block::Space(1.0),
            Block::paragraph(
                Style::regular(9.0),
                &format!(
                    "Closed {} UTC. Amounts per partner and unit; held = inside the holding period, carried = owed after this payout.",
                    format_date(r.closed_at.div_euclid(86_400_000))
                ),
            ),
            Block::Space(4.0),
            Block::heading(Style::bold(12.0), "Totals"),
            Block::Space(1.0),
            table(&[(MARGIN_MM, ""), (110.0, "")], 10.0, 1.5, totals),
            Block::Space(2.0),
            Block::line(Style::regular(9.0), &format!("{partners} partners")),
            Block::Space(4.0),
            table(
                &[
                    (MARGIN_MM, "Code"),
                    (45.0, "Partner"),
                    (110.0, "Payout"),
                    (155.0, "Carried"),
                ],
                9.0,
                1.0,
                lines,
            ),
        ],
    };
    let mut chapters = vec![summary];
    for lines in r.lines.chunk_by(|a, b| a.affiliate_id == b.affiliate_id) {
        let first = &lines[0];
        let aff = first.affiliate_id;
        let mut blocks = vec![
            Block::line(Style::bold(16.0), &first.name),
            Block::Space(2.0),
            Block::line(
                Style::regular(10.0),
                &format!("Referral code {} - payout report {}", first.code, r.period),
            ),
            Block::Space(4.0),
        ];
        for l in lines {
            let rows = [
                ("Owed at the start of the month", l.opening_minor),
                ("Earned this month", l.earned_minor),
                ("Reversed (refunds, clawbacks)", -l.reversed_minor),
                ("Held (holding period)", l.held_minor),
                ("Payout", l.payout_minor),
                ("Carried to next month", l.carried_minor),
            ]
            .into_iter()
            .map(|(label, v)| row(&[label, &money(v, &l.unit)], label == "Payout"))
            .collect();
            blocks.push(Block::heading(Style::bold(11.0), &l.unit));
            blocks.push(Block::Space(1.0));
            blocks.push(table(
                &[(MARGIN_MM + 4.0, ""), (120.0, "")],
                10.0,
                1.0,
                rows,
            ));
            blocks.push(Block::Space(3.0));
        }
        let mine = commissions
            .iter()
            .filter(|pc| pc.line.affiliate_id == aff)
            .map(|pc| {
                let c = &pc.line;
                row(
                    &[
                        &format_date(c.created_at.div_euclid(86_400_000)),
                        &pc.booking_id,
                        pc.channel.as_deref().unwrap_or(""),
                        c.status.as_str(),
                        &money(c.amount_minor, &c.unit),
                    ],
                    false,
                )
            })
            .collect();
        blocks.push(Block::heading(
            Style::bold(11.0),
            "Commissions on the ledger this month",
        ));
        blocks.push(Block::Space(1.0));
        blocks.push(Block::Table(Table {
            columns: [
                (MARGIN_MM + 4.0, "Date"),
                (45.0, "Booking"),
                (95.0, "Channel"),
                (120.0, "Status"),
                (150.0, "Amount"),
            ]
            .iter()
            .map(|(x, t)| Column::new(*x, t))
            .collect(),
            size_pt: 9.0,
            row_gap_mm: 0.5,
            rows: mine,
            empty: Some("none".into()),
        }));
        chapters.push(Chapter {
            running_title: first.name.clone(),
            blocks,
        });
    }
    TextReport { title, chapters }
}

/// The report as a PDF: a summary page (totals and one row per partner line) and one
/// page per partner with its lines and the commissions of the month (more pages when
/// long, each headed "(continued)"). Set in the print crate's text reports with
/// embedded Liberation Sans, so names print as written; text wider than its column is
/// cut with "…", and a character the font lacks prints as "□" and is logged.
pub fn pdf(r: &Report, program: &str, commissions: &[PeriodCommission]) -> Vec<u8> {
    let out =
        tapkit_print::report::render(&pdf_report(r, program, commissions), ReportFonts::builtin());
    if !out.layout.replaced.is_empty() {
        tracing::warn!(
            period = %r.period,
            missing = ?out.layout.replaced,
            "the payout PDF font has no glyph for some characters; they print as a box"
        );
    }
    out.pdf
}

pub(crate) fn period_param(raw: &str) -> Result<String, ApiError> {
    parse_month(raw).map(|_| raw.to_owned()).ok_or_else(|| {
        ApiError::field(
            "period",
            format!("period {raw:?} is not a month like 2026-10"),
        )
    })
}

pub(crate) async fn closed_report(s: &AppState, period: &str) -> Result<Report, ApiError> {
    match s.store.period_closed_at(s.program.id, period).await? {
        Some(at) => Ok(report(s, period, at).await?),
        None => Err(ApiError::Conflict(format!(
            "{period} is not closed yet; POST /api/admin/periods/{period}/close first"
        ))),
    }
}

/// `POST /api/admin/periods/{period}/close`.
pub async fn close_route(
    _: Admin,
    State(s): State<AppState>,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let period = period_param(&raw)?;
    let r = close(&s, &period, now_ms()).await?;
    tracing::info!(period = %r.period, lines = r.lines.len(), "period closed");
    let totals: Vec<_> = totals(&r)
        .into_iter()
        .map(|(unit, payout, carried)| json!({"unit": unit, "payout_minor": payout, "carried_minor": carried}))
        .collect();
    Ok(Json(json!({
        "period": r.period,
        "closed_at": r.closed_at,
        "totals": totals,
        "lines": r.lines,
        "csv": format!("/api/admin/periods/{period}/payouts.csv"),
        "pdf": format!("/api/admin/periods/{period}/payouts.pdf"),
    })))
}

/// `GET /api/admin/periods`: closed periods, newest first.
pub async fn list_periods(
    _: Admin,
    State(s): State<AppState>,
) -> Result<impl IntoResponse, ApiError> {
    let closed = s.store.closed_periods(s.program.id).await?;
    Ok(Json(
        closed
            .into_iter()
            .map(|(p, at)| json!({"period": p, "closed_at": at}))
            .collect::<Vec<_>>(),
    ))
}

/// `GET /api/admin/periods/{period}/payouts.csv`.
pub async fn csv_route(
    _: Admin,
    State(s): State<AppState>,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let period = period_param(&raw)?;
    let r = closed_report(&s, &period).await?;
    let body = csv(&r).map_err(|e| ApiError::Internal(format!("CSV: {e}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"payouts-{period}.csv\""),
            ),
        ],
        body,
    ))
}

/// `GET /api/admin/periods/{period}/payouts.pdf`.
pub async fn pdf_route(
    _: Admin,
    State(s): State<AppState>,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let period = period_param(&raw)?;
    let r = closed_report(&s, &period).await?;
    let lines = s.store.period_commissions(s.program.id, &period).await?;
    let name = s.program.name.clone();
    let body = tokio::task::spawn_blocking(move || pdf(&r, &name, &lines))
        .await
        .map_err(|e| ApiError::Internal(format!("PDF rendering: {e}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"payouts-{period}.pdf\""),
            ),
        ],
        body,
    ))
}

/// Body of [`mark_paid`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Paid {
    reference: Option<String>,
}

/// `POST /api/admin/payouts/{id}/paid`: the money left (or the credit / vouchers were
/// issued). Posts `payouts_due → cash`; a second call answers 409.
pub async fn mark_paid(
    _: Admin,
    State(s): State<AppState>,
    Path(raw): Path<String>,
    body: axum::body::Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let reference = crate::api::optional_body::<Paid>(&body)?.and_then(|p| p.reference);
    let (id, now) = pay(&s, &raw, reference.as_deref()).await?;
    Ok(Json(
        json!({"payout_id": id, "paid_at": now, "status": "paid"}),
    ))
}

/// Marks a payout paid (the console and the API): its id as given in the URL and the
/// payment's reference. Returns the id and when.
pub async fn pay(s: &AppState, raw: &str, reference: Option<&str>) -> Result<(i64, i64), ApiError> {
    let id: i64 = raw
        .parse()
        .map_err(|_| ApiError::field("id", format!("payout id {raw:?} is not a number")))?;
    if reference.is_some_and(|r| r.len() > 200) {
        return Err(ApiError::field(
            "reference",
            "reference must be at most 200 characters",
        ));
    }
    let now = now_ms();
    let mut tx = s.store.begin_money(s.program.id).await?;
    let p = tx.payout(id).await?;
    let (affiliate_id, unit, amount, period, paid) =
        (p.affiliate_id, p.unit, p.payout_minor, p.period, p.paid);
    if paid {
        return Err(ApiError::Conflict(format!(
            "payout {id} is already marked paid"
        )));
    }
    if amount == 0 {
        return Err(ApiError::Conflict(format!(
            "payout {id} is zero (carried to the next month); nothing to pay"
        )));
    }
    let open = period_for(
        &tapkit_core::date::month_of_ms(now),
        tx.last_closed().await?.as_deref(),
    );
    let txn = tx
        .post(
            &NewTransaction {
                period: &open,
                kind: TransactionKind::Settlement,
                affiliate_id: Some(affiliate_id),
                booking_ref: None,
                memo: format!("payout {id} for {period} paid"),
                postings: vec![
                    Posting {
                        account: Account::PayoutsDue,
                        affiliate_id: Some(affiliate_id),
                        unit: unit.clone(),
                        amount_minor: amount,
                    },
                    Posting {
                        account: settlement_account(&unit),
                        affiliate_id: None,
                        unit: unit.clone(),
                        amount_minor: -amount,
                    },
                ],
            },
            now,
        )
        .await?;
    tx.add_payment(id, reference, txn, now).await?;
    tx.commit().await?;
    Ok((id, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_like_money() {
        assert_eq!(money(123_450, "USD"), "1234.50 USD");
        assert_eq!(money(-5, "EUR"), "-0.05 EUR");
        assert_eq!(money(2500, "credit:USD"), "25.00 USD credit");
        assert_eq!(
            money(2, "voucher:free-basic-service"),
            "2 x free-basic-service"
        );
        assert_eq!(cell("=1+1"), "'=1+1");
        assert_eq!(cell("Joe's Gym"), "Joe's Gym");
    }

    const CAFE: &str = "Café Zürich & Co.";
    const LODZ: &str = "Łódź Książki";
    const LONG: &str = "Centrum Dystrybucji Książek Północ Sp. z o.o.";

    fn line(affiliate_id: i64, name: &str, unit: &str, payout_minor: i64) -> PayoutLine {
        PayoutLine {
            id: affiliate_id,
            period: "2026-05".into(),
            affiliate_id,
            code: format!("P{affiliate_id}-7K2M9Q"),
            name: name.into(),
            unit: unit.into(),
            opening_minor: 0,
            earned_minor: payout_minor,
            reversed_minor: 0,
            held_minor: 0,
            payout_minor,
            carried_minor: 0,
            paid_at: None,
            paid_reference: None,
        }
    }

    fn commission(affiliate_id: i64, i: i64) -> PeriodCommission {
        let c = crate::store::money::CommissionLine {
            id: i,
            booking_ref: i,
            affiliate_id,
            status: crate::store::vocab::CommissionStatus::Earned,
            unit: "USD".into(),
            amount_minor: 250,
            basis_minor: Some(2500),
            tier: None,
            rule: None,
            month: "2026-05".into(),
            payable_at: None,
            transaction_id: None,
            reason: None,
            created_at: 1_778_000_000_000,
        };
        PeriodCommission {
            line: c,
            booking_id: format!("résa-{i}"),
            channel: Some("nfc".into()),
        }
    }

    fn poppler(tool: &str, pdf: &[u8]) -> String {
        let path = std::env::temp_dir().join(format!(
            "tapkit-payout-unit-{}-{tool}.pdf",
            std::process::id()
        ));
        std::fs::write(&path, pdf).unwrap();
        let mut cmd = std::process::Command::new(tool);
        if tool == "pdftotext" {
            cmd.args(["-layout"]).arg(&path).arg("-");
        } else {
            cmd.arg(&path);
        }
        let out = cmd.output().unwrap_or_else(|e| {
            panic!("{tool} (poppler-utils; scripts/install-deps.sh print) is needed: {e}")
        });
        let _ = std::fs::remove_file(&path);
        assert!(out.status.success(), "{tool} failed");
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn pdf_prints_every_name_as_written_in_embedded_fonts() {
        let r = Report {
            period: "2026-05".into(),
            closed_at: 1_780_300_800_000,
            lines: vec![
                line(1, CAFE, "USD", 15_000),
                line(1, CAFE, "credit:USD", 1_000),
                line(2, LODZ, "USD", 2_500),
                line(3, LONG, "USD", 500),
            ],
        };
        // Enough commissions for Café Zürich's list to run onto a second page.
        let commissions: Vec<_> = (0..70)
            .map(|i| commission(1, i))
            .chain([commission(2, 70)])
            .collect();
        let pdf = pdf(&r, "Programme Éte", &commissions);
        let text = poppler("pdftotext", &pdf);
        for want in [
            "Payout report 2026-05",
            "Programme Éte",
            CAFE,
            LODZ,
            // Its own page's title is the whole name ...
            LONG,
            "Referral code P2-7K2M9Q",
            &format!("{CAFE} (continued)"),
            "résa-69",
            "Total payout 180.00 USD",
        ] {
            assert!(text.contains(want), "{want:?} not in the PDF text:\n{text}");
        }
        // ... while the summary's Partner column cuts it at the column's width.
        let summary_row = text
            .lines()
            .find(|l| l.contains("P3-7K2M9Q"))
            .unwrap_or_default();
        assert!(
            summary_row.contains("Centrum Dystrybucji Książek")
                && summary_row.contains('…')
                && !summary_row.contains(LONG),
            "{summary_row:?}"
        );
        assert!(!text.contains('?'), "{text}");
        assert_eq!(text.matches(CAFE).count(), 4, "summary ×2, page, continued");
        assert_eq!(
            text.matches("Referral code").count(),
            3,
            "one page per partner"
        );
        assert_eq!(
            text.matches('\u{c}').count(),
            5,
            "summary + 2 + 1 + 1 pages"
        );
        let fonts = poppler("pdffonts", &pdf);
        let faces: Vec<&str> = fonts.lines().skip(2).collect();
        assert_eq!(faces.len(), 2, "{fonts}");
        for f in faces {
            let cols: Vec<&str> = f.split_whitespace().collect();
            assert!(cols[0].contains("+LiberationSans"), "{fonts}");
            assert_eq!(
                cols[cols.len() - 5..cols.len() - 2],
                ["yes", "yes", "yes"],
                "embedded, subset, with a Unicode map:\n{fonts}"
            );
        }
    }
}
