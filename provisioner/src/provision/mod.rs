//! `provisioner provision`: a batch of partners at the reader, card by card — identify,
//! write (with the UID/counter mirror where it fits), verify, optionally protect and
//! lock, journal, signal, wait for removal — resumable from its journal.

pub mod feed;
mod report;

use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use tapkit_core::ndef;
use tapkit_core::ntag::{MIRROR_PLACEHOLDER, NTAG213, NTAG215, NTAG216};
use tapkit_core::type2;

pub use feed::{CardFeed, PcscFeed, ScriptedCard, SimFeed, parse_script};
pub use report::{Event, Reporter};

use crate::driver::{DriverError, TagDriver, WriteOptions, WriteReport};
use crate::journal::{self, Entry, Journal, JournalError, Outcome};
use crate::partners::Partner;
use crate::server_api::{ServerApi, ServerError};
use crate::transport::{Transport, TransportError};

/// Where verified cards are registered (the server's admin API; a fake in unit tests).
pub trait Registrar {
    /// Binds the card `uid` to `partner` on the server.
    fn register(&mut self, partner: &Partner, uid: &str) -> Result<(), ServerError>;
}

impl Registrar for ServerApi {
    fn register(&mut self, partner: &Partner, uid: &str) -> Result<(), ServerError> {
        let id = partner.affiliate_id.ok_or_else(|| {
            ServerError::Config(format!(
                "{} has no affiliate id on the server; take the partner list from --server",
                partner.name
            ))
        })?;
        self.register_card(id, uid)
    }
}

/// After a registration attempt failed for want of the server, later cards do not wait
/// on it again for this long (their registrations stay pending in the journal).
const OFFLINE_BACKOFF: std::time::Duration = std::time::Duration::from_secs(60);

/// The registrar of a batch and whether the server looked down lately.
struct Registration<'a> {
    registrar: &'a mut dyn Registrar,
    offline_since: Option<std::time::Instant>,
}

/// What registering one card came to.
enum Registered {
    Yes,
    /// The server could not be reached: the card stays pending in the journal.
    Pending(String),
    /// The server refused the binding (e.g. the UID is bound to another affiliate).
    Refused(String),
}

impl Registration<'_> {
    fn register(&mut self, partner: &Partner, uid: &str) -> Registered {
        if let Some(t) = self.offline_since
            && t.elapsed() < OFFLINE_BACKOFF
        {
            return Registered::Pending(
                "not registered yet: the server was unreachable a moment ago; the next run retries it".into(),
            );
        }
        match self.registrar.register(partner, uid) {
            Ok(()) => {
                self.offline_since = None;
                Registered::Yes
            }
            Err(e) if e.is_transient() => {
                self.offline_since = Some(std::time::Instant::now());
                Registered::Pending(format!(
                    "not registered yet ({e}); run the same command again when the server is back"
                ))
            }
            Err(e) => Registered::Refused(e.to_string()),
        }
    }
}

/// How the batch runs.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// The brand's domain in `https://{domain}/r/{code}`.
    pub domain: String,
    /// Turn on the UID + counter mirror where the URL leaves room for it.
    pub mirror: bool,
    /// Lock every card permanently after writing.
    pub lock: bool,
    /// Protect every card against rewriting with this password.
    pub password: Option<[u8; 4]>,
    /// PACK stored with the password.
    pub pack: [u8; 2],
    /// Cards tried per partner before giving up on it (refused cards, failures).
    pub max_attempts: u32,
}

/// Counts at the end of a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Cards written and verified in this run.
    pub done: usize,
    /// Partners skipped: done in an earlier run, or the card already held their URL.
    pub skipped: usize,
    /// Partners given up on in this run.
    pub failed: usize,
    /// Partners not reached (stopped early).
    pub remaining: usize,
    /// Cards refused (wrong type, too small, another partner's …) along the way.
    pub refused_cards: usize,
    /// Cards written but not registered with the server (it was unreachable); a
    /// re-run with the same journal registers them.
    pub registration_pending: usize,
    /// Registrations left pending by an earlier run and completed in this one.
    pub registered_late: usize,
    /// Whether Ctrl-C stopped the batch.
    pub stopped: bool,
}

