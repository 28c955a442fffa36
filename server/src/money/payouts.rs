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
use tapkit_core::date::parse_month;

use crate::AppState;
use crate::api::Admin;
use crate::api::ApiError;
use crate::money::posting::{period_for, settlement_account};
use crate::store::ledger::{NewTransaction, PayoutLine, Posting};
use crate::store::vocab::{Account, TransactionKind};
use crate::store::{StoreError, now_ms};

/// The report's files live in [`super::payout_report`].
pub use super::payout_report::{cell, csv, money, pdf, totals};

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
            let issued = b.issued_minor;
            let balance = opening + earned - reversed - issued;
            if opening == 0 && earned == 0 && reversed == 0 && issued == 0 {
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
                issued_minor: issued,
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
                            invoice_ref: None,
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
    Ok(attachment(
        "text/csv; charset=utf-8",
        &format!("payouts-{period}.csv"),
        body,
    ))
}

/// A downloaded report file.
fn attachment(content_type: &str, filename: &str, body: Vec<u8>) -> axum::response::Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response()
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
    Ok(attachment(
        "application/pdf",
        &format!("payouts-{period}.pdf"),
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
    crate::api::RawBody(body): crate::api::RawBody,
) -> Result<impl IntoResponse, ApiError> {
    // The id is checked before the body, as it always was.
    payout_id(&raw)?;
    let reference = crate::api::optional_body::<Paid>(&body)?.and_then(|p| p.reference);
    let (id, now) = pay(&s, &raw, reference.as_deref()).await?;
    Ok(Json(
        json!({"payout_id": id, "paid_at": now, "status": "paid"}),
    ))
}

/// A payout id from a URL path, or a 422 naming it.
fn payout_id(raw: &str) -> Result<i64, ApiError> {
    crate::api::parse_id(raw)
        .ok_or_else(|| ApiError::field("id", format!("payout id {raw:?} is not a number")))
}

/// Marks a payout paid (the console and the API): its id as given in the URL and the
/// payment's reference. Returns the id and when.
pub async fn pay(s: &AppState, raw: &str, reference: Option<&str>) -> Result<(i64, i64), ApiError> {
    let id = payout_id(raw)?;
    if reference.is_some_and(|r| r.chars().count() > 200) {
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
                invoice_ref: None,
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
