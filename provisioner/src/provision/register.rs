//! Registering verified cards with the server: a [`Registrar`] binds a card's UID to its
//! partner; while the server is unreachable, registrations stay pending in the journal
//! and the next run retries them before it asks for any card.

use crate::journal::{self, Entry, Journal};
use crate::partners::Partner;
use crate::server_api::{ServerApi, ServerError};

use super::report::{Event, Reporter};
use super::{BatchError, Summary};
use crate::journal::Outcome;

/// Where verified cards are registered (the server's admin API; a fake in unit tests).
pub trait Registrar {
    /// Binds the card `uid` to `partner` on the server; a SUN card with its key version.
    fn register(
        &mut self,
        partner: &Partner,
        uid: &str,
        key_version: Option<u8>,
    ) -> Result<(), ServerError>;
}

impl Registrar for ServerApi {
    fn register(
        &mut self,
        partner: &Partner,
        uid: &str,
        key_version: Option<u8>,
    ) -> Result<(), ServerError> {
        if let Some(member) = partner.member_id {
            return self.register_member_card(member, uid);
        }
        let id = partner.affiliate_id.ok_or_else(|| {
            ServerError::Config(format!(
                "{} has no affiliate id on the server; take the partner list from --server",
                partner.name
            ))
        })?;
        self.register_card(id, uid, key_version)
    }
}

/// After a registration attempt failed for want of the server, later cards do not wait
/// on it again for this long (their registrations stay pending in the journal).
const OFFLINE_BACKOFF: std::time::Duration = std::time::Duration::from_secs(60);

/// The registrar of a batch and whether the server looked down lately.
pub(super) struct Registration<'a> {
    pub(super) registrar: &'a mut dyn Registrar,
    pub(super) offline_since: Option<std::time::Instant>,
}

/// What registering one card came to.
pub(super) enum Registered {
    Yes,
    /// The server could not be reached: the card stays pending in the journal.
    Pending(String),
    /// The server refused the binding (e.g. the UID is bound to another affiliate).
    Refused(String),
}

impl Registration<'_> {
    pub(super) fn register(
        &mut self,
        partner: &Partner,
        uid: &str,
        key_version: Option<u8>,
    ) -> Registered {
        if let Some(t) = self.offline_since
            && t.elapsed() < OFFLINE_BACKOFF
        {
            return Registered::Pending(
                "not registered yet: the server was unreachable a moment ago; the next run retries it".into(),
            );
        }
        match self.registrar.register(partner, uid, key_version) {
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

/// The journal's last word on each code (later lines supersede earlier ones).
pub(super) fn latest_by_code(entries: &[Entry]) -> std::collections::HashMap<&str, &Entry> {
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
pub(super) fn retry_pending(
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
        let code = if e.member_id.is_some() {
            crate::partners::MemberCode::parse(&e.code).map(crate::partners::CardCode::Member)
        } else {
            tapkit_core::code::ReferralCode::parse(&e.code)
                .map(Into::into)
                .map_err(|e| e.to_string())
        };
        let Ok(code) = code else {
            continue;
        };
        let partner = Partner {
            name: e.partner.clone(),
            code,
            kind: String::new(),
            affiliate_id: e.affiliate_id,
            member_id: e.member_id,
        };
        let mut line = Entry {
            time: journal::now_rfc3339(),
            server_registered: Some(true),
            detail: None,
            ..(*e).clone()
        };
        match reg.register(&partner, uid, e.key_version) {
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
