//! Member cards and check-ins as stored (`migrations/*/0011_checkins.sql`). A check-in
//! is one transaction (on SQLite a savepoint of a group commit in the check-in
//! connection's thread, [`super::checkin_db`]): the card's mirror counter moves up (compare and set: a counter
//! that does not rise is a copy), a visit is taken (a rolled-over one first; one
//! conditional statement each, so never below zero), and the check-in is logged. At
//! most one accepted check-in per card and counter (a unique index), so no retry, and
//! no second kiosk, uses a visit twice for one tap.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::members::{MEMBER_COLS, Member, member};
use crate::store::{Store, StoreError};

/// A member card as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberCard {
    /// Id.
    pub id: i64,
    /// Program.
    pub program_id: i64,
    /// Its member.
    pub member_id: i64,
    /// The 7-byte UID, 14 upper-case hex digits.
    pub uid: String,
    /// `active` or `revoked`.
    pub status: String,
    /// The highest mirror counter accepted (-1: none yet).
    pub last_counter: i64,
    /// Bound, Unix ms.
    pub created_at: i64,
    /// Revoked, Unix ms.
    pub revoked_at: Option<i64>,
}

const CARD_COLS: &str =
    "id, program_id, member_id, uid, status, last_counter, created_at, revoked_at";

fn card(r: &AnyRow) -> Result<MemberCard, sqlx::Error> {
    Ok(MemberCard {
        id: r.try_get("id")?,
        program_id: r.try_get("program_id")?,
        member_id: r.try_get("member_id")?,
        uid: r.try_get("uid")?,
        status: r.try_get("status")?,
        last_counter: r.try_get("last_counter")?,
        created_at: r.try_get("created_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

/// A check-in as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckIn {
    /// Id.
    pub id: i64,
    /// The member, when the card named one.
    pub member_id: Option<i64>,
    /// The card, when it was one of the member's.
    pub card_id: Option<i64>,
    /// The kiosk that asked.
    pub kiosk_id: i64,
    /// The mirror counter of the tap.
    pub counter: i64,
    /// Whether a visit was used.
    pub accepted: bool,
    /// Why not.
    pub reason: Option<String>,
    /// Which visit: `rolled`, `included` or `unlimited`.
    pub visit: Option<String>,
    /// When, Unix ms.
    pub at: i64,
    /// When the kiosk granted it offline, from its roster (Unix ms, the kiosk's clock).
    pub offline_at: Option<i64>,
    /// For an offline check-in the server would have refused: why (`no_visits_left`,
    /// `lapsed` …). It was given at the desk, so it is accepted and shown to the admin.
    pub overdraft: Option<String>,
}

const CHECKIN_COLS: &str =
    "id, member_id, card_id, kiosk_id, counter, accepted, reason, visit, at, offline_at, overdraft";

fn checkin(r: &AnyRow) -> Result<CheckIn, sqlx::Error> {
    Ok(CheckIn {
        id: r.try_get("id")?,
        member_id: r.try_get("member_id")?,
        card_id: r.try_get("card_id")?,
        kiosk_id: r.try_get("kiosk_id")?,
        counter: r.try_get("counter")?,
        accepted: r.try_get::<i64, _>("accepted")? != 0,
        reason: r.try_get("reason")?,
        visit: r.try_get("visit")?,
        at: r.try_get("at")?,
        offline_at: r.try_get("offline_at")?,
        overdraft: r.try_get("overdraft")?,
    })
}

/// Whether an offline check-in the server would refuse for `reason` is an overdraft
/// (the member got a visit at the desk that the program did not owe them). A copy of a
/// tap already accepted, or a card the server does not know, is not: it stays refused.
pub(super) fn is_overdraft(reason: &str) -> bool {
    matches!(
        reason,
        "no_visits_left" | "paused" | "past_due" | "lapsed" | "cancelled" | "revoked_card"
    )
}

/// The last step of a check-in's decision, after the counter and the visit: an offline
/// check-in (granted from the roster) with a refusal that [`is_overdraft`] is accepted,
/// with the refusal as its overdraft. Returns (reason, overdraft).
pub(super) fn settle(offline: bool, reason: Option<String>) -> (Option<String>, Option<String>) {
    match reason {
        Some(r) if offline && is_overdraft(&r) => (None, Some(r)),
        r => (r, None),
    }
}

/// A check-in decided, to write (PostgreSQL; SQLite's is [`super::checkin_db`]).
#[derive(Debug, Clone, Copy)]
struct NewCheckIn<'a> {
    program_id: i64,
    /// The member the card's URL named, if any.
    member_id: Option<i64>,
    /// The member's card, if the UID is one of theirs.
    card_id: Option<i64>,
    /// The member's period as read (a visit is taken only in it).
    period: Option<&'a str>,
    kiosk_id: i64,
    counter: i64,
    /// A refusal decided before (unknown card, the member's standing …); `None`: take a
    /// visit if the counter rises and one is left.
    refused: Option<&'a str>,
    idempotency_key: Option<&'a str>,
    offline_at: Option<i64>,
    now: i64,
}

/// A member's standing as a check-in reads it.
#[derive(Debug, Clone, Copy)]
pub struct Standing<'a> {
    /// `active`, `past_due`, `lapsed`, `paused` or `cancelled`.
    pub status: &'a str,
    /// The day of the first failed charge, while past due.
    pub failed_on: Option<i64>,
}

/// A card tapped at a kiosk, for [`Store::check_in_tap`].
#[derive(Debug, Clone, Copy)]
pub struct Tap<'a> {
    /// Program.
    pub program_id: i64,
    /// The member code the URL names (`None`: the URL is another brand's).
    pub code: Option<&'a str>,
    /// The UID, 14 upper-case hex digits.
    pub uid: &'a str,
    /// The mirror counter.
    pub counter: i64,
    /// The kiosk.
    pub kiosk_id: i64,
    /// Whether this kiosk may check members in.
    pub kiosk_allowed: bool,
    /// The kiosk's key for this read.
    pub idempotency_key: Option<&'a str>,
    /// When the kiosk granted this check-in offline, from its roster (`None`: asked
    /// online, before the member was let in).
    pub offline_at: Option<i64>,
    /// Now, Unix ms.
    pub now: i64,
    /// Days a past-due member may still check in (`[program.membership] grace_days`).
    pub grace_days: u32,
    /// The program's rule: whether (and why) a standing refuses a check-in on a day,
    /// given the grace days.
    pub refuse: fn(&Standing<'_>, i64, u32) -> Option<&'static str>,
}

/// What the tap's member and card look like, as read in the check-in's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Found {
    pub(super) member_id: i64,
    pub(super) status: String,
    pub(super) failed_on: Option<i64>,
    pub(super) period: String,
    pub(super) card: Option<(i64, String)>,
}

