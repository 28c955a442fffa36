//! What the batch tells the admin: a progress bar with counts and the last card's result,
//! plain lines when not on a terminal, or JSON-lines events for scripts (`--json`).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use super::Summary;
use crate::journal::{Entry, Outcome};

/// A batch event.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event<'a> {
    /// The next partner: place a card for it.
    Next {
        /// Partner name.
        partner: &'a str,
        /// Its code.
        code: &'a str,
        /// The URL its card gets.
        url: &'a str,
    },
    /// A card was handled (its journal line).
    Card {
        /// The journal entry.
        #[serde(flatten)]
        entry: &'a Entry,
        /// APDUs it took.
        apdus: u32,
    },
    /// Something the admin must do.
    Prompt {
        /// The instruction.
        message: &'a str,
    },
    /// The batch ended.
    Summary(Summary),
}

/// Writes events as JSON lines or as human output.
#[derive(Debug)]
pub struct Reporter {
    json: bool,
    bar: Option<ProgressBar>,
    last: String,
}

impl Reporter {
    /// JSON lines on stdout when `json`; else a progress bar on a terminal (plain lines
    /// otherwise, e.g. under `--non-interactive`).
    pub fn new(json: bool, interactive: bool) -> Self {
        let bar = (!json && interactive).then(|| {
            let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len}  {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b
        });
        Self {
            json,
            bar,
            last: String::new(),
        }
    }

    pub(super) fn start(&mut self, total: usize, already: usize) {
        if let Some(b) = &self.bar {
            b.set_length(total as u64);
            b.set_position(already as u64);
        }
        if !self.json && already > 0 {
            self.line(&format!("Resuming: {already} of {total} partners already have their card (from the journal)."));
        }
    }

    fn line(&self, s: &str) {
        match &self.bar {
            Some(b) => b.println(s),
            None => eprintln!("{s}"),
        }
    }

    /// Reports an event.
    pub fn event(&mut self, e: &Event<'_>) {
        if self.json {
            println!("{}", serde_json::to_string(e).unwrap_or_default());
            return;
        }
        match e {
            Event::Next { partner, code, url } => self.line(&format!(
                "Next: {partner} ({code}) — place a card. It gets {url}"
            )),
            Event::Card { .. } => {}
            Event::Prompt { message } => self.line(message),
            Event::Summary(s) => {
                if let Some(b) = &self.bar {
                    b.finish_and_clear();
                }
                println!(
                    "{} {} written, {} skipped, {} failed, {} remaining ({} cards refused).",
                    if s.stopped { "Stopped:" } else { "Done:" },
                    s.done,
                    s.skipped,
                    s.failed,
                    s.remaining,
                    s.refused_cards
                );
                if s.registered_late > 0 {
                    println!(
                        "{} cards from an earlier run are now registered with the server.",
                        s.registered_late
                    );
                }
                if s.registration_pending > 0 {
                    println!(
                        "{} cards are written but NOT registered with the server (it was unreachable): run the same command again with the same --journal when it is back.",
                        s.registration_pending
                    );
                }
            }
        }
    }

    pub(super) fn card(&mut self, entry: &Entry, apdus: u32) {
        if self.json {
            self.event(&Event::Card { entry, apdus });
            return;
        }
        let uid = entry.uid.as_deref().unwrap_or("?");
        let server = match entry.server_registered {
            Some(true) => ", registered",
            Some(false) => ", NOT registered yet",
            None => "",
        };
        self.last = match entry.outcome {
            Outcome::Written => format!(
                "✓ {} → card {uid}{}{server}",
                entry.partner,
                if entry.locked { " (locked)" } else { "" }
            ),
            Outcome::AlreadyProvisioned => format!(
                "= {}: card {uid} already provisioned, skipped{server}",
                entry.partner
            ),
            Outcome::Registered => format!(
                "✓ {}: card {uid} from an earlier run is now registered",
                entry.partner
            ),
            Outcome::Refused => format!("✗ card refused for {}", entry.partner),
            Outcome::Failed => format!("✗ card failed for {}", entry.partner),
        };
        let last = self.last.clone();
        self.line(&last);
        if entry.server_registered == Some(false)
            && let Some(d) = &entry.detail
        {
            self.line(&format!("  {d}"));
        }
    }

    pub(super) fn progress(&mut self, s: &Summary) {
        if let Some(b) = &self.bar {
            b.inc(1);
            b.set_message(format!(
                "done {} · skipped {} · failed {} — last: {}",
                s.done, s.skipped, s.failed, self.last
            ));
        }
    }
}
