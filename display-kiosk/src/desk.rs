//! Checking members in at the front desk (`run --reader`): a member card read by
//! [`crate::reader`] is sent to the server (`POST /api/kiosk/check-in`, one random
//! idempotency key per read, so a retry of the read is answered once while another read
//! of the same counter is a copy), and the answer is shown on the screen for a few
//! seconds: the member's first name, plan, visits left, add-on discount and priority, or
//! why not.
//!
//! When the server cannot be reached, the check-in is decided here from the signed
//! roster ([`offline_decision`], pure) and, when granted, queued on disk
//! ([`crate::queue`]) before the screen says yes; the queue is submitted when the
//! server is back and the server reconciles it (a visit given beyond the allowance is
//! recorded as an overdraft for the admin). An expired roster refuses and says so.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tapkit_core::kiosk_wire::{CheckInAnswer, CheckInMember, CheckInRequest, Roster};

use crate::frame::{Content, Pad, Rgb};
use crate::queue::{Queued, Queues};
use crate::state::Identity;
use crate::sync::{self, CallError, Shared};

/// How long a check-in's answer stays on the screen unless `run --checkin-secs` says.
pub const SHOWN_FOR: Duration = Duration::from_secs(6);

/// How long the desk waits for the server's answer before it decides from the roster
/// (the member is standing at the counter).
pub const ANSWER_WAIT: Duration = Duration::from_secs(3);

/// What the reader read from a card placed on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardRead {
    /// The URL a phone would read, mirror filled in.
    Url(String),
    /// The card could not be read (pulled away, not an NTAG, empty); what to tell staff.
    Unreadable(String),
}

/// What the screen shows after a card was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Checked in (`offline`: from the roster, queued for the server).
    Welcome {
        /// The member.
        member: CheckInMember,
        /// Decided from the roster.
        offline: bool,
    },
    /// Refused, with the reason code (`no_visits_left`, `counter_not_rising` …).
    Refused {
        /// The reason code.
        reason: String,
        /// The member, when known.
        member: Option<CheckInMember>,
        /// Decided from the roster.
        offline: bool,
    },
    /// The card or the server gave no usable answer: what to tell staff.
    Problem(String),
}

/// An outcome on screen since `at`, numbered.
#[derive(Debug, Clone)]
pub struct OnScreen {
    /// What is shown.
    pub outcome: Outcome,
    /// Since when.
    pub at: Instant,
    /// 1 for the first check-in since start, then 2, 3 …
    pub seq: u64,
}

/// What staff read for a reason code.
pub fn reason_text(reason: &str) -> &'static str {
    match reason {
        "no_visits_left" => "No visits left this month",
        "paused" => "Membership paused",
        "past_due" => "Payment overdue: please update the card on file",
        "lapsed" => "Membership lapsed",
        "cancelled" => "Membership cancelled",
        "unknown_card" => "Card not recognised",
        "revoked_card" => "This card was reported lost: please use the new card",
        "counter_not_rising" => "Card already used: this looks like a copy",
        "kiosk_not_allowed" => "Check-in is not enabled at this counter",
        "roster_expired" => {
            "Offline, and the member list is out of date: check in at the server's console"
        }
        "no_roster" => "Offline, and no member list yet: check in at the server's console",
        _ => "Not checked in",
    }
}

fn visits_text(m: &CheckInMember) -> String {
    match m.visits_left {
        None => "Unlimited visits".into(),
        Some(1) => "1 visit left".into(),
        Some(n) => format!("{n} visits left"),
    }
}

/// The details line: plan, visits left, add-on discount, priority.
pub fn details(m: &CheckInMember) -> String {
    let mut parts = vec![m.plan.clone(), visits_text(m)];
    if m.add_on_discount_bp > 0 {
        let bp = m.add_on_discount_bp;
        parts.push(if bp % 100 == 0 {
            format!("{}% off add-ons", bp / 100)
        } else {
            format!("{}.{:02}% off add-ons", bp / 100, bp % 100)
        });
    }
    match m.priority.as_str() {
        "high" => parts.push("Priority".into()),
        "instant" => parts.push("Top priority: serve first".into()),
        _ => {}
    }
    parts.join(" · ")
}