/// The decision before any write: (member, card, period, refusal).
pub(super) fn decide(
    tap: &Tap<'_>,
    found: Option<&Found>,
) -> (
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<&'static str>,
) {
    let member = found.map(|f| f.member_id);
    let card = found.and_then(|f| f.card.as_ref().map(|c| c.0));
    let period = found.map(|f| f.period.clone());
    let refused = if !tap.kiosk_allowed {
        Some("kiosk_not_allowed")
    } else {
        match found {
            None | Some(Found { card: None, .. }) => Some("unknown_card"),
            Some(Found {
                card: Some((_, status)),
                ..
            }) if status != "active" => Some("revoked_card"),
            Some(f) => (tap.refuse)(
                &Standing {
                    status: &f.status,
                    failed_on: f.failed_on,
                },
                tap.now.div_euclid(86_400_000),
                tap.grace_days,
            ),
        }
    };
    (member, card, period, refused)
}

impl Store {
    /// Checks a tapped card in: finds its member and card, decides, and writes the
    /// check-in in one transaction. On SQLite all of it happens in the check-in
    /// connection's thread ([`super::checkin_db`]), where every statement is one
    /// prepared `sqlite3_step` (sqlx would cross threads for each). A read the kiosk
    /// sent before (same idempotency key) is answered with its first check-in.
    pub async fn check_in_tap(&self, tap: &Tap<'_>) -> Result<Tapped, StoreError> {
        if let Some(db) = &self.checkin_db {
            return db.check_in(tap).await;
        }
        let view = |id: Option<i64>| async move {
            Ok::<_, StoreError>(match id {
                Some(id) => self.member(id).await?.as_ref().map(DeskView::from),
                None => None,
            })
        };
        if let Some(key) = tap.idempotency_key
            && let Some(done) = self.checkin_by_key(tap.kiosk_id, key).await?
        {
            let member = view(done.member_id).await?;
            return Ok(Tapped {
                recorded: Recorded::Replayed(done),
                member,
            });
        }
        let found = match tap.code {
            Some(code) => self.member_tap(tap.program_id, code, tap.uid).await?,
            None => None,
        };
        let found = found.map(|(m, c)| Found {
            member_id: m.id,
            status: m.status,
            failed_on: m.failed_on,
            period: m.period,
            card: c.map(|c| (c.id, c.status)),
        });
        let (member_id, card_id, period, refused) = decide(tap, found.as_ref());
        let recorded = self
            .write_check_in(&NewCheckIn {
                program_id: tap.program_id,
                member_id,
                card_id,
                period: period.as_deref(),
                kiosk_id: tap.kiosk_id,
                counter: tap.counter,
                refused,
                idempotency_key: tap.idempotency_key,
                offline_at: tap.offline_at,
                now: tap.now,
            })
            .await?;
        let id = match &recorded {
            Recorded::New(c) | Recorded::Replayed(c) => c.member_id,
        };
        let member = view(id).await?;
        Ok(Tapped { recorded, member })
    }
}

