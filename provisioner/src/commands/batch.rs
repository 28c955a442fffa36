//! The subcommands over a partner list: `provision` (a batch of cards at the reader)
//! and `print` (the print shop's files).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::cli::{CardOp, CliError, ReaderArgs, SourceArgs};
use crate::journal::{Entry, Journal};
use crate::partners::Partner;
use crate::provision::{
    self as batch, BatchError, BatchOptions, CardFeed, FeedError, PcscFeed, Reporter, SimFeed,
};
use crate::reader::{Cause, pcsc, sim};
use crate::server_api::{Credentials, ServerApi};

/// `provisioner provision`'s options.
pub(super) struct ProvisionArgs {
    pub source: SourceArgs,
    pub reader: ReaderArgs,
    pub journal: PathBuf,
    pub non_interactive: bool,
    pub sim_cards: String,
    pub mirror: bool,
    pub lock: bool,
    pub password: Option<[u8; 4]>,
    pub max_attempts: u32,
    pub dry_run: bool,
    pub json: bool,
    /// `--sun --keys FILE`: NTAG 424 DNA cards keyed per card.
    pub sun_keys: Option<PathBuf>,
}

/// The partners of a batch or print job, the brand domain, and the server they came
/// from (if any).
struct Partners {
    list: Vec<Partner>,
    domain: String,
    server: Option<ServerApi>,
}

fn server_error(error: crate::server_api::ServerError) -> CliError {
    CliError::Server { error }
}

fn domain_ok(domain: &str) -> Result<(), CliError> {
    crate::partners::check_domain(domain).map_err(|reason| CliError::BadDomain { reason })
}

/// Reads the partner list from the CSV file or the server; bad rows are reported with
/// their line numbers and skipped.
fn load_partners(src: &SourceArgs) -> Result<Partners, CliError> {
    let (list, errors, domain, server, origin) = match &src.csv {
        Some(csv) => {
            let domain = src.domain.clone().ok_or(CliError::MissingDomain)?;
            domain_ok(&domain)?;
            let l =
                crate::partners::read_csv(csv).map_err(|error| CliError::PartnerCsv { error })?;
            (
                l.partners,
                l.errors,
                domain,
                None,
                csv.display().to_string(),
            )
        }
        None => {
            if src.server.is_none()
                && src.config.is_none()
                && !crate::server_api::default_config_path().is_some_and(|p| p.exists())
            {
                return Err(CliError::NoPartnerSource);
            }
            let creds = Credentials::resolve(
                src.server.as_deref(),
                std::env::var("TAPKIT_ADMIN_TOKEN").ok(),
                src.config.as_deref(),
            )
            .map_err(server_error)?;
            let api = ServerApi::new(creds).map_err(server_error)?;
            let remote = if src.members {
                api.members(!src.all)
            } else {
                api.partners(!src.all)
            }
            .map_err(server_error)?;
            if remote.partners.is_empty() && remote.errors.is_empty() {
                if src.members && src.all {
                    println!("{} has no live member with a card.", api.base());
                } else if src.members {
                    println!(
                        "Every live member on {} has a card: nothing to do (--all takes every live member with a card).",
                        api.base()
                    );
                } else if src.all {
                    println!("{} has no active affiliate: nothing to do.", api.base());
                } else {
                    println!(
                        "Every affiliate on {} has a card: nothing to do (--all takes every active affiliate).",
                        api.base()
                    );
                }
                return Ok(Partners {
                    list: Vec::new(),
                    domain: String::new(),
                    server: Some(api),
                });
            }
            let domain = match (&src.domain, remote.domain) {
                (Some(d), _) => d.clone(),
                (None, Some(d)) => d,
                // Only when no entry was usable (reported below with the reason).
                (None, None) => String::new(),
            };
            if !remote.partners.is_empty() {
                domain_ok(&domain)?;
            }
            let origin = format!(
                "{} ({})",
                api.base(),
                if src.members && src.all {
                    "live members with a card"
                } else if src.members {
                    "members needing a card"
                } else if src.all {
                    "active affiliates"
                } else {
                    "affiliates needing a card"
                }
            );
            (remote.partners, remote.errors, domain, Some(api), origin)
        }
    };
    for e in &errors {
        eprintln!("{origin}: {e} — skipped");
    }
    if list.is_empty() {
        return Err(CliError::NoUsableRows { origin });
    }
    Ok(Partners {
        list,
        domain,
        server,
    })
}

/// What each card would get and whether it fits, without a reader.
fn dry_run(partners: &[Partner], domain: &str, json: bool) -> Result<(), CliError> {
    let lines = batch::dry_run(partners, domain);
    let mut too_long = 0;
    for l in &lines {
        if json {
            println!("{}", serde_json::to_string(l).unwrap_or_default());
            continue;
        }
        let fit = match (l.fits_with_mirror, l.fits) {
            (Some(t), _) => format!("fits {t}+ with mirror"),
            (None, Some(t)) => format!("fits {t}+ without mirror"),
            (None, None) => {
                too_long += 1;
                "DOES NOT FIT any NTAG21x".to_owned()
            }
        };
        println!(
            "{:<24} {:<16} {:>4} bytes  {:<28} {}",
            l.partner, l.code, l.bytes, fit, l.url
        );
    }
    if too_long > 0 {
        return Err(CliError::UrlsTooLong { count: too_long });
    }
    Ok(())
}

/// Everything a batch runs with, apart from where its cards come from.
struct Run<'a> {
    partners: &'a [Partner],
    journal: &'a mut Journal,
    prior: &'a [Entry],
    opts: &'a BatchOptions,
    reporter: &'a mut Reporter,
    stop: &'a AtomicBool,
    server: Option<&'a mut ServerApi>,
}

