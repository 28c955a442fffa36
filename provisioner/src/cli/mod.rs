//! Command-line interface: argument definitions (clap derive) and the CLI's error
//! ([`error`]), which owns the exit status and the `error:` / `caused by:` / `hint:`
//! output.

pub mod error;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use error::{CardOp, CliError, ExitStatus};

use crate::reader::sim::{Fault, SimTagKind};

/// Tapkit provisioner: writes partners' referral URLs onto NTAG213/215/216 NFC cards
/// through a PC/SC reader (ACR122U, ACR1252U …), verifies them and locks them.
///
/// No reader at hand? Every command takes `--reader sim`, an emulated reader with an
/// emulated NTAG on it, and `provisioner sim-card` serves that emulation to the system's
/// pcscd through the vpcd virtual reader.
#[derive(Debug, Parser)]
#[command(
    name = "provisioner",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// More log output (-v info, -vv debug, -vvv APDU trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List PC/SC readers and whether a card is on each.
    Readers {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Identify the card on a reader and show its URL, lock state and tap counter.
    Read {
        /// Which reader.
        #[command(flatten)]
        reader: ReaderArgs,
        /// Print JSON (`type`, `uid`, `url`, `capacity`, `lock`, `counter` …).
        #[arg(long)]
        json: bool,
    },
    /// Write a URL onto the card as its one NDEF record, then read it back and compare.
    ///
    /// Only pages that differ are written, so writing the URL a card already holds
    /// costs reads only. A card holding another URL is refused unless --overwrite.
    Write {
        /// Which reader.
        #[command(flatten)]
        reader: ReaderArgs,
        /// Append `?m=<UID>x<counter>` filled in by the chip on every tap, so the server
        /// knows which card was tapped and can spot copied URLs.
        #[arg(long, conflicts_with = "sun")]
        mirror: bool,
        /// NTAG 424 DNA: a URL every tap of which is signed (`?e=…&c=…`, SUN), so it
        /// cannot be copied. The card's keys become Tapkit's per-card keys from --keys;
        /// two test taps are verified with the server's algorithm. A card pulled midway
        /// is finished by running the same command again. Register the card with the key
        /// version printed.
        #[arg(long, requires = "keys", conflicts_with_all = ["password", "set_password", "overwrite"])]
        sun: bool,
        /// With --sun: the brand's key file (made by `provisioner keys new`).
        #[arg(long, value_name = "FILE", requires = "sun")]
        keys: Option<PathBuf>,
        /// With --sun: append-only record of every key change, made durable before the
        /// change is sent.
        #[arg(long, default_value = "sun-key-journal.jsonl", value_name = "FILE")]
        journal: PathBuf,
        /// Replace a different URL (or unreadable data) already on the card.
        #[arg(long)]
        overwrite: bool,
        /// Card password, 8 hex digits: used to unlock a protected card, and set on the
        /// card with --set-password. Phones can still read a protected card.
        #[arg(long, env = "TAPKIT_TAG_PASSWORD", hide_env_values = true, value_parser = parse_password)]
        password: Option<[u8; 4]>,
        /// Protect the card against rewriting with --password (PWD/PACK/AUTH0).
        #[arg(long, requires = "password")]
        set_password: bool,
        /// PACK (password acknowledge) to store with --set-password, 4 hex digits.
        #[arg(long, default_value = "0000", value_parser = parse_pack)]
        pack: [u8; 2],
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        /// The URL to write, e.g. https://book.example.com/r/IRONGYM-7K2M9Q
        url: String,
    },
    /// Return an NTAG 424 DNA written with --sun to factory keys and settings, with an
    /// empty NDEF file, so it can be written again (for example under a new key
    /// version). Interrupted, it resumes when run again. Retire the card's binding on the
    /// server: its taps stop verifying.
    Reset {
        /// Which reader.
        #[command(flatten)]
        reader: ReaderArgs,
        /// The key file the card was keyed with.
        #[arg(long, value_name = "FILE")]
        keys: PathBuf,
        /// Append-only record of every key change.
        #[arg(long, default_value = "sun-key-journal.jsonl", value_name = "FILE")]
        journal: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make the card permanently read-only (URL, mirror and configuration frozen).
    Lock {
        /// Which reader.
        #[command(flatten)]
        reader: ReaderArgs,
        /// Confirm that the lock cannot be undone. Without it nothing is written.
        #[arg(long)]
        permanent: bool,
        /// Password of a protected card.
        #[arg(long, env = "TAPKIT_TAG_PASSWORD", hide_env_values = true, value_parser = parse_password)]
        password: Option<[u8; 4]>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Provision a batch: for each partner, wait for a card, write and verify its URL
    /// (with the UID/counter mirror where it fits), journal it, signal, wait for removal.
    ///
    /// Re-running with the same --journal resumes where the batch stopped. Ctrl-C stops
    /// cleanly after the current card.
    Provision {
        /// Where the partners come from.
        #[command(flatten)]
        source: SourceArgs,
        /// Which reader.
        #[command(flatten)]
        reader: ReaderArgs,
        /// Append-only JSON-lines record of every card; re-use it to resume.
        #[arg(long, default_value = "provision-journal.jsonl")]
        journal: PathBuf,
        /// No progress bar and no waiting for a person: for scripts and tests. With
        /// --reader sim the cards come from --sim-cards.
        #[arg(long)]
        non_interactive: bool,
        /// With --reader sim: the cards placed, in order, e.g.
        /// "ntag215,ntag215+pull-at-write:3,ultralight-ev1,again" (then fresh NTAG215s).
        #[arg(long, default_value = "")]
        sim_cards: String,
        /// Do not turn on the UID/counter mirror.
        #[arg(long)]
        no_mirror: bool,
        /// Lock every card permanently after writing (cannot be undone).
        #[arg(long)]
        lock: bool,
        /// Protect every card against rewriting with this password (8 hex digits).
        #[arg(long, env = "TAPKIT_TAG_PASSWORD", hide_env_values = true, value_parser = parse_password)]
        password: Option<[u8; 4]>,
        /// Cards to try per partner before moving on.
        #[arg(long, default_value_t = 3)]
        max_attempts: u32,
        /// Show what each card would get and whether it fits, without a reader.
        #[arg(long)]
        dry_run: bool,
        /// NTAG 424 DNA cards whose every tap is signed (SUN), keyed per card from
        /// --keys; each is registered with its key version. Every key change is recorded
        /// first in JOURNAL's sibling NAME.keys.jsonl; a card pulled midway is finished
        /// when it is put back.
        #[arg(long, requires = "keys", conflicts_with_all = ["members", "lock", "password"])]
        sun: bool,
        /// With --sun: the brand's key file (made by `provisioner keys new`).
        #[arg(long, value_name = "FILE", requires = "sun")]
        keys: Option<PathBuf>,
        /// JSON-lines events on stdout instead of a progress bar.
        #[arg(long)]
        json: bool,
    },
    /// Render the print shop's files: a PDF of the partners' cards (CR80, 3 mm bleed,
    /// crop marks, CMYK, embedded fonts, vector QR checked by a decoder), plus PNG/SVG
    /// QR codes for the portal.
    Print {
        /// Where the partners come from.
        #[command(flatten)]
        source: SourceArgs,
        /// per-card: one card per page (trim + bleed, plus a CSV of codes) for plastic-card
        /// makers; a4 (10-up), letter (8-up), sra3 (21-up): imposed sheets with crop marks.
        #[arg(long, value_enum, default_value = "per-card")]
        layout: crate::print::layout::SheetKind,
        /// The PDF to write.
        #[arg(long)]
        out: PathBuf,
        /// Also write each partner's QR as a 1024 px PNG and an SVG into this folder.
        #[arg(long)]
        png_dir: Option<PathBuf>,
        /// Card template (TOML, see assets/templates/default.toml); default: built in.
        #[arg(long)]
        template: Option<PathBuf>,
        /// Write the layout (page boxes, card and QR positions) as JSON here.
        #[arg(long)]
        layout_json: Option<PathBuf>,
        /// Fronts only (no back pages / back sheets).
        #[arg(long)]
        no_backs: bool,
    },
    /// Serve one emulated tag to pcscd through the vpcd virtual reader until interrupted.
    ///
    /// pcscd must run with the vpcd driver (package vsmartcard-vpcd); the card appears
    /// on reader "Virtual PCD 00 00" for port 35963. A pulled or torn card (see --fault)
    /// is put back after --reinsert-ms.
    SimCard {
        /// Where vpcd listens (slot 0 is port 35963, slot 1 is 35964).
        #[arg(long, default_value = "127.0.0.1:35963")]
        vpcd: SocketAddr,
        /// Tag type: ntag213, ntag215, ntag216 (or ultralight-ev1, ntag424, classic1k to
        /// test refusals).
        #[arg(long, default_value = "ntag215")]
        tag: SimTagKind,
        /// Load the tag memory from FILE if it exists; save it back after every change.
        #[arg(long)]
        image: Option<PathBuf>,
        /// Inject a fault: pull-at-write:N, tear-at-write:N, nak-at:N, slow-ms:MS,
        /// reset-after:N; for ntag424 tear-at-change:N (the N-th ChangeKey or
        /// ChangeFileSettings is made, then the card is torn away), wrong-key:SLOT (a key
        /// nobody knows), replay-response:N (the N-th secured answer is the previous one
        /// again). Repeatable.
        #[arg(long)]
        fault: Vec<Fault>,
        /// After a pulled or torn card, present it again after this many milliseconds.
        #[arg(long, default_value_t = 1500)]
        reinsert_ms: u64,
        /// The emulated reader: acr122u (direct transmit wrapped in PN532
        /// InCommunicateThru) or acr1252u (the tag's command raw, as ACR1252U-class
        /// readers take it).
        #[arg(long, value_enum, default_value = "acr122u")]
        reader_kind: ReaderKind,
    },
    /// The brand's NTAG 424 DNA master keys (the SUN key file).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Try it out: generate referral codes for sample partners, write their URLs onto
    /// emulated cards, read them back and show the result.
    Demo {
        /// The brand's domain in the card URLs.
        #[arg(long, default_value = "book.example.com")]
        domain: String,
    },
}

/// Which reader `sim-card` emulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReaderKind {
    /// ACR122U: PN532 InCommunicateThru (`FF 00 00 00 Lc D4 42 …`).
    Acr122u,
    /// ACR1252U and similar: the raw command (`FF 00 00 00 Lc …`).
    Acr1252u,
}

/// The partner list: a CSV file (offline) or the Tapkit server.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Partners from a CSV file with a header row: name,code[,kind] (offline work; cards
    /// are not registered with a server).
    #[arg(long, conflicts_with = "server")]
    pub csv: Option<PathBuf>,
    /// Partners from the Tapkit server: the affiliates that still need a card. Each
    /// verified card is registered to its affiliate; registrations that fail while the
    /// server is unreachable are retried by the next run with the same journal. The
    /// admin token comes from TAPKIT_ADMIN_TOKEN or the config file.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// With --server: every active affiliate, not only those still needing a card
    /// (e.g. to reprint the whole set).
    #[arg(long, conflicts_with = "csv")]
    pub all: bool,
    /// With --server: member cards instead of partner cards. The members come from the
    /// server (the live members without a card; with --all, every live member with a
    /// card); each card gets the member's page, https://DOMAIN/m/CODE, with the
    /// UID/counter mirror the counter display checks in with, and is bound to the member
    /// after it verifies. Printed, a member card shows the first name and the plan.
    #[arg(long, conflicts_with = "csv")]
    pub members: bool,
    /// Config file with `server = "https://…"` and `token = "…"` (or `token_file =
    /// "…"`). Default: ~/.config/tapkit/provisioner.toml, if present.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The brand's domain: cards get https://DOMAIN/r/CODE (QR codes add ?s=qr).
    /// Required with --csv; with --server it defaults to the server's own.
    #[arg(long)]
    pub domain: Option<String>,
}