/// The member as the desk sees it after a check-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeskView {
    /// First name.
    pub first_name: Option<String>,
    /// Plan id.
    pub plan: String,
    /// Visits this period includes (`None`: unlimited).
    pub visits_included: Option<i64>,
    /// Included visits used.
    pub visits_used: i64,
    /// Rolled over from last period.
    pub visits_rolled: i64,
    /// Rolled-over visits used.
    pub visits_rolled_used: i64,
}

impl DeskView {
    /// Visits left (`None`: unlimited).
    pub fn visits_left(&self) -> Option<i64> {
        self.visits_included
            .map(|n| (n - self.visits_used).max(0) + self.rolled_left())
    }

    /// Rolled-over visits left.
    pub fn rolled_left(&self) -> i64 {
        (self.visits_rolled - self.visits_rolled_used).max(0)
    }
}

impl From<&Member> for DeskView {
    fn from(m: &Member) -> Self {
        Self {
            first_name: m.first_name.clone(),
            plan: m.plan.clone(),
            visits_included: m.visits_included,
            visits_used: m.visits_used,
            visits_rolled: m.visits_rolled,
            visits_rolled_used: m.visits_rolled_used,
        }
    }
}

/// A check-in and its member afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tapped {
    /// The check-in (new, or the kiosk's earlier one for this read).
    pub recorded: Recorded,
    /// The member the check-in names, as it is now.
    pub member: Option<DeskView>,
}

/// What recording a check-in did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Logged now.
    New(CheckIn),
    /// The kiosk sent this read before: its check-in, unchanged.
    Replayed(CheckIn),
}

/// Takes one visit of a billed member in `period`, in the caller's transaction: a
/// rolled-over one first, else an included one (counted, for an unlimited plan).
/// `None` when none is left (or the member moved on, or is not billed).
async fn take_visit(
    conn: &mut sqlx::AnyConnection,
    id: i64,
    period: &str,
    now: i64,
) -> Result<Option<&'static str>, sqlx::Error> {
    let rolled = sqlx::query(
        "UPDATE members SET visits_rolled_used = visits_rolled_used + 1, updated_at = $3 \
         WHERE id = $1 AND period = $2 AND status IN ('active', 'past_due') \
         AND visits_rolled_used < visits_rolled",
    )
    .bind(id)
    .bind(period)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if rolled == 1 {
        return Ok(Some("rolled"));
    }
    let row = sqlx::query(
        "UPDATE members SET visits_used = visits_used + 1, updated_at = $3 \
         WHERE id = $1 AND period = $2 AND status IN ('active', 'past_due') \
         AND (visits_included IS NULL OR visits_used < visits_included) \
         RETURNING visits_included",
    )
    .bind(id)
    .bind(period)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match row {
        None => None,
        Some(r) if r.try_get::<Option<i64>, _>("visits_included")?.is_none() => Some("unlimited"),
        Some(_) => Some("included"),
    })
}

