//! The front desk's card reader (`run --reader NAME`): a thread that watches a PC/SC
//! reader through pcscd and, each time a card is placed, reads what a phone would (the
//! NDEF URL with the UID/counter mirror filled in) with the provisioner's tag driver
//! (the same library the admin writes the cards with, not a copy), hands it to the desk
//! ([`crate::desk`]), and waits for the card to be taken away. A missing reader or a
//! restarted pcscd is waited out and logged once per change; it never stops the display.

use std::time::Duration;

use tapkit_provisioner::driver::TagDriver;
use tapkit_provisioner::reader::TransportError;
use tapkit_provisioner::reader::pcsc::{PcscTransport, PcscWatcher, resolve_reader};

use crate::desk::CardRead;

/// How long to wait before looking for a missing reader again.
const RETRY: Duration = Duration::from_secs(2);

/// Reads one placed card: its URL, or what to tell staff.
fn read_card(reader: &str) -> Result<CardRead, TransportError> {
    let t = PcscTransport::open(reader, Duration::from_secs(1), Box::new(|_| {}))?;
    let mut d = TagDriver::new(t);
    let read = match d.read() {
        Ok(info) => match (info.url, info.unsupported, info.content_error) {
            (Some(url), _, _) => CardRead::Url(url),
            (None, Some(why), _) => {
                tracing::info!(%why, "a card of a kind member cards are not was placed");
                CardRead::Unreadable("This is not a member card".into())
            }
            (None, None, Some(why)) => {
                tracing::warn!(%why, "a card with damaged content was placed");
                CardRead::Unreadable(
                    "This card's content is damaged: the front desk can issue a new one".into(),
                )
            }
            (None, None, None) => {
                CardRead::Unreadable("This card is blank: it is not a member card".into())
            }
        },
        Err(e) if e.card_left() => CardRead::Unreadable(
            "The card was taken away too soon: hold it on the reader for a second".into(),
        ),
        Err(e) => {
            tracing::warn!(%e, "the card could not be read");
            CardRead::Unreadable("The card could not be read: hold it flat on the reader".into())
        }
    };
    let mut t = d.into_transport();
    tapkit_provisioner::reader::Transport::signal(&mut t, matches!(read, CardRead::Url(_)));
    t.close();
    Ok(read)
}

/// Watches `wanted` (a PC/SC reader name or a unique part of it) forever, sending each
/// card read to `reads`. Returns only when the desk is gone.
pub fn watch(wanted: &str, reads: &tokio::sync::mpsc::Sender<CardRead>) {
    let mut last_problem = String::new();
    let problem = |last: &mut String, p: String| {
        if p != *last {
            tracing::warn!("card reader: {p}; retrying every {}s", RETRY.as_secs());
            *last = p;
        }
        std::thread::sleep(RETRY);
    };
    loop {
        let name = match resolve_reader(wanted) {
            Ok(n) => n,
            Err(e) => {
                problem(&mut last_problem, e.to_string());
                continue;
            }
        };
        let watcher = match PcscWatcher::new(&name) {
            Ok(w) => w,
            Err(e) => {
                problem(&mut last_problem, e.to_string());
                continue;
            }
        };
        tracing::info!(reader = %name, "watching the card reader for member cards");
        last_problem.clear();
        loop {
            match watcher.wait(true, Some(Duration::from_secs(30))) {
                Ok(false) => continue,
                Ok(true) => {}
                Err(e) => {
                    problem(&mut last_problem, e.to_string());
                    break;
                }
            }
            let read = match read_card(&name) {
                Ok(r) => r,
                // Gone before it could be opened: nothing to show.
                Err(TransportError::CardRemoved | TransportError::NoCard { .. }) => continue,
                Err(e) => {
                    tracing::warn!(%e, "the card reader failed");
                    CardRead::Unreadable("The reader could not read the card: tap it again".into())
                }
            };
            if reads.blocking_send(read).is_err() {
                return;
            }
            // One check-in per placement: wait for the card to leave.
            loop {
                match watcher.wait(false, Some(Duration::from_secs(30))) {
                    Ok(true) => break,
                    Ok(false) => continue,
                    Err(e) => {
                        problem(&mut last_problem, e.to_string());
                        break;
                    }
                }
            }
        }
    }
}
