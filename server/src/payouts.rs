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
use printpdf::{
    BuiltinFont, Mm, Op, PdfDocument, PdfFontHandle, PdfPage, PdfSaveOptions, Point, Pt, TextItem,
};
use serde::Deserialize;
use serde_json::json;
use tapkit_core::date::{format_date, parse_month};

use crate::AppState;
use crate::admin::Admin;
use crate::error::ApiError;
use crate::ledger::{
    CommissionLine, NewTransaction, PARTNER, PAYOUTS_DUE, PayoutLine, Posting, settlement_account,
};
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
        for (affiliate_id, unit, opening, earned, reversed) in balances {
            let balance = opening + earned - reversed;
            if opening == 0 && earned == 0 && reversed == 0 {
                continue;
            }
            let held_minor = held
                .iter()
                .find(|(a, u, _)| *a == affiliate_id && *u == unit)
                .map_or(0, |h| h.2)
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
                            account: PARTNER,
                            affiliate_id: Some(*affiliate_id),
                            unit: l.unit.clone(),
                            amount_minor: l.payout_minor,
                        },
                        Posting {
                            account: PAYOUTS_DUE,
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
                            kind: "payout",
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

/// PDF text is WinAnsi with the builtin Helvetica: anything else becomes '?'.
fn pdf_text(s: &str) -> String {
    s.chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect()
}

struct Page {
    ops: Vec<Op>,
    y: f32,
}

const A4_W: f32 = 210.0;
const A4_H: f32 = 297.0;
const MARGIN: f32 = 18.0;

impl Page {
    fn new() -> Self {
        Self {
            ops: Vec::new(),
            y: A4_H - MARGIN,
        }
    }

    fn text(&mut self, x: f32, size: f32, bold: bool, s: &str) {
        self.ops.push(Op::StartTextSection);
        self.ops.push(Op::SetFont {
            font: PdfFontHandle::Builtin(if bold {
                BuiltinFont::HelveticaBold
            } else {
                BuiltinFont::Helvetica
            }),
            size: Pt(size),
        });
        self.ops.push(Op::SetTextCursor {
            pos: Point::new(Mm(x), Mm(self.y)),
        });
        self.ops.push(Op::ShowText {
            items: vec![TextItem::Text(pdf_text(s))],
        });
        self.ops.push(Op::EndTextSection);
    }

    fn row(&mut self, cols: &[(f32, &str)], size: f32, bold: bool) {
        for (x, s) in cols {
            self.text(*x, size, bold, s);
        }
        self.y -= size * 0.5;
    }

    fn full(&self) -> bool {
        self.y < MARGIN + 10.0
    }
}

/// The report as a PDF: a summary page (totals and one row per partner line) and one
/// page per partner with its lines and the commissions of the month.
pub fn pdf(
    r: &Report,
    program: &str,
    commissions: &[(CommissionLine, String, Option<String>)],
) -> Vec<u8> {
    let mut doc = PdfDocument::new(&format!("Payout report {}", r.period));
    let mut pages: Vec<Page> = Vec::new();
    let mut p = Page::new();
    p.text(MARGIN, 18.0, true, &format!("Payout report {}", r.period));
    p.y -= 9.0;
    p.text(MARGIN, 10.0, false, program);
    p.y -= 6.0;
    p.text(
        MARGIN,
        9.0,
        false,
        &format!(
            "Closed {} UTC. Amounts per partner and unit; held = inside the holding period, carried = owed after this payout.",
            format_date(r.closed_at.div_euclid(86_400_000))
        ),
    );
    p.y -= 10.0;
    p.text(MARGIN, 12.0, true, "Totals");
    p.y -= 7.0;
    for (unit, payout, carried) in totals(r) {
        p.row(
            &[
                (MARGIN, &format!("Total payout {}", money(payout, &unit))),
                (110.0, &format!("carried {}", money(carried, &unit))),
            ],
            10.0,
            false,
        );
        p.y -= 1.5;
    }
    let partners = {
        let mut v: Vec<i64> = r.lines.iter().map(|l| l.affiliate_id).collect();
        v.dedup();
        v.len()
    };
    p.y -= 2.0;
    p.text(MARGIN, 9.0, false, &format!("{partners} partners"));
    p.y -= 10.0;
    let header = |p: &mut Page| {
        p.row(
            &[
                (MARGIN, "Code"),
                (45.0, "Partner"),
                (110.0, "Payout"),
                (155.0, "Carried"),
            ],
            9.0,
            true,
        );
        p.y -= 1.0;
    };
    header(&mut p);
    for l in &r.lines {
        if p.full() {
            pages.push(std::mem::replace(&mut p, Page::new()));
            header(&mut p);
        }
        let name: String = l.name.chars().take(34).collect();
        p.row(
            &[
                (MARGIN, &l.code),
                (45.0, &name),
                (110.0, &money(l.payout_minor, &l.unit)),
                (155.0, &money(l.carried_minor, &l.unit)),
            ],
            9.0,
            false,
        );
        p.y -= 1.0;
    }
    pages.push(p);

    // One page per partner (more when its commission list is long).
    let mut i = 0;
    while i < r.lines.len() {
        let aff = r.lines[i].affiliate_id;
        let lines: Vec<&PayoutLine> = r.lines[i..]
            .iter()
            .take_while(|l| l.affiliate_id == aff)
            .collect();
        i += lines.len();
        let first = lines[0];
        let mut p = Page::new();
        p.text(MARGIN, 16.0, true, &first.name);
        p.y -= 8.0;
        p.text(
            MARGIN,
            10.0,
            false,
            &format!("Referral code {} - payout report {}", first.code, r.period),
        );
        p.y -= 10.0;
        for l in &lines {
            p.text(MARGIN, 11.0, true, &l.unit);
            p.y -= 6.0;
            for (label, v) in [
                ("Owed at the start of the month", l.opening_minor),
                ("Earned this month", l.earned_minor),
                ("Reversed (refunds, clawbacks)", -l.reversed_minor),
                ("Held (holding period)", l.held_minor),
                ("Payout", l.payout_minor),
                ("Carried to next month", l.carried_minor),
            ] {
                p.row(
                    &[(MARGIN + 4.0, label), (120.0, &money(v, &l.unit))],
                    10.0,
                    label == "Payout",
                );
                p.y -= 1.0;
            }
            p.y -= 4.0;
        }
        p.text(MARGIN, 11.0, true, "Commissions on the ledger this month");
        p.y -= 6.0;
        let cols = |p: &mut Page| {
            p.row(
                &[
                    (MARGIN + 4.0, "Date"),
                    (45.0, "Booking"),
                    (95.0, "Channel"),
                    (120.0, "Status"),
                    (150.0, "Amount"),
                ],
                9.0,
                true,
            );
        };
        cols(&mut p);
        let mine = commissions.iter().filter(|(c, ..)| c.affiliate_id == aff);
        let mut any = false;
        for (c, booking, channel) in mine {
            any = true;
            if p.full() {
                pages.push(std::mem::replace(&mut p, Page::new()));
                p.text(MARGIN, 10.0, true, &format!("{} (continued)", first.name));
                p.y -= 7.0;
                cols(&mut p);
            }
            let booking: String = booking.chars().take(24).collect();
            p.row(
                &[
                    (
                        MARGIN + 4.0,
                        &format_date(c.created_at.div_euclid(86_400_000)),
                    ),
                    (45.0, &booking),
                    (95.0, channel.as_deref().unwrap_or("")),
                    (120.0, &c.status),
                    (150.0, &money(c.amount_minor, &c.unit)),
                ],
                9.0,
                false,
            );
            p.y -= 0.5;
        }
        if !any {
            p.text(MARGIN + 4.0, 9.0, false, "none");
        }
        pages.push(p);
    }
    let pages = pages
        .into_iter()
        .map(|p| PdfPage::new(Mm(A4_W), Mm(A4_H), p.ops))
        .collect();
    doc.with_pages(pages);
    doc.save(&PdfSaveOptions::default(), &mut Vec::new())
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
    let id: i64 = raw
        .parse()
        .map_err(|_| ApiError::field("id", format!("payout id {raw:?} is not a number")))?;
    let reference = crate::admin::optional_body::<Paid>(&body)?.and_then(|p| p.reference);
    if reference.as_ref().is_some_and(|r| r.len() > 200) {
        return Err(ApiError::field(
            "reference",
            "reference must be at most 200 characters",
        ));
    }
    let now = now_ms();
    let mut tx = s.store.begin_money(s.program.id).await?;
    let (affiliate_id, unit, amount, period, paid) = tx.payout(id).await?;
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
    let open = tx.open_period(&tapkit_core::date::month_of_ms(now)).await?;
    let txn = tx
        .post(
            &NewTransaction {
                period: &open,
                kind: "settlement",
                affiliate_id: Some(affiliate_id),
                booking_ref: None,
                memo: format!("payout {id} for {period} paid"),
                postings: vec![
                    Posting {
                        account: PAYOUTS_DUE,
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
    tx.add_payment(id, reference.as_deref(), txn, now).await?;
    tx.commit().await?;
    Ok(Json(
        json!({"payout_id": id, "paid_at": now, "status": "paid"}),
    ))
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
        assert_eq!(pdf_text("Café ☕"), "Caf? ?");
    }
}