impl Store {
    /// Uses one visit of a billed member (active or past due) in `period`: a rolled-over
    /// one first, else an included one (an unlimited period counts it). Each step is
    /// one conditional statement, so two check-ins at once never take the same visit
    /// and the visits never go below zero. Returns the member afterwards, or `None` when
    /// it has no visit left, has moved on from `period`, or is not billed.
    pub async fn use_visit(
        &self,
        id: i64,
        period: &str,
        now: i64,
    ) -> Result<Option<Member>, StoreError> {
        let mut tx = self.pool.begin().await?;
        if take_visit(&mut tx, id, period, now).await?.is_none() {
            return Ok(None);
        }
        let row = sqlx::query(&format!("SELECT {MEMBER_COLS} FROM members WHERE id = $1"))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(member(&row)?))
    }

    /// Binds a card UID to a member, giving the member its page code (`code`, kept
    /// when it has one already). Returns the card and the member's code. A UID already
    /// bound (to a member or a partner) is [`StoreError::CardBound`]-like conflict.
    pub async fn bind_member_card(
        &self,
        program_id: i64,
        member_id: i64,
        uid: &str,
        code: &str,
        now: i64,
    ) -> Result<Result<(MemberCard, String), String>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let partner =
            sqlx::query("SELECT id, affiliate_id FROM cards WHERE uid = $1 AND status = 'active'")
                .bind(uid)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(p) = partner {
            let (id, aff): (i64, i64) = (p.try_get("id")?, p.try_get("affiliate_id")?);
            return Ok(Err(format!(
                "card {uid} is a partner card of affiliate {aff}; retire it first (POST /api/admin/cards/{id}/retire)"
            )));
        }
        let code_row = sqlx::query(
            "UPDATE members SET code = COALESCE(code, $2) WHERE id = $1 AND program_id = $3 RETURNING code",
        )
        .bind(member_id)
        .bind(code)
        .bind(program_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(code_row) = code_row else {
            return Err(StoreError::NotFound("member"));
        };
        let code: String = code_row.try_get("code")?;
        let inserted = sqlx::query(&format!(
            "INSERT INTO member_cards (program_id, member_id, uid, created_at) VALUES ($1, $2, $3, $4) \
             RETURNING {CARD_COLS}"
        ))
        .bind(program_id)
        .bind(member_id)
        .bind(uid)
        .bind(now)
        .fetch_one(&mut *tx)
        .await;
        let c = match inserted {
            Ok(r) => card(&r)?,
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                drop(tx);
                let other = self.active_member_card(program_id, uid).await?;
                return Ok(match other {
                    // Binding the same card twice is fine (a provisioner's retry).
                    Some(o) if o.member_id == member_id => Ok((o, code)),
                    Some(o) => Err(format!(
                        "card {uid} belongs to member {}; revoke it first (POST /api/admin/member-cards/{}/revoke)",
                        o.member_id, o.id
                    )),
                    None => Err(format!("card {uid} was bound meanwhile; try again")),
                });
            }
            Err(e) => return Err(e.into()),
        };
        tx.commit().await?;
        Ok(Ok((c, code)))
    }

    async fn active_member_card(
        &self,
        program_id: i64,
        uid: &str,
    ) -> Result<Option<MemberCard>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {CARD_COLS} FROM member_cards WHERE program_id = $1 AND uid = $2 AND status = 'active'"
        ))
        .bind(program_id)
        .bind(uid)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(card).transpose()?)
    }

    /// Live members (active, past due or paused) without an active card, oldest first,
    /// each with its page code: a member without one is given `new_code(member id)` here,
    /// so the provisioner can write `/m/{code}` before the card is bound.
    pub async fn members_needing_card(
        &self,
        program_id: i64,
        new_code: impl Fn(i64) -> String,
    ) -> Result<Vec<Member>, StoreError> {
        let live = "program_id = $1 AND status IN ('active', 'past_due', 'paused') \
             AND NOT EXISTS (SELECT 1 FROM member_cards c WHERE c.member_id = members.id AND c.status = 'active')";
        let missing: Vec<i64> = sqlx::query(&format!(
            "SELECT id FROM members WHERE {live} AND code IS NULL ORDER BY id"
        ))
        .bind(program_id)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<_, _>>()?;
        for id in missing {
            // Guarded: a code another replica gave meanwhile stays.
            sqlx::query("UPDATE members SET code = $2 WHERE id = $1 AND code IS NULL")
                .bind(id)
                .bind(new_code(id))
                .execute(self.pool())
                .await?;
        }
        let rows = sqlx::query(&format!(
            "SELECT {MEMBER_COLS} FROM members WHERE {live} ORDER BY id"
        ))
        .bind(program_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(member).collect::<Result<_, _>>()?)
    }

    /// Every active member card of the program with its member, for the kiosks' roster.
    pub async fn roster_cards(
        &self,
        program_id: i64,
    ) -> Result<Vec<(MemberCard, Member)>, StoreError> {
        let cards = sqlx::query(&format!(
            "SELECT {CARD_COLS} FROM member_cards WHERE program_id = $1 AND status = 'active' ORDER BY member_id"
        ))
        .bind(program_id)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(card)
        .collect::<Result<Vec<_>, _>>()?;
        let members: std::collections::HashMap<i64, Member> = sqlx::query(&format!(
            "SELECT {MEMBER_COLS} FROM members WHERE program_id = $1 AND id IN \
             (SELECT member_id FROM member_cards WHERE program_id = $1 AND status = 'active')"
        ))
        .bind(program_id)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|r| member(r).map(|m| (m.id, m)))
        .collect::<Result<_, _>>()?;
        Ok(cards
            .into_iter()
            .filter_map(|c| members.get(&c.member_id).cloned().map(|m| (c, m)))
            .collect())
    }

    /// A member's cards, oldest first.
    pub async fn member_cards(&self, member_id: i64) -> Result<Vec<MemberCard>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {CARD_COLS} FROM member_cards WHERE member_id = $1 ORDER BY id"
        ))
        .bind(member_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(card).collect::<Result<_, _>>()?)
    }

    /// A member card by id.
    pub async fn member_card(&self, id: i64) -> Result<Option<MemberCard>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {CARD_COLS} FROM member_cards WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(card).transpose()?)
    }

    /// Revokes a card (lost, stolen, replaced): its taps are refused from now on.
    /// Revoking it again changes nothing.
    pub async fn revoke_member_card(
        &self,
        id: i64,
        now: i64,
    ) -> Result<Option<MemberCard>, StoreError> {
        sqlx::query(
            "UPDATE member_cards SET status = 'revoked', revoked_at = $2 WHERE id = $1 AND status = 'active'",
        )
        .bind(id)
        .bind(now)
        .execute(self.pool())
        .await?;
        self.member_card(id).await
    }

    /// The member whose page code is `code`, and its card with this UID (the active
    /// one, else the latest revoked).
    pub async fn member_tap(
        &self,
        program_id: i64,
        code: &str,
        uid: &str,
    ) -> Result<Option<(Member, Option<MemberCard>)>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {MEMBER_COLS} FROM members WHERE program_id = $1 AND code = $2"
        ))
        .bind(program_id)
        .bind(code)
        .fetch_optional(self.pool())
        .await?;
        let Some(m) = row.as_ref().map(member).transpose()? else {
            return Ok(None);
        };
        let row = sqlx::query(&format!(
            "SELECT {CARD_COLS} FROM member_cards WHERE member_id = $1 AND uid = $2 \
             ORDER BY CASE WHEN status = 'active' THEN 0 ELSE 1 END, id DESC LIMIT 1"
        ))
        .bind(m.id)
        .bind(uid)
        .fetch_optional(self.pool())
        .await?;
        let c = row.as_ref().map(card).transpose()?;
        Ok(Some((m, c)))
    }

    async fn checkin_by_key(
        &self,
        kiosk_id: i64,
        key: &str,
    ) -> Result<Option<CheckIn>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Ok(by_key(&mut conn, kiosk_id, key).await?)
    }

    /// Writes a decided check-in in one transaction. Two deliveries of one read at
    /// once: the second finds the key taken, and answers the first's check-in.
    async fn write_check_in(&self, c: &NewCheckIn<'_>) -> Result<Recorded, StoreError> {
        let mut tx = self.pool.begin().await?;
        match write_one(&mut tx, c).await {
            Ok(r) => {
                tx.commit().await?;
                Ok(r)
            }
            Err(Written::KeyTaken) => {
                drop(tx); // rolls back
                let key = c.idempotency_key.unwrap_or_default();
                self.checkin_by_key(c.kiosk_id, key)
                    .await?
                    .map(Recorded::Replayed)
                    .ok_or_else(|| StoreError::Config("a check-in vanished".into()))
            }
            Err(Written::Failed(e)) => Err(e.into()),
        }
    }

    /// The program's offline check-ins kept as overdrafts (a visit given at the desk
    /// that was not owed), newest first (at most `limit`).
    pub async fn overdrafts(
        &self,
        program_id: i64,
        limit: i64,
    ) -> Result<Vec<CheckIn>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {CHECKIN_COLS} FROM checkins WHERE program_id = $1 AND overdraft IS NOT NULL \
             ORDER BY at DESC LIMIT $2"
        ))
        .bind(program_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(checkin).collect::<Result<_, _>>()?)
    }

    /// A member's check-ins, newest first (at most `limit`).
    pub async fn member_checkins(
        &self,
        member_id: i64,
        limit: i64,
    ) -> Result<Vec<CheckIn>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {CHECKIN_COLS} FROM checkins WHERE member_id = $1 ORDER BY id DESC LIMIT $2"
        ))
        .bind(member_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(checkin).collect::<Result<_, _>>()?)
    }
}

