//! Members, the admin API (issue 19's interface): create a member, read one with its
//! period, rolled-over visits and open invoices, change its plan, pause it, cancel it.
//! The decisions are in [`crate::members::service`].

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::api::extract::{PathId, RawBody, optional_body};
use crate::api::{Admin, ApiError, Body};
use crate::members::service::{self, Join, MemberError};
use crate::store::members::{Invoice, Member};

impl From<MemberError> for ApiError {
    fn from(e: MemberError) -> Self {
        match e {
            MemberError::Invalid { field, reason } => ApiError::field(field, reason),
            MemberError::NotFound => ApiError::NotFound("member"),
            MemberError::InvoiceNotFound => ApiError::NotFound("invoice"),
            MemberError::Price(e) => ApiError::Conflict(e.to_string()),
            MemberError::Conflict(m) => ApiError::Conflict(m),
            MemberError::Store(e @ crate::store::StoreError::AlreadyMember { .. }) => {
                ApiError::Conflict(e.to_string())
            }
            MemberError::Store(e) => e.into(),
        }
    }
}

fn invoice_json(i: &Invoice) -> Value {
    json!({
        "id": i.id,
        "member_id": i.member_id,
        "period": i.period,
        "kind": i.kind,
        "plan": i.plan,
        "amount_minor": i.amount_minor,
        "currency": i.currency,
        "status": i.status,
        "paid_at": i.paid_at,
        "refunded_at": i.refunded_at,
        "reference": i.reference,
    })
}

/// A member as the API shows it.
fn member_json(m: &Member, open_invoices: &[Invoice]) -> Value {
    json!({
        "id": m.id,
        "customer_id": m.customer_id,
        "email": m.email,
        "status": m.status,
        "status_reason": m.status_reason,
        "plan": m.plan,
        "pending_plan": m.pending_plan,
        "period": m.period,
        "visits_left": service::visits_left(m),
        "visits_included": m.visits_included,
        "visits_used": m.visits_used,
        "rolled_over_visits": (m.visits_rolled - m.visits_rolled_used).max(0),
        "paused_until": m.paused_until,
        "cancel_at_period_end": m.cancel_at_period_end,
        "affiliate_id": m.affiliate_id,
        "first_name": m.first_name,
        "code": m.code,
        "open_invoices": open_invoices.iter().map(invoice_json).collect::<Vec<_>>(),
    })
}

async fn shown(s: &AppState, m: &Member) -> Result<Value, ApiError> {
    let open = s.store.member_invoices(m.id, true).await?;
    Ok(member_json(m, &open))
}