/// Why the batch cannot go on at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// The journal failed: nothing more is written without an audit trail.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The reader or PC/SC service failed.
    #[error("{0}")]
    Reader(DriverError),
}

fn card_left(e: &DriverError) -> bool {
    matches!(
        e,
        DriverError::PulledMidWrite { .. }
            | DriverError::Transport(TransportError::CardRemoved | TransportError::NoResponse)
    )
}

fn reader_gone(e: &DriverError) -> bool {
    matches!(
        e,
        DriverError::Transport(TransportError::NoService | TransportError::NoSuchReader(_))
    )
}

/// Runs the batch over `partners`, resuming from `prior` journal entries, without a
/// server.
pub fn run_batch<F: CardFeed>(
    feed: &mut F,
    partners: &[Partner],
    journal: &mut Journal,
    prior: &[Entry],
    opts: &BatchOptions,
    reporter: &mut Reporter,
    stop: &AtomicBool,
) -> Result<Summary, BatchError> {
    run_batch_with(feed, partners, journal, prior, opts, reporter, stop, None)
}

/// The journal's last word on each code (later lines supersede earlier ones).
fn latest_by_code(entries: &[Entry]) -> std::collections::HashMap<&str, &Entry> {
    let mut m = std::collections::HashMap::new();
    for e in entries {
        m.insert(e.code.as_str(), e);
    }
    m
}

/// Written cards whose registration is still pending: their code's latest journal line
/// is a verified card with `server_registered: false`.
pub fn pending_registrations(entries: &[Entry]) -> Vec<&Entry> {
    let mut v: Vec<&Entry> = latest_by_code(entries)
        .into_values()
        .filter(|e| e.is_done() && e.server_registered == Some(false) && e.uid.is_some())
        .collect();
    v.sort_by(|a, b| a.time.cmp(&b.time).then(a.code.cmp(&b.code)));
    v
}

/// Retries the registrations an earlier run left pending; journals each that succeeds
/// (or is refused). Stops at the first one the server is still down for.
fn retry_pending(
    prior: &[Entry],
    reg: &mut Registration<'_>,
    journal: &mut Journal,
    reporter: &mut Reporter,
    sum: &mut Summary,
) -> Result<Vec<Entry>, BatchError> {
    let mut appended = Vec::new();
    let pending = pending_registrations(prior);
    for (i, e) in pending.iter().enumerate() {
        let Some(uid) = e.uid.as_deref() else {
            continue;
        };
        let Ok(code) = tapkit_core::code::ReferralCode::parse(&e.code) else {
            continue;
        };
        let partner = Partner {
            name: e.partner.clone(),
            code,
            kind: String::new(),
            affiliate_id: e.affiliate_id,
        };
        let mut line = Entry {
            time: journal::now_rfc3339(),
            server_registered: Some(true),
            detail: None,
            ..(*e).clone()
        };
        match reg.register(&partner, uid) {
            Registered::Yes => {
                line.outcome = Outcome::Registered;
                sum.registered_late += 1;
            }
            Registered::Pending(why) => {
                sum.registration_pending += pending.len() - i;
                reporter.event(&Event::Prompt {
                    message: &format!(
                        "{} cards from an earlier run are still not registered: {why}",
                        pending.len() - i
                    ),
                });
                break;
            }
            Registered::Refused(why) => {
                line.outcome = Outcome::Failed;
                line.server_registered = Some(false);
                line.detail = Some(format!(
                    "The server refused card {uid} for {}: {why}. The partner is tried again with a card.",
                    e.partner
                ));
            }
        }
        journal.append(&line)?;
        reporter.card(&line, 0);
        appended.push(line);
    }
    Ok(appended)
}