/// The screen for an outcome, on the kiosk's usual layout (no QR while it shows).
pub fn content(o: &Outcome, pad: Pad) -> Content {
    let (brand, tagline, background) = match o {
        Outcome::Welcome { member, offline } => (
            match &member.first_name {
                Some(n) => format!("Welcome, {n}!"),
                None => "Welcome!".into(),
            },
            format!(
                "{}{}",
                details(member),
                if *offline { " · (offline)" } else { "" }
            ),
            Rgb([12, 96, 52]),
        ),
        Outcome::Refused {
            reason,
            member,
            offline,
        } => (
            match member.as_ref().and_then(|m| m.first_name.as_ref()) {
                Some(n) => format!("Sorry, {n}: not checked in"),
                None => "Not checked in".into(),
            },
            format!(
                "{}{}",
                reason_text(reason),
                if *offline { " (offline)" } else { "" }
            ),
            Rgb([140, 28, 28]),
        ),
        Outcome::Problem(why) => ("Please tap again".into(), why.clone(), Rgb([110, 80, 10])),
    };
    Content {
        brand,
        tagline,
        background,
        foreground: Rgb([255, 255, 255]),
        accent: Rgb([255, 255, 255]),
        qr_url: None,
        short_url: String::new(),
        logo: None,
        pad,
    }
}

/// The UID (14 upper-case hex digits) and counter of a member card's URL.
pub fn mirror_of(url: &str) -> Option<(String, u32)> {
    let query = url.split_once('?')?.1;
    let m = query.split('&').find_map(|kv| kv.strip_prefix("m="))?;
    let (uid, counter) = tapkit_core::ntag::parse_mirror_text(m)?;
    Some((tapkit_core::hex::encode(&uid), counter))
}

/// What this kiosk last heard from the server about a card (an online check-in's
/// answer), newer than the roster until the roster is fetched again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// The card's counter in that check-in.
    pub counter: u32,
    /// Visits left after it (`None`: unlimited).
    pub visits_left: Option<i64>,
    /// Of them, rolled over.
    pub rolled_over_visits: i64,
    /// When (the server's clock as the kiosk knows it).
    pub at_ms: i64,
}

/// Decides a check-in from the roster while the server cannot be reached: the card is
/// on it, its member may check in, its counter rose above the server's last, this
/// kiosk's last online one (`seen`) and its queued ones, and a visit is left once the
/// queued ones are counted. `now_ms` is the server's clock as this kiosk knows it.
pub fn offline_decision(
    roster: Option<&Roster>,
    url: &str,
    queued: &[Queued],
    seen: Option<&Seen>,
    now_ms: i64,
) -> Outcome {
    let refuse = |reason: &str, member: Option<CheckInMember>| Outcome::Refused {
        reason: reason.into(),
        member,
        offline: true,
    };
    let Some(r) = roster else {
        return refuse("no_roster", None);
    };
    if now_ms > r.expires_at_ms {
        return refuse("roster_expired", None);
    }
    let Some((uid, counter)) = mirror_of(url) else {
        return refuse("unknown_card", None);
    };
    let code = url
        .split_once("/m/")
        .and_then(|(_, rest)| rest.split(['?', '#', '/']).next())
        .unwrap_or("");
    let Some(card) = r.cards.iter().find(|c| c.uid == uid && c.code == code) else {
        return refuse("unknown_card", None);
    };
    // This card's queued check-ins: their counters.
    let mine: Vec<u32> = queued
        .iter()
        .filter_map(|q| mirror_of(&q.url))
        .filter(|(u, _)| *u == uid)
        .map(|(_, c)| c)
        .collect();
    let used_here = i64::try_from(mine.len()).unwrap_or(i64::MAX);
    let seen = seen.filter(|s| s.at_ms >= r.version);
    let last = mine
        .iter()
        .copied()
        .chain(seen.map(|s| s.counter))
        .map(i64::from)
        .fold(card.last_counter, i64::max);
    let (visits, rolled) = seen.map_or((card.visits_left, card.rolled_over_visits), |s| {
        (s.visits_left, s.rolled_over_visits)
    });
    let mut member = CheckInMember {
        add_on_discount_bp: card.add_on_discount_bp,
        first_name: card.first_name.clone(),
        plan: card.plan.clone(),
        priority: card.priority.clone(),
        rolled_over_visits: rolled,
        visits_left: visits.map(|v| (v - used_here).max(0)),
    };
    if !matches!(card.status.as_str(), "active" | "past_due") {
        return refuse(&card.status, Some(member));
    }
    if i64::from(counter) <= last {
        return refuse("counter_not_rising", Some(member));
    }
    if member.visits_left == Some(0) {
        return refuse("no_visits_left", Some(member));
    }
    member.visits_left = member.visits_left.map(|v| v - 1);
    member.rolled_over_visits = (member.rolled_over_visits - used_here - 1).max(0);
    Outcome::Welcome {
        member,
        offline: true,
    }
}