/// Which reader to use.
#[derive(Debug, Args)]
pub struct ReaderArgs {
    /// A PC/SC reader name (or a unique part of it), or `sim` for the built-in
    /// simulator. Default: the only reader attached.
    #[arg(long, env = "TAPKIT_READER")]
    pub reader: Option<String>,
    /// Seconds to wait for a card to be placed on the reader.
    #[arg(long, default_value_t = 30)]
    pub wait: u64,
    /// With --reader sim: the emulated tag type.
    #[arg(long, default_value = "ntag215")]
    pub sim_tag: SimTagKind,
    /// With --reader sim: keep the emulated tag's memory in this file between runs.
    #[arg(long)]
    pub sim_image: Option<PathBuf>,
}

fn parse_password(s: &str) -> Result<[u8; 4], String> {
    let b = crate::hex::decode(s)
        .map_err(|_| "the password is 8 hex digits, e.g. 1A2B3C4D".to_owned())?;
    b.try_into()
        .map_err(|_| "the password is 8 hex digits, e.g. 1A2B3C4D".to_owned())
}

fn parse_pack(s: &str) -> Result<[u8; 2], String> {
    let b = crate::hex::decode(s).map_err(|_| "the PACK is 4 hex digits, e.g. 0000".to_owned())?;
    b.try_into()
        .map_err(|_| "the PACK is 4 hex digits, e.g. 0000".to_owned())
}

/// `provisioner keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new key file with one fresh random master key (version 1), readable by
    /// its owner only. Cards keyed with it (`write --sun --keys FILE`) verify on a
    /// server that reads the same file (TAPKIT_SUN_KEYS_FILE). The key is never printed.
    ///
    /// Keep the file as you keep the server's other secrets: lose it and no card keyed
    /// with it can be re-keyed; leak it and its cards can be copied.
    New {
        /// The file to create; an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
    },
    /// Add the next key version to a key file (rotation): new cards are keyed with it,
    /// cards keyed under older versions still verify. Copy the file to the server, then
    /// restart it.
    Rotate {
        /// The key file to add a version to.
        #[arg(long)]
        keys: PathBuf,
    },
}
