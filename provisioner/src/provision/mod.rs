//! `provisioner provision`: a batch of partners at the reader, card by card — identify,
//! write (with the UID/counter mirror where it fits), verify, optionally protect and
//! lock, journal, signal, wait for removal — resumable from its journal.

pub mod feed;
mod register;
mod report;

use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use tapkit_core::ndef;
use tapkit_core::ntag::{MIRROR_PLACEHOLDER, NTAG213, NTAG215, NTAG216};
use tapkit_core::type2;

pub use feed::{CardFeed, FeedError, PcscFeed, ScriptedCard, SimFeed, parse_script};
pub use register::{Registrar, pending_registrations};
pub use report::{Event, Reporter};

use crate::driver::{DriverError, TagDriver, WriteOptions, WriteReport};
use crate::journal::{self, Entry, Journal, JournalError, Outcome};
use crate::partners::Partner;
use crate::reader::Transport;
use register::{Registered, Registration, latest_by_code, retry_pending};

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
    /// NTAG 424 DNA cards written with SUN under these keys, each key change recorded
    /// first in the key journal.
    pub sun: Option<SunBatch>,
}

/// A SUN batch's keys and key journal.
#[derive(Debug, Clone)]
pub struct SunBatch {
    /// The brand's key file.
    pub keys: std::sync::Arc<tapkit_core::ntag424::keyfile::KeyFile>,
    /// Where each key change is recorded before it is sent.
    pub key_journal: std::path::PathBuf,
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
    /// The reader or the PC/SC service went away in the middle of a card.
    #[error(transparent)]
    Reader(DriverError),
    /// The next card could not be had (the reader, or the simulator's card script).
    #[error(transparent)]
    Feed(#[from] FeedError),
}

fn reader_gone(e: &DriverError) -> bool {
    matches!(e, DriverError::Transport(t) if t.is_reader_unavailable())
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

/// Writes with the mirror when it fits, without it otherwise (an NTAG213 with a long URL);
/// with SUN, an NTAG 424 DNA keyed per card. The key version, for SUN.
fn write_for<T: Transport>(
    d: &mut TagDriver<T>,
    url: &str,
    opts: &BatchOptions,
) -> Result<(WriteReport, Option<u8>), DriverError> {
    let Some(sun) = &opts.sun else {
        return write_plain(d, url, opts).map(|r| (r, None));
    };
    d.expect_ntag424(|tag| {
        format!(
            "this batch writes NTAG 424 DNA cards with SUN and this is {tag}; place an NTAG 424 DNA"
        )
    })?;
    let mut record = crate::journal::key_step_recorder(&sun.key_journal)
        .map_err(|e| DriverError::Journal(e.to_string()))?;
    let r = d.write_sun(url, &sun.keys, &mut record)?;
    let report = WriteReport {
        tag_type: r.tag_type,
        uid: r.uid,
        url: r.url,
        url_as_read: r.urls_as_read.last().cloned().unwrap_or_default(),
        already_written: r.already_written,
        pages_written: 0,
        pages_unchanged: 0,
        mirror: opts.mirror,
        password_set: false,
        apdus: r.apdus,
    };
    Ok((report, Some(r.key_version)))
}

fn write_plain<T: Transport>(
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
    let code = crate::partners::CardCode::from_url(url)?;
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
    let mut card = match feed.next_card()? {
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
            member_id: partner.member_id,
            code: partner.code.to_string(),
            url: url.clone(),
            uid: None,
            tag_type: None,
            outcome: Outcome::Failed,
            verified: false,
            locked: false,
            server_registered: None,
            detail: None,
            key_version: None,
        };
        match result {
            Ok((r, key_version)) => {
                entry.key_version = key_version;
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
                    match reg.register(partner, &r.uid, key_version) {
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
                feed.done_with(d.into_transport(), ok)?;
                return Ok(if !ok {
                    PartnerResult::Failed
                } else if r.already_written {
                    PartnerResult::Skipped
                } else {
                    PartnerResult::Done
                });
            }
            Err(e) if e.card_left() => {
                entry.detail = Some(e.to_string());
                journal.append(&entry)?;
                reporter.event(&Event::Prompt {
                    message: &format!(
                        "The card for {} left the reader mid-write: put the same card back.",
                        partner.name
                    ),
                });
                card = match feed.same_card_again(d.into_transport())? {
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
                    DriverError::HoldsOtherUrl { existing }
                    | DriverError::SunHoldsOtherUrl { existing } => {
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
                feed.done_with(d.into_transport(), false)?;
                if attempts >= opts.max_attempts {
                    reporter.event(&Event::Prompt {
                        message: &format!("Giving up on {} after {attempts} cards; it stays in the journal to retry.", partner.name),
                    });
                    return Ok(PartnerResult::Failed);
                }
                reporter.event(&Event::Prompt { message: &message });
                card = match feed.next_card()? {
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
mod tests;