/// The front desk: asks the server, falls back on the roster, shows the outcome.
#[derive(Debug)]
pub struct Desk {
    /// HTTP client.
    pub http: reqwest::Client,
    /// Who this kiosk is.
    pub id: Identity,
    /// The roster and the queue on disk.
    pub queues: Mutex<Queues>,
    /// What the screen shows.
    pub live: Shared,
    /// The last online answer per card UID.
    pub seen: Mutex<std::collections::HashMap<String, Seen>>,
}

fn random_key() -> String {
    let mut b = [0u8; 16];
    // Without the OS's randomness, a clock-based key is still unique per read.
    if getrandom::fill(&mut b).is_err() {
        b[..8].copy_from_slice(&sync::now_ms().to_le_bytes());
    }
    format!("read-{}", tapkit_core::hex::encode_lower(&b))
}

fn lock(q: &Mutex<Queues>) -> std::sync::MutexGuard<'_, Queues> {
    q.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Desk {
    /// The server's clock as this kiosk knows it.
    fn server_now(&self) -> i64 {
        sync::now_ms().saturating_add(sync::read(&self.live).clock_offset_ms)
    }

    /// Checks the card in and puts the outcome on the screen.
    pub async fn card_read(&self, read: CardRead) {
        let outcome = match read {
            CardRead::Unreadable(why) => Outcome::Problem(why),
            CardRead::Url(url) => self.check_in(&url).await,
        };
        match &outcome {
            Outcome::Welcome { offline, .. } => {
                tracing::info!(offline, "member checked in");
            }
            Outcome::Refused {
                reason, offline, ..
            } => tracing::info!(reason, offline, "check-in refused"),
            Outcome::Problem(why) => tracing::warn!(why, "check-in failed"),
        }
        sync::show_outcome(&self.live, outcome);
    }

    async fn check_in(&self, url: &str) -> Outcome {
        let key = random_key();
        let req = CheckInRequest {
            offline_at_ms: None,
            url: url.to_owned(),
        };
        match submit(&self.http, &self.id, &req, &key, ANSWER_WAIT).await {
            Ok(a) => {
                if let (Some((uid, counter)), Some(m)) = (mirror_of(url), a.member.as_ref()) {
                    let seen = Seen {
                        counter,
                        visits_left: m.visits_left,
                        rolled_over_visits: m.rolled_over_visits,
                        at_ms: self.server_now(),
                    };
                    let mut all = self
                        .seen
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    // A refused copy does not lower what was seen.
                    if all.get(&uid).is_none_or(|s| s.counter <= counter) {
                        all.insert(uid, seen);
                    }
                }
                from_answer(a)
            }
            Err(CallError::Unreachable(why)) => {
                tracing::warn!(%why, "the server is unreachable: checking in from the roster");
                self.offline(url, &key)
            }
            // The server could not read it as one of the brand's member cards (its URL is
            // another's, or the mirror is off): to staff, a card it does not know.
            Err(CallError::Refused {
                status: 422,
                message,
            }) => {
                tracing::warn!(%message, "the server refused the card's URL");
                Outcome::Refused {
                    reason: "unknown_card".into(),
                    member: None,
                    offline: false,
                }
            }
            Err(e) => {
                tracing::error!(%e, "the check-in got no usable answer");
                Outcome::Problem(
                    "The check-in could not be confirmed: ask the member to tap again".into(),
                )
            }
        }
    }

    fn offline(&self, url: &str, key: &str) -> Outcome {
        let now = self.server_now();
        let seen = mirror_of(url).and_then(|(uid, _)| {
            self.seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&uid)
                .copied()
        });
        let mut q = lock(&self.queues);
        let queued = q.queued();
        let outcome = offline_decision(q.roster().as_ref(), url, &queued, seen.as_ref(), now);
        if matches!(outcome, Outcome::Welcome { .. }) {
            let entry = Queued {
                key: key.to_owned(),
                url: url.to_owned(),
                offline_at_ms: now,
            };
            // On disk before the screen says yes: a visit given is never lost.
            if let Err(e) = q.push(&entry) {
                tracing::error!(%e, "cannot queue the offline check-in");
                return Outcome::Problem(
                    "Offline, and this kiosk cannot save the check-in: note the visit by hand"
                        .into(),
                );
            }
        }
        outcome
    }

    /// Submits the queued offline check-ins, oldest first, until the queue is empty or
    /// the server is unreachable again. Each is removed only after the server answered
    /// it; one the server refuses outright (4xx) is moved to the rejected file and
    /// reported, never dropped.
    pub async fn drain(&self) -> usize {
        let pending = lock(&self.queues).queued();
        let mut done = 0;
        for q in pending {
            let req = CheckInRequest {
                offline_at_ms: Some(q.offline_at_ms),
                url: q.url.clone(),
            };
            let result = submit(&self.http, &self.id, &req, &q.key, Duration::from_secs(15)).await;
            let mut queues = lock(&self.queues);
            let r = match result {
                Ok(a) => {
                    tracing::info!(
                        key = %q.key,
                        accepted = a.accepted,
                        overdraft = a.overdraft.as_deref().unwrap_or(""),
                        reason = a.reason.as_deref().unwrap_or(""),
                        "offline check-in reconciled"
                    );
                    queues.remove(&q.key)
                }
                Err(CallError::Refused { status, message })
                    if (400..500).contains(&status) && status != 401 && status != 429 =>
                {
                    tracing::error!(key = %q.key, status, %message, "the server refused an offline check-in; kept in the rejected file");
                    queues.reject(&q, &format!("{status}: {message}"))
                }
                Err(e) => {
                    tracing::info!(%e, "offline check-ins stay queued");
                    break;
                }
            };
            if let Err(e) = r {
                tracing::error!(%e, "cannot update the check-in queue");
                break;
            }
            done += 1;
        }
        done
    }
}