/// Runs the batch over `partners`, resuming from `prior` journal entries; with a
/// `registrar`, each verified card is registered with the server and registrations an
/// earlier run left pending are retried first.
#[allow(clippy::too_many_arguments)]
pub fn run_batch_with<F: CardFeed>(
    feed: &mut F,
    partners: &[Partner],
    journal: &mut Journal,
    prior: &[Entry],
    opts: &BatchOptions,
    reporter: &mut Reporter,
    stop: &AtomicBool,
    registrar: Option<&mut dyn Registrar>,
) -> Result<Summary, BatchError> {
    let mut sum = Summary::default();
    let mut reg = registrar.map(|registrar| Registration {
        registrar,
        offline_since: None,
    });
    let mut history = prior.to_vec();
    if let Some(reg) = reg.as_mut() {
        let appended = retry_pending(prior, reg, journal, reporter, &mut sum)?;
        history.extend(appended);
    }
    let prior = &history[..];
    let latest = latest_by_code(prior);
    let done_before: std::collections::HashSet<&str> = latest
        .iter()
        .filter(|(_, e)| e.is_done())
        .map(|(c, _)| *c)
        .collect();
    let todo: Vec<&Partner> = partners
        .iter()
        .filter(|p| !done_before.contains(p.code.as_str()))
        .collect();
    sum.skipped = partners.len() - todo.len();
    reporter.start(partners.len(), sum.skipped);
    for (i, partner) in todo.iter().enumerate() {
        if stop.load(Ordering::Relaxed) {
            sum.stopped = true;
            sum.remaining = todo.len() - i;
            break;
        }
        reporter.event(&Event::Next {
            partner: &partner.name,
            code: partner.code.as_str(),
            url: &partner.url(&opts.domain),
        });
        match provision_one(
            feed,
            partner,
            partners,
            prior,
            journal,
            opts,
            reporter,
            &mut sum,
            reg.as_mut(),
        )? {
            PartnerResult::Done => sum.done += 1,
            PartnerResult::Skipped => sum.skipped += 1,
            PartnerResult::Failed => sum.failed += 1,
            PartnerResult::Stopped => {
                sum.stopped = true;
                sum.remaining = todo.len() - i;
                break;
            }
        }
        reporter.progress(&sum);
    }
    reporter.event(&Event::Summary(sum));
    Ok(sum)
}

enum PartnerResult {
    Done,
    Skipped,
    Failed,
    Stopped,
}

/// Writes with the mirror when it fits, without it otherwise (an NTAG213 with a long URL).
fn write_for<T: Transport>(
    d: &mut TagDriver<T>,
    url: &str,
    opts: &BatchOptions,
) -> Result<WriteReport, DriverError> {
    let w = WriteOptions {
        mirror: opts.mirror,
        overwrite: false,
        password: opts.password,
        set_password: opts.password.is_some(),
        pack: opts.pack,
    };
    match d.write_url(url, &w) {
        Err(DriverError::Mirror(_) | DriverError::DoesNotFit { .. }) if opts.mirror => {
            tracing::info!(
                "the URL leaves no room for the mirror on this card; writing it without"
            );
            d.write_url(url, &WriteOptions { mirror: false, ..w })
        }
        // A card written without the mirror in an earlier run still counts as this URL.
        Err(DriverError::HoldsOtherUrl { existing }) if existing == url => {
            d.write_url(url, &WriteOptions { mirror: false, ..w })
        }
        other => other,
    }
}

/// Who a URL on a card belongs to, by its code.
fn owner_of<'a>(
    url: &str,
    partners: &'a [Partner],
    prior: &'a [Entry],
) -> Option<(&'a str, &'a str)> {
    let code_part = url.split("/r/").nth(1)?.split(['?', '&', '#']).next()?;
    let code = tapkit_core::code::ReferralCode::parse(code_part).ok()?;
    partners
        .iter()
        .find(|p| p.code == code)
        .map(|p| (p.name.as_str(), p.code.as_str()))
        .or_else(|| {
            prior
                .iter()
                .find(|e| e.code == code.as_str())
                .map(|e| (e.partner.as_str(), e.code.as_str()))
        })
}