impl Run<'_> {
    fn with<F: CardFeed>(
        self,
        feed: &mut F,
        reader: &str,
        script: &str,
    ) -> Result<batch::Summary, CliError> {
        let registrar = self.server.map(|s| s as &mut dyn batch::Registrar);
        batch::run_batch_with(
            feed,
            self.partners,
            self.journal,
            self.prior,
            self.opts,
            self.reporter,
            self.stop,
            registrar,
        )
        .map_err(|e| batch_error(e, reader, script))
    }
}

fn batch_error(e: BatchError, reader: &str, script: &str) -> CliError {
    match e {
        BatchError::Journal(error) => CliError::Journal { error },
        BatchError::Reader(error) => CliError::Card {
            op: CardOp::Provision,
            reader: reader.to_owned(),
            error,
        },
        BatchError::Feed(f) => feed_error(f, script),
    }
}

fn feed_error(e: FeedError, script: &str) -> CliError {
    match e {
        FeedError::Reader(error) => CliError::Reader {
            command: "provision",
            error,
        },
        FeedError::Image(error) => CliError::SimImage { error },
        e @ FeedError::AgainFirst => CliError::CardScript {
            script: script.to_owned(),
            reason: Cause::of(&e),
        },
    }
}

/// The SUN key journal of a batch: beside its journal, `NAME.keys.jsonl`.
pub(super) fn key_journal_beside(journal: &Path) -> PathBuf {
    let mut name = journal
        .file_stem()
        .map(|s| s.to_os_string())
        .unwrap_or_default();
    name.push(".keys.jsonl");
    journal.with_file_name(name)
}

/// `provisioner provision`.
pub(super) fn provision(a: &ProvisionArgs) -> Result<(), CliError> {
    let Partners {
        list: partners,
        domain,
        mut server,
    } = load_partners(&a.source)?;
    if partners.is_empty() {
        return Ok(());
    }
    if a.dry_run {
        return dry_run(&partners, &domain, a.json);
    }
    let sun = match &a.sun_keys {
        Some(path) => Some(batch::SunBatch {
            keys: Arc::new(super::keys::load(path)?),
            key_journal: key_journal_beside(&a.journal),
        }),
        None => None,
    };
    let (mut journal, prior) =
        Journal::open(&a.journal).map_err(|error| CliError::Journal { error })?;
    let opts = BatchOptions {
        sun,
        domain: domain.clone(),
        mirror: a.mirror,
        lock: a.lock,
        password: a.password,
        pack: [0, 0],
        max_attempts: a.max_attempts.max(1),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let interactive =
        !a.non_interactive && !a.json && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut reporter = Reporter::new(a.json, interactive);
    let run = Run {
        partners: &partners,
        journal: &mut journal,
        prior: &prior,
        opts: &opts,
        reporter: &mut reporter,
        stop: &stop,
        server: server.as_mut(),
    };
    let summary = if a.reader.reader.as_deref() == Some("sim") {
        let script = batch::parse_script(&a.sim_cards).map_err(|reason| CliError::CardScript {
            script: a.sim_cards.clone(),
            reason: Cause(reason),
        })?;
        let mut feed = SimFeed::new(script, sim::random_seed());
        let s = stop.clone();
        let _ = ctrlc::set_handler(move || s.store(true, Ordering::Relaxed));
        run.with(&mut feed, "sim", &a.sim_cards)?
    } else {
        let reader_error = |error| CliError::Reader {
            command: "provision",
            error,
        };
        let name = match a.reader.reader.as_deref() {
            Some(n) => pcsc::resolve_reader(n).map_err(reader_error)?,
            None => pcsc::only_reader().map_err(reader_error)?,
        };
        let mut feed = PcscFeed::new(&name, stop.clone()).map_err(|e| feed_error(e, ""))?;
        let canceller = feed.canceller();
        let s = stop.clone();
        let _ = ctrlc::set_handler(move || {
            // Finish the current card; a wait for the next one is interrupted.
            s.store(true, Ordering::Relaxed);
            canceller.cancel();
        });
        run.with(&mut feed, &name, "")?
    };
    if summary.failed > 0 {
        return Err(CliError::PartnersLeft {
            failed: summary.failed,
        });
    }
    if summary.registration_pending > 0 {
        return Err(CliError::RegistrationPending {
            pending: summary.registration_pending,
        });
    }
    Ok(())
}

/// `provisioner print`.
pub(super) fn print(
    source: &SourceArgs,
    template: Option<&Path>,
    job: &crate::print::PrintJob,
) -> Result<(), CliError> {
    let Partners {
        list: partners,
        domain,
        ..
    } = load_partners(source)?;
    if partners.is_empty() {
        return Ok(());
    }
    let domain = domain.as_str();
    let t = match template {
        Some(p) => crate::print::template::Template::load(p),
        None => crate::print::template::Template::builtin(),
    }
    .map_err(|reason| CliError::Template {
        path: template.map(Path::to_owned),
        reason: Cause(reason),
    })?;
    let cards: Vec<crate::print::CardSpec> = partners
        .iter()
        .map(|p| crate::print::CardSpec {
            name: p.name.clone(),
            code: p.code.to_string(),
            kind: p.kind.clone(),
            nfc_url: crate::driver::mirrored_url(&p.url(domain)),
            member: matches!(p.code, crate::partners::CardCode::Member(_)),
        })
        .collect();
    let r =
        crate::print::run(&cards, domain, &t, job).map_err(|error| CliError::Print { error })?;
    println!(
        "{} cards on {} pages ({} KB).",
        r.cards,
        r.pages,
        r.pdf_bytes / 1024
    );
    for f in &r.files {
        println!("  {f}");
    }
    Ok(())
}