fn from_answer(a: CheckInAnswer) -> Outcome {
    match (a.accepted, a.member) {
        (true, Some(member)) => Outcome::Welcome {
            member,
            offline: false,
        },
        (true, None) => Outcome::Problem("Checked in, but the server named no member".into()),
        (false, member) => Outcome::Refused {
            reason: a.reason.unwrap_or_default(),
            member,
            offline: false,
        },
    }
}

/// `POST /api/kiosk/check-in` with the read's key, waiting at most `wait`.
pub async fn submit(
    http: &reqwest::Client,
    id: &Identity,
    req: &CheckInRequest,
    key: &str,
    wait: Duration,
) -> Result<CheckInAnswer, CallError> {
    let r = http
        .post(format!("{}/api/kiosk/check-in", id.server))
        .header("Authorization", sync::bearer(id))
        .header("Idempotency-Key", key)
        .timeout(wait)
        .json(req)
        .send()
        .await
        .map_err(|e| sync::unreachable_err(&e))?;
    if !r.status().is_success() {
        return Err(sync::refused(r).await);
    }
    let text = r.text().await.map_err(|e| sync::unreachable_err(&e))?;
    crate::wire::parse(&text).map_err(|source| CallError::Malformed {
        what: "check-in answer",
        source,
    })
}