#[allow(clippy::too_many_arguments)]
fn provision_one<F: CardFeed>(
    feed: &mut F,
    partner: &Partner,
    partners: &[Partner],
    prior: &[Entry],
    journal: &mut Journal,
    opts: &BatchOptions,
    reporter: &mut Reporter,
    sum: &mut Summary,
    mut reg: Option<&mut Registration<'_>>,
) -> Result<PartnerResult, BatchError> {
    let url = partner.url(&opts.domain);
    let mut card = match feed.next_card().map_err(BatchError::Reader)? {
        Some(c) => c,
        None => return Ok(PartnerResult::Stopped),
    };
    let mut attempts = 0;
    loop {
        attempts += 1;
        let mut d = TagDriver::new(card);
        let result = write_for(&mut d, &url, opts).and_then(|r| {
            if opts.lock {
                d.lock(true, opts.password)?;
            }
            Ok(r)
        });
        let mut entry = Entry {
            time: journal::now_rfc3339(),
            partner: partner.name.clone(),
            affiliate_id: partner.affiliate_id,
            code: partner.code.to_string(),
            url: url.clone(),
            uid: None,
            tag_type: None,
            outcome: Outcome::Failed,
            verified: false,
            locked: false,
            server_registered: None,
            detail: None,
        };
        match result {
            Ok(r) => {
                entry.uid = Some(r.uid.clone());
                entry.tag_type = Some(r.tag_type.to_string());
                entry.url = r.url.clone();
                entry.verified = true;
                entry.locked = opts.lock;
                entry.outcome = if r.already_written {
                    Outcome::AlreadyProvisioned
                } else {
                    Outcome::Written
                };
                if r.mirror != opts.mirror {
                    entry.detail = Some("written without the UID/counter mirror: the URL leaves no room for it on this card".into());
                }
                let mut ok = true;
                if let Some(reg) = reg.as_deref_mut() {
                    match reg.register(partner, &r.uid) {
                        Registered::Yes => entry.server_registered = Some(true),
                        Registered::Pending(why) => {
                            entry.server_registered = Some(false);
                            entry.detail = Some(why);
                            sum.registration_pending += 1;
                        }
                        Registered::Refused(why) => {
                            ok = false;
                            entry.server_registered = Some(false);
                            entry.outcome = Outcome::Failed;
                            entry.detail = Some(format!(
                                "The card holds {}'s URL but the server refused to register it: {why}. Retire the card in the admin console, or set it aside and use another.",
                                partner.name
                            ));
                        }
                    }
                }
                journal.append(&entry)?;
                reporter.card(&entry, r.apdus);
                feed.done_with(d.into_transport(), ok)
                    .map_err(BatchError::Reader)?;
                return Ok(if !ok {
                    PartnerResult::Failed
                } else if r.already_written {
                    PartnerResult::Skipped
                } else {
                    PartnerResult::Done
                });
            }
            Err(e) if card_left(&e) => {
                entry.detail = Some(e.to_string());
                journal.append(&entry)?;
                reporter.event(&Event::Prompt {
                    message: &format!(
                        "The card for {} left the reader mid-write: put the same card back.",
                        partner.name
                    ),
                });
                card = match feed
                    .same_card_again(d.into_transport())
                    .map_err(BatchError::Reader)?
                {
                    Some(c) => c,
                    None => return Ok(PartnerResult::Stopped),
                };
            }
            Err(e) if reader_gone(&e) => return Err(BatchError::Reader(e)),
            Err(e) => {
                let refusal = e.is_refusal();
                entry.outcome = if refusal {
                    Outcome::Refused
                } else {
                    Outcome::Failed
                };
                let message = match &e {
                    DriverError::HoldsOtherUrl { existing } => {
                        match owner_of(existing, partners, prior) {
                            Some((name, code)) => format!(
                                "This card already belongs to {name} ({code}), not {}: set it aside and place a blank card.",
                                partner.name
                            ),
                            None => format!(
                                "This card holds another URL ({existing}): set it aside and place a blank card."
                            ),
                        }
                    }
                    other => format!("{other}. Place another card for {}.", partner.name),
                };
                entry.detail = Some(message.clone());
                journal.append(&entry)?;
                reporter.card(&entry, d.traffic().apdus);
                if refusal {
                    sum.refused_cards += 1;
                }
                feed.done_with(d.into_transport(), false)
                    .map_err(BatchError::Reader)?;
                if attempts >= opts.max_attempts {
                    reporter.event(&Event::Prompt {
                        message: &format!("Giving up on {} after {attempts} cards; it stays in the journal to retry.", partner.name),
                    });
                    return Ok(PartnerResult::Failed);
                }
                reporter.event(&Event::Prompt { message: &message });
                card = match feed.next_card().map_err(BatchError::Reader)? {
                    Some(c) => c,
                    None => return Ok(PartnerResult::Stopped),
                };
            }
        }
    }
}