async fn of_program(s: &AppState, id: i64) -> Result<Member, ApiError> {
    match s.store.member(id).await? {
        Some(m) if m.program_id == s.program.id => Ok(m),
        _ => Err(ApiError::NotFound("member")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewMember {
    customer_id: String,
    email: String,
    plan: String,
    #[serde(default, deserialize_with = "optional_whole")]
    affiliate_id: Option<i64>,
    first_name: Option<String>,
}

fn optional_whole<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    struct W(#[serde(deserialize_with = "tapkit_core::json_int::whole")] i64);
    Ok(Option::<W>::deserialize(d)?.map(|W(v)| v))
}

pub(crate) async fn create_member(
    _: Admin,
    State(s): State<AppState>,
    Body(b): Body<NewMember>,
) -> Result<impl IntoResponse, ApiError> {
    if let Some(a) = b.affiliate_id
        && s.store
            .affiliate(a)
            .await
            .ok()
            .is_none_or(|x| x.program_id != s.program.id)
    {
        return Err(ApiError::Invalid {
            status: StatusCode::NOT_FOUND,
            field: Some("affiliate_id"),
            message: format!("affiliate {a} not found"),
        });
    }
    let (m, _) = service::join(
        &s.store,
        &s.config.program.membership,
        s.program.id,
        &s.config.program.commission.currency,
        &Join {
            customer_id: &b.customer_id,
            email: &b.email,
            plan: &b.plan,
            affiliate_id: b.affiliate_id,
            first_name: b.first_name.as_deref(),
        },
        crate::store::now_ms(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(shown(&s, &m).await?)))
}

pub(crate) async fn get_member(
    _: Admin,
    State(s): State<AppState>,
    PathId(id): PathId,
) -> Result<impl IntoResponse, ApiError> {
    let m = of_program(&s, id).await?;
    Ok(Json(shown(&s, &m).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MemberFilter {
    #[serde(default)]
    needs_card: bool,
}

/// `GET /api/admin/members[?needs_card=true]`: the newest 500 members, or (`needs_card`)
/// every live member without an active card, oldest first, each with the `url` its card
/// gets (`https://{domain}/m/{code}`): what `provisioner provision --members` writes.
pub(crate) async fn list_members(
    _: Admin,
    State(s): State<AppState>,
    q: Result<axum::extract::Query<MemberFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let axum::extract::Query(f) = q.map_err(|e| ApiError::field("needs_card", e.body_text()))?;
    let list = if f.needs_card {
        s.store
            .members_needing_card(s.program.id, |_| new_member_code())
            .await?
    } else {
        s.store.members(s.program.id, 500).await?
    };
    Ok(Json(
        list.iter()
            .map(|m| {
                let mut v = member_json(m, &[]);
                // The list leaves out the open invoices and the partner who brought the
                // member (GET /api/admin/members/{id} has both).
                if let Some(o) = v.as_object_mut() {
                    o.remove("open_invoices");
                    o.remove("affiliate_id");
                }
                v["url"] = member_url(&s, m.code.as_deref());
                v["plan_name"] = Value::String(
                    s.config
                        .program
                        .membership
                        .plan(&m.plan)
                        .map_or_else(|| m.plan.clone(), |p| p.name.clone()),
                );
                v
            })
            .collect::<Vec<_>>(),
    ))
}

/// A member's page code: 12 lower-case hex digits (48 random bits).
fn new_member_code() -> String {
    crate::keys::random_hex()[..12].to_owned()
}

fn member_url(s: &AppState, code: Option<&str>) -> Value {
    code.map_or(Value::Null, |code| {
        Value::String(format!("https://{}/m/{code}", s.config.program.domain))
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlanChange {
    plan: String,
}

pub(crate) async fn change_plan(
    _: Admin,
    State(s): State<AppState>,
    PathId(id): PathId,
    Body(b): Body<PlanChange>,
) -> Result<impl IntoResponse, ApiError> {
    let m = of_program(&s, id).await?;
    let (m, upgrade) = service::change_plan(
        &s.store,
        &s.config.program.membership,
        &s.config.program.commission.currency,
        m.id,
        &b.plan,
        crate::store::now_ms(),
    )
    .await?;
    let mut v = shown(&s, &m).await?;
    v["upgrade_invoice"] = upgrade.as_ref().map_or(Value::Null, invoice_json);
    Ok(Json(v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Pause {
    #[serde(deserialize_with = "tapkit_core::json_int::whole")]
    periods: i64,
}

pub(crate) async fn pause(
    _: Admin,
    State(s): State<AppState>,
    PathId(id): PathId,
    Body(b): Body<Pause>,
) -> Result<impl IntoResponse, ApiError> {
    let m = of_program(&s, id).await?;
    let m = service::pause(&s.store, m.id, b.periods, crate::store::now_ms()).await?;
    Ok(Json(shown(&s, &m).await?))
}

pub(crate) async fn cancel(
    _: Admin,
    State(s): State<AppState>,
    PathId(id): PathId,
) -> Result<impl IntoResponse, ApiError> {
    let m = of_program(&s, id).await?;
    let m = service::cancel(&s.store, m.id, crate::store::now_ms()).await?;
    Ok(Json(shown(&s, &m).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MrrQuery {
    from: Option<String>,
    to: Option<String>,
}

/// The most months one MRR request covers.
const MRR_MONTHS: i64 = 120;

/// `GET /api/admin/memberships/mrr?from=YYYY-MM&to=YYYY-MM` (default: the 12 months to
/// this one).
pub(crate) async fn mrr(
    _: Admin,
    State(s): State<AppState>,
    q: Result<axum::extract::Query<MrrQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    use crate::members::billing::Period;
    use crate::members::mrr::twelve_months_to;
    let axum::extract::Query(q) = q.map_err(|e| ApiError::field("query", e.body_text()))?;
    let month = |field: &'static str, v: &Option<String>, default: Period| match v {
        None => Ok(default),
        Some(t) => Period::parse(t).ok_or_else(|| {
            ApiError::field(
                field,
                format!("{field} {t:?} is not a month like 2026-11 (1970-01 to 9999-12)"),
            )
        }),
    };
    let now = Period::of_day(crate::store::now_ms().div_euclid(86_400_000));
    let to = month("to", &q.to, now)?;
    let from = month("from", &q.from, twelve_months_to(to))?;
    if from > to {
        return Err(ApiError::field("from", "from is after to"));
    }
    let span = (to.year - from.year) * 12 + i64::from(to.month) - i64::from(from.month) + 1;
    if span > MRR_MONTHS {
        return Err(ApiError::field(
            "from",
            format!("at most {MRR_MONTHS} months per request; ask for a shorter range"),
        ));
    }
    let months = service::mrr_months(
        &s.store,
        &s.config.program.membership,
        s.program.id,
        from,
        to,
    )
    .await?;
    Ok(Json(json!({
        "currency": s.config.program.commission.currency,
        "months": months,
    })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct Paid {
    reference: Option<String>,
}

fn outcome_json(o: &crate::members::payments::Outcome) -> Value {
    let mut v = invoice_json(&o.invoice);
    v["changed"] = json!(o.changed);
    v["member_status"] = json!(o.member.status);
    v["commissions"] = json!(
        o.commissions
            .iter()
            .map(|c| json!({
                "affiliate_id": c.affiliate_id,
                "status": c.status,
                "unit": c.unit,
                "amount_minor": c.amount_minor,
                "rule": c.rule,
                "month": c.month,
            }))
            .collect::<Vec<_>>()
    );
    v
}

/// `POST /api/admin/invoices/{id}/paid` `{"reference": "..."}` (optional): the brand
/// settled the invoice itself. Booked once: paying it again answers the same, with
/// `"changed": false`.
pub(crate) async fn invoice_paid(
    _: Admin,
    State(s): State<AppState>,
    PathId(id): PathId,
    RawBody(body): RawBody,
) -> Result<impl IntoResponse, ApiError> {
    let b: Paid = optional_body(&body)?.unwrap_or_default();
    let o = crate::members::payments::settle(
        &s.store,
        &s.config.program.commission,
        s.program.id,
        id,
        b.reference.as_deref(),
        crate::store::now_ms(),
    )
    .await?;
    Ok(Json(outcome_json(&o)))
}

/// `POST /api/admin/invoices/{id}/refund`: the brand refunded a paid invoice; the
/// payment is reversed on the ledger and its membership commission clawed back.
pub(crate) async fn invoice_refund(
    _: Admin,
    State(s): State<AppState>,
    PathId(id): PathId,
) -> Result<impl IntoResponse, ApiError> {
    let o = crate::members::payments::refund(&s.store, s.program.id, id, crate::store::now_ms())
        .await?;
    Ok(Json(outcome_json(&o)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewCard {
    uid: String,
}

fn card_json(s: &AppState, c: &crate::store::checkins::MemberCard, code: Option<&str>) -> Value {
    json!({
        "id": c.id,
        "member_id": c.member_id,
        "uid": c.uid,
        "status": c.status,
        "created_at": c.created_at,
        "revoked_at": c.revoked_at,
        "url": member_url(s, code),
    })
}

/// `POST /api/admin/members/{id}/cards` `{"uid": "04A1B2C3D4E5F6"}`: binds a member card
/// after its verified write (the provisioner calls it). The answer's `url` is what the
/// card holds, before the mirror: `https://{domain}/m/{code}`. A UID already bound
/// (to another member, or a partner) is a 409 naming what to do.
pub(crate) async fn bind_card(
    _: Admin,
    State(s): State<AppState>,
    PathId(id): PathId,
    Body(b): Body<NewCard>,
) -> Result<impl IntoResponse, ApiError> {
    let m = of_program(&s, id).await?;
    if !matches!(m.status.as_str(), "active" | "past_due" | "paused") {
        return Err(ApiError::Conflict(format!(
            "member {id} is {}: only a live member gets a card",
            m.status
        )));
    }
    let uid = super::partners::normalise_uid(&b.uid)?;
    let code = new_member_code();
    let now = crate::store::now_ms();
    match s
        .store
        .bind_member_card(s.program.id, m.id, &uid, &code, now)
        .await?
    {
        Ok((c, code)) => Ok((StatusCode::CREATED, Json(card_json(&s, &c, Some(&code))))),
        Err(why) => Err(ApiError::Conflict(why)),
    }
}

/// `POST /api/admin/member-cards/{id}/revoke`: a lost or stolen card; its taps are
/// refused (`revoked_card`) from now on. Bind the new card with `POST …/members/{id}/cards`.
pub(crate) async fn revoke_card(
    _: Admin,
    State(s): State<AppState>,
    PathId(id): PathId,
) -> Result<impl IntoResponse, ApiError> {
    let c = match s.store.member_card(id).await? {
        Some(c) if c.program_id == s.program.id => c,
        _ => return Err(ApiError::NotFound("member card")),
    };
    let c = s
        .store
        .revoke_member_card(c.id, crate::store::now_ms())
        .await?
        .ok_or(ApiError::NotFound("member card"))?;
    let m = s.store.member(c.member_id).await?;
    Ok(Json(card_json(
        &s,
        &c,
        m.as_ref().and_then(|m| m.code.as_deref()),
    )))
}