/// Runs the desk: each card read is checked in and shown; the queue is drained after
/// every online answer and every 10 s.
pub async fn run(desk: Arc<Desk>, mut reads: tokio::sync::mpsc::Receiver<CardRead>) {
    let drainer = desk.clone();
    tokio::spawn(async move {
        loop {
            if !lock(&drainer.queues).is_empty() {
                drainer.drain().await;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
    while let Some(read) = reads.recv().await {
        let started = Instant::now();
        desk.card_read(read).await;
        tracing::debug!(ms = started.elapsed().as_millis(), "card read to screen");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapkit_core::kiosk_wire::RosterCard;

    const UID: &str = "04A1B2C3D4E5F6";

    fn url(counter: u32) -> String {
        format!("https://book.example.com/m/3f9a0c2b7d1e?m={UID}x{counter:06X}")
    }

    fn roster(status: &str, visits: Option<i64>) -> Roster {
        Roster {
            kiosk_id: 1,
            version: 1,
            expires_at_ms: 1_000,
            cards: vec![RosterCard {
                uid: UID.into(),
                code: "3f9a0c2b7d1e".into(),
                first_name: Some("Ada".into()),
                plan: "Plus".into(),
                status: status.into(),
                visits_left: visits,
                rolled_over_visits: 1,
                add_on_discount_bp: 1000,
                priority: "high".into(),
                last_counter: 5,
            }],
        }
    }

    fn queued(counter: u32) -> Queued {
        Queued {
            key: format!("k{counter}"),
            url: url(counter),
            offline_at_ms: 1,
        }
    }

    fn reason(o: &Outcome) -> &str {
        match o {
            Outcome::Refused { reason, .. } => reason,
            Outcome::Welcome { .. } => "welcome",
            Outcome::Problem(_) => "problem",
        }
    }

    #[test]
    fn the_roster_decides_offline() {
        let r = roster("active", Some(2));
        let o = offline_decision(Some(&r), &url(6), &[], None, 500);
        let Outcome::Welcome { member, offline } = &o else {
            panic!("{o:?}")
        };
        assert!(offline);
        assert_eq!(
            (member.visits_left, member.rolled_over_visits),
            (Some(1), 0)
        );
        // One queued already: the last visit; two queued: none left.
        let o = offline_decision(Some(&r), &url(7), &[queued(6)], None, 500);
        assert!(
            matches!(&o, Outcome::Welcome { member, .. } if member.visits_left == Some(0)),
            "{o:?}"
        );
        let o = offline_decision(Some(&r), &url(8), &[queued(6), queued(7)], None, 500);
        assert_eq!(reason(&o), "no_visits_left");
        // The counter must rise above the server's and the queue's.
        assert_eq!(
            reason(&offline_decision(Some(&r), &url(5), &[], None, 500)),
            "counter_not_rising"
        );
        assert_eq!(
            reason(&offline_decision(
                Some(&r),
                &url(6),
                &[queued(6)],
                None,
                500
            )),
            "counter_not_rising"
        );
        // An online answer newer than the roster counts: its counter and its visits.
        let seen = Seen {
            counter: 9,
            visits_left: Some(1),
            rolled_over_visits: 0,
            at_ms: 2,
        };
        assert_eq!(
            reason(&offline_decision(Some(&r), &url(9), &[], Some(&seen), 500)),
            "counter_not_rising"
        );
        let o = offline_decision(Some(&r), &url(10), &[], Some(&seen), 500);
        assert!(
            matches!(&o, Outcome::Welcome { member, .. } if member.visits_left == Some(0)),
            "{o:?}"
        );
        let old = Seen { at_ms: 0, ..seen };
        let o = offline_decision(Some(&r), &url(6), &[], Some(&old), 500);
        assert!(
            matches!(&o, Outcome::Welcome { member, .. } if member.visits_left == Some(1)),
            "{o:?}"
        );
        // Unlimited stays unlimited.
        let u = roster("active", None);
        assert!(matches!(
            offline_decision(Some(&u), &url(9), &[queued(6), queued(7)], None, 500),
            Outcome::Welcome { .. }
        ));
    }

    #[test]
    fn the_roster_refuses_what_the_server_would() {
        assert_eq!(
            reason(&offline_decision(None, &url(6), &[], None, 500)),
            "no_roster"
        );
        let r = roster("active", Some(2));
        assert_eq!(
            reason(&offline_decision(Some(&r), &url(6), &[], None, 1_001)),
            "roster_expired"
        );
        for s in ["paused", "lapsed", "cancelled"] {
            assert_eq!(
                reason(&offline_decision(
                    Some(&roster(s, Some(2))),
                    &url(6),
                    &[],
                    None,
                    500
                )),
                s
            );
        }
        assert_eq!(
            reason(&offline_decision(
                Some(&roster("past_due", Some(2))),
                &url(6),
                &[],
                None,
                500
            )),
            "welcome"
        );
        let other = url(6).replace("3f9a0c2b7d1e", "000000000000");
        assert_eq!(
            reason(&offline_decision(Some(&r), &other, &[], None, 500)),
            "unknown_card"
        );
        assert_eq!(
            reason(&offline_decision(
                Some(&r),
                "https://book.example.com/m/3f9a0c2b7d1e",
                &[],
                None,
                500
            )),
            "unknown_card"
        );
    }

    #[test]
    fn the_screen_reads_like_a_sentence() {
        let m = CheckInMember {
            add_on_discount_bp: 1250,
            first_name: Some("Ada".into()),
            plan: "Plus".into(),
            priority: "instant".into(),
            rolled_over_visits: 0,
            visits_left: Some(3),
        };
        assert_eq!(
            details(&m),
            "Plus · 3 visits left · 12.50% off add-ons · Top priority: serve first"
        );
        let c = content(
            &Outcome::Welcome {
                member: m.clone(),
                offline: false,
            },
            Pad::Below,
        );
        assert_eq!(c.brand, "Welcome, Ada!");
        assert!(c.qr_url.is_none());
        let c = content(
            &Outcome::Refused {
                reason: "counter_not_rising".into(),
                member: Some(m),
                offline: false,
            },
            Pad::Below,
        );
        assert_eq!(c.brand, "Sorry, Ada: not checked in");
        assert!(c.tagline.contains("copy"), "{}", c.tagline);
        for r in [
            "no_visits_left",
            "paused",
            "past_due",
            "lapsed",
            "cancelled",
            "unknown_card",
            "revoked_card",
            "counter_not_rising",
            "kiosk_not_allowed",
            "roster_expired",
            "no_roster",
        ] {
            assert_ne!(reason_text(r), reason_text("something new"), "{r}");
        }
    }
}