/// One partner's line in a dry run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DryRunLine {
    /// Partner name.
    pub partner: String,
    /// Code.
    pub code: String,
    /// URL that would be written (placeholder included when mirrored).
    pub url: String,
    /// NDEF TLV bytes it takes.
    pub bytes: usize,
    /// The smallest NTAG it fits on with the mirror, if any.
    pub fits_with_mirror: Option<&'static str>,
    /// The smallest NTAG it fits on at all, if any.
    pub fits: Option<&'static str>,
}

/// What each card would get, and whether it fits, without a reader.
pub fn dry_run(partners: &[Partner], domain: &str) -> Vec<DryRunLine> {
    let smallest = |url: &str| {
        let msg = ndef::uri_message(url);
        [
            (&NTAG213, "NTAG213"),
            (&NTAG215, "NTAG215"),
            (&NTAG216, "NTAG216"),
        ]
        .into_iter()
        .find_map(|(l, name)| {
            let scan = type2::DataAreaScan {
                ndef_tlv_at: if name == "NTAG213" { 21 } else { 16 },
                ..Default::default()
            };
            let plan = type2::plan_write(&scan, l.data_area_len, &msg).ok()?;
            if url.contains(MIRROR_PLACEHOLDER) {
                let (_, rest) = ndef::split_uri_prefix(url);
                let skipped = url.len() - rest.len();
                let at = plan.message_at + 5 + url.find(MIRROR_PLACEHOLDER)? - skipped;
                l.mirror_position(at).ok()?;
            }
            Some(name)
        })
    };
    partners
        .iter()
        .map(|p| {
            let url = p.url(domain);
            let mirrored = crate::driver::mirrored_url(&url);
            DryRunLine {
                partner: p.name.clone(),
                code: p.code.to_string(),
                bytes: type2::ndef_tlv(&ndef::uri_message(&mirrored)).len(),
                fits_with_mirror: smallest(&mirrored),
                fits: smallest(&url),
                url: mirrored,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapkit_core::code::ReferralCode;

    /// A server that is down for the first `down_for` calls, refuses the UIDs in
    /// `refuse`, and records what it registered.
    struct FakeServer {
        down_for: usize,
        calls: usize,
        refuse: Vec<String>,
        registered: Vec<(i64, String)>,
    }

    impl Registrar for FakeServer {
        fn register(&mut self, p: &Partner, uid: &str) -> Result<(), ServerError> {
            self.calls += 1;
            if self.calls <= self.down_for {
                return Err(ServerError::Unreachable {
                    url: "http://fake".into(),
                    reason: "connection refused".into(),
                });
            }
            if self.refuse.iter().any(|u| u == uid) {
                return Err(ServerError::Refused {
                    what: format!("card {uid}"),
                    status: 409,
                    message: "bound to affiliate 9".into(),
                });
            }
            self.registered
                .push((p.affiliate_id.unwrap_or(-1), uid.to_owned()));
            Ok(())
        }
    }

    fn partners(n: usize) -> Vec<Partner> {
        (0..n)
            .map(|i| Partner {
                name: format!("Partner {i}"),
                code: ReferralCode::generate("Partner", 40 + i as u32),
                kind: "business".into(),
                affiliate_id: Some(100 + i as i64),
            })
            .collect()
    }

    fn opts() -> BatchOptions {
        BatchOptions {
            domain: "book.example.com".into(),
            mirror: true,
            lock: false,
            password: None,
            pack: [0, 0],
            max_attempts: 2,
        }
    }

    fn run(
        path: &std::path::Path,
        partners: &[Partner],
        server: &mut FakeServer,
        script: &str,
        seed: u64,
    ) -> (Summary, Vec<Entry>) {
        let (mut j, prior) = Journal::open(path).unwrap();
        let mut feed = SimFeed::new(parse_script(script).unwrap(), seed);
        let mut rep = Reporter::new(false, false);
        let stop = AtomicBool::new(false);
        let s = run_batch_with(
            &mut feed,
            partners,
            &mut j,
            &prior,
            &opts(),
            &mut rep,
            &stop,
            Some(server),
        )
        .unwrap();
        drop(j);
        (s, Journal::open(path).unwrap().1)
    }

    fn tmp(name: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("tapkit-reg-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    #[test]
    fn registrations_that_fail_offline_are_retried_by_the_next_run() {
        let path = tmp("offline.jsonl");
        let ps = partners(3);
        // The server goes away after the first card.
        let mut server = FakeServer {
            down_for: 0,
            calls: 0,
            refuse: vec![],
            registered: vec![],
        };
        let (j0, _) = Journal::open(&path).unwrap();
        drop(j0);
        let (s1, lines) = run(&path, &ps[..1], &mut server, "", 1);
        assert_eq!((s1.done, s1.registration_pending), (1, 0));
        assert_eq!(lines[0].server_registered, Some(true));
        server.down_for = usize::MAX;
        server.calls = 0;
        let (s2, lines) = run(&path, &ps, &mut server, "", 2);
        assert_eq!((s2.done, s2.skipped, s2.registration_pending), (2, 1, 2));
        // One attempt only: later cards do not wait on a server that just failed.
        assert_eq!(server.calls, 1);
        assert_eq!(
            lines
                .iter()
                .filter(|e| e.server_registered == Some(false))
                .count(),
            2
        );
        assert_eq!(pending_registrations(&lines).len(), 2);
        // Back online: the re-run registers both and touches no card.
        server.down_for = 0;
        let (s3, lines) = run(&path, &ps, &mut server, "", 3);
        assert_eq!(
            (
                s3.done,
                s3.skipped,
                s3.registered_late,
                s3.registration_pending
            ),
            (0, 3, 2, 0)
        );
        let late: Vec<&Entry> = lines
            .iter()
            .filter(|e| e.outcome == Outcome::Registered)
            .collect();
        assert_eq!(late.len(), 2);
        assert!(pending_registrations(&lines).is_empty());
        let ids: Vec<i64> = server.registered.iter().map(|r| r.0).collect();
        assert_eq!(ids, vec![100, 101, 102]);
        // Each registered UID is the one written for that partner.
        for (id, uid) in &server.registered {
            let written = lines
                .iter()
                .find(|e| e.affiliate_id == Some(*id) && e.outcome == Outcome::Written)
                .unwrap();
            assert_eq!(written.uid.as_deref(), Some(uid.as_str()));
        }
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_card_the_server_refuses_is_not_counted_done() {
        let path = tmp("refused.jsonl");
        let ps = partners(1);
        // First run offline, so the UID is known; then the server refuses that UID.
        let mut server = FakeServer {
            down_for: usize::MAX,
            calls: 0,
            refuse: vec![],
            registered: vec![],
        };
        let (_, lines) = run(&path, &ps, &mut server, "", 5);
        let uid = lines[0].uid.clone().unwrap();
        server.down_for = 0;
        server.refuse = vec![uid];
        // The retry is refused; the partner is then given a fresh card in the same run.
        let (s, lines) = run(&path, &ps, &mut server, "", 6);
        assert_eq!((s.done, s.registered_late), (1, 0), "{lines:#?}");
        let refused = lines.iter().find(|e| e.outcome == Outcome::Failed).unwrap();
        assert!(
            refused
                .detail
                .as_deref()
                .unwrap()
                .contains("bound to affiliate 9"),
            "{refused:?}"
        );
        assert_eq!(lines.last().unwrap().server_registered, Some(true));
        assert_eq!(server.registered.len(), 1);
        std::fs::remove_file(&path).unwrap();
    }
}