async fn by_key(
    conn: &mut sqlx::AnyConnection,
    kiosk_id: i64,
    key: &str,
) -> Result<Option<CheckIn>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {CHECKIN_COLS} FROM checkins WHERE kiosk_id = $1 AND idempotency_key = $2"
    ))
    .bind(kiosk_id)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(checkin).transpose()
}

enum Written {
    /// The kiosk's read was recorded before (its idempotency key is taken).
    KeyTaken,
    Failed(sqlx::Error),
}

impl From<sqlx::Error> for Written {
    fn from(e: sqlx::Error) -> Self {
        Self::Failed(e)
    }
}

/// One check-in, in the caller's transaction: the counter, the visit, the log.
async fn write_one(
    conn: &mut sqlx::AnyConnection,
    c: &NewCheckIn<'_>,
) -> Result<Recorded, Written> {
    let mut reason = c.refused.map(str::to_owned);
    let mut visit = None;
    let offline = c.offline_at.is_some();
    if let Some(card_id) = c.card_id {
        // The counter first, even for a refusal: a URL seen once is never new again.
        let rose = sqlx::query(
            "UPDATE member_cards SET last_counter = $2 WHERE id = $1 AND status = 'active' \
             AND last_counter < $2",
        )
        .bind(card_id)
        .bind(c.counter)
        .execute(&mut *conn)
        .await?
        .rows_affected()
            == 1;
        // Offline check-ins arrive late, after later taps: only a tap already accepted
        // is a copy.
        let copy = if offline {
            sqlx::query("SELECT 1 AS one FROM checkins WHERE card_id = $1 AND counter = $2 AND accepted = 1")
                .bind(card_id)
                .bind(c.counter)
                .fetch_optional(&mut *conn)
                .await?
                .is_some()
        } else {
            !rose && reason.is_none()
        };
        if copy {
            reason = Some("counter_not_rising".to_owned());
        }
    }
    if reason.is_none() {
        match (c.member_id, c.period) {
            (Some(id), Some(period)) => {
                visit = take_visit(conn, id, period, c.now).await?;
                if visit.is_none() {
                    reason = Some("no_visits_left".to_owned());
                }
            }
            _ => reason = Some("unknown_card".to_owned()),
        }
    }
    let (reason, overdraft) = settle(offline, reason);
    let inserted = sqlx::query(&format!(
        "INSERT INTO checkins (program_id, member_id, card_id, kiosk_id, counter, accepted, reason, \
         visit, period, idempotency_key, at, offline_at, overdraft) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING {CHECKIN_COLS}"
    ))
    .bind(c.program_id)
    .bind(c.member_id)
    .bind(c.card_id)
    .bind(c.kiosk_id)
    .bind(c.counter)
    .bind(i64::from(reason.is_none()))
    .bind(reason.as_deref())
    .bind(visit)
    .bind(c.period)
    .bind(c.idempotency_key)
    .bind(c.now)
    .bind(c.offline_at)
    .bind(overdraft.as_deref())
    .fetch_one(&mut *conn)
    .await;
    match inserted {
        Ok(r) => Ok(Recorded::New(checkin(&r)?)),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() && c.idempotency_key.is_some() => {
            Err(Written::KeyTaken)
        }
        Err(e) => Err(Written::Failed(e)),
    }
}
