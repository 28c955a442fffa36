//! What each subcommand does, and how its outcome maps to output and an exit status.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde_json::json;
use tapkit_core::code::ReferralCode;

use crate::cli::{Cli, Command, ReaderArgs, SourceArgs};
use crate::driver::{DriverError, LockState, TagDriver, TagInfo, WriteOptions, WriteReport};
use crate::pcsc_transport::{self, PcscTransport};
use crate::sim::{self, SimTag, SimTagKind, SimTransport};
use crate::transport::{Transport, TransportError};

/// Process exit statuses, by what went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitStatus {
    /// Done.
    Ok = 0,
    /// Something failed that a retry will not fix by itself.
    Failed = 1,
    /// The command line was wrong.
    Usage = 2,
    /// No PC/SC service, no reader, or no card in time.
    NoReader = 3,
    /// The card was refused (unsupported, locked, holds another URL, too small).
    CardRefused = 4,
    /// The card left mid-operation: put it back and run again.
    Retry = 5,
}

fn status_of(e: &DriverError) -> ExitStatus {
    match e {
        DriverError::Transport(
            TransportError::NoService
            | TransportError::NoSuchReader(_)
            | TransportError::NoCard { .. },
        ) => ExitStatus::NoReader,
        DriverError::BadInput(_) => ExitStatus::Usage,
        DriverError::Incomplete(_) => ExitStatus::Failed,
        e if e.is_retryable() => ExitStatus::Retry,
        e if e.is_refusal() => ExitStatus::CardRefused,
        _ => ExitStatus::Failed,
    }
}

/// Runs a parsed command line; user messages go to stdout/stderr here.
pub fn run(cli: Cli) -> ExitStatus {
    let (json_out, result) = match cli.command {
        Command::Readers { json } => (json, readers(json)),
        Command::Read { reader, json } => (json, with_driver(&reader, |d| read(d, json))),
        Command::Write {
            reader,
            mirror,
            overwrite,
            password,
            set_password,
            pack,
            json,
            url,
        } => {
            let opts = WriteOptions {
                mirror,
                overwrite,
                password,
                set_password,
                pack,
            };
            (
                json,
                check_url(&url)
                    .and_then(|()| with_driver(&reader, |d| write(d, &url, &opts, json))),
            )
        }
        Command::Lock {
            reader,
            permanent,
            password,
            json,
        } => (
            json,
            with_driver(&reader, |d| {
                let r = d.lock(permanent, password)?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
                } else if r.already_locked {
                    println!("The card {} was already locked.", r.uid);
                } else {
                    println!(
                        "Locked {} {} for good ({} pages written).",
                        r.tag_type, r.uid, r.pages_written
                    );
                }
                Ok(())
            }),
        ),
        Command::Provision {
            source,
            reader,
            journal,
            non_interactive,
            sim_cards,
            no_mirror,
            lock,
            password,
            max_attempts,
            dry_run,
            json,
        } => {
            let args = ProvisionArgs {
                source,
                reader,
                journal,
                non_interactive,
                sim_cards,
                mirror: !no_mirror,
                lock,
                password,
                max_attempts,
                dry_run,
                json,
            };
            (json, provision(&args))
        }
        Command::Print {
            source,
            layout,
            out,
            png_dir,
            template,
            layout_json,
            no_backs,
        } => {
            let job = crate::print::PrintJob {
                layout,
                out,
                png_dir,
                layout_json,
                backs: !no_backs,
            };
            (false, print(&source, template.as_deref(), &job))
        }
        Command::SimCard {
            vpcd,
            tag,
            image,
            fault,
            reinsert_ms,
        } => (false, sim_card(vpcd, tag, image, fault, reinsert_ms)),
        Command::Demo { domain } => (false, demo(&domain)),
    };
    match result {
        Ok(()) => ExitStatus::Ok,
        Err(e) => {
            let status = status_of(&e);
            if json_out {
                println!(
                    "{}",
                    json!({ "error": e.to_string(), "retry": e.is_retryable() })
                );
            }
            eprintln!("error: {e}");
            status
        }
    }
}

fn check_url(url: &str) -> Result<(), DriverError> {
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() > "https://".len()
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(DriverError::BadInput(format!(
            "{url:?} is not an http(s) URL without spaces; give one like https://book.example.com/r/IRONGYM-7K2M9Q"
        )))
    }
}

/// Opens the reader the user named and runs `f` with a driver over it.
fn with_driver(
    args: &ReaderArgs,
    f: impl FnOnce(&mut TagDriver<Box<dyn Transport>>) -> Result<(), DriverError>,
) -> Result<(), DriverError> {
    let transport: Box<dyn Transport> = match args.reader.as_deref() {
        Some("sim") => match &args.sim_image {
            Some(path) => Box::new(
                SimTransport::with_image(path, args.sim_tag, Vec::new())
                    .map_err(DriverError::BadInput)?,
            ),
            None => Box::new(SimTransport::new(
                SimTag::with_seed(args.sim_tag, sim::random_seed()),
                Vec::new(),
            )),
        },
        Some(name) => {
            let full = pcsc_transport::resolve_reader(name)?;
            Box::new(PcscTransport::open(&full, Duration::from_secs(args.wait))?)
        }
        None => Box::new(PcscTransport::open(
            &pcsc_transport::only_reader()?,
            Duration::from_secs(args.wait),
        )?),
    };
    let mut driver = TagDriver::new(transport);
    let result = f(&mut driver);
    driver.transport_mut().signal(result.is_ok());
    result
}

impl Transport for Box<dyn Transport> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit(apdu)
    }
    fn atr(&self) -> &[u8] {
        (**self).atr()
    }
    fn reader_name(&self) -> &str {
        (**self).reader_name()
    }
    fn reconnect(&mut self) -> Result<(), TransportError> {
        (**self).reconnect()
    }
    fn signal(&mut self, success: bool) {
        (**self).signal(success);
    }
}

fn readers(json_out: bool) -> Result<(), DriverError> {
    let list = match pcsc_transport::list_readers() {
        Ok(l) => l,
        Err(TransportError::NoService) if !json_out => {
            println!("No PC/SC service (pcscd) is running, so no reader can be seen.");
            println!(
                "Start it (sudo systemctl start pcscd.socket), or try the simulator: provisioner read --reader sim"
            );
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        );
    } else if list.is_empty() {
        println!(
            "No PC/SC reader is attached. Plug one in (ACR122U, ACR1252U …), or try the simulator: provisioner read --reader sim"
        );
    } else {
        for r in &list {
            match &r.atr {
                Some(atr) => println!("{}  card present (ATR {atr})", r.name),
                None => println!("{}  no card", r.name),
            }
        }
    }
    Ok(())
}

fn describe(info: &TagInfo) -> String {
    let mut s = format!("Card     {} UID {}\n", info.tag_type, info.uid);
    if let Some(reason) = &info.unsupported {
        s += &format!("Note     not writable by Tapkit: {reason}\n");
        return s;
    }
    let lock = match info.lock {
        LockState::Unlocked => "unlocked",
        LockState::PartiallyLocked => "partly locked",
        LockState::ReadOnly => "locked (read-only)",
    };
    s += &format!(
        "Memory   {} bytes for NDEF, {lock}{}{}\n",
        info.capacity
            .map_or_else(|| "unformatted, no".to_owned(), |c| c.to_string()),
        if info.password_protected {
            ", password-protected"
        } else {
            ""
        },
        if info.config_locked {
            ", configuration locked"
        } else {
            ""
        },
    );
    s += &format!("URL      {}\n", info.url.as_deref().unwrap_or("(none)"));
    if let Some(e) = &info.content_error {
        s += &format!("Problem  {e}\n");
    }
    if let Some(c) = info.counter {
        s += &format!(
            "Taps     {c} (mirror {})\n",
            if info.mirror { "on" } else { "off" }
        );
    }
    s
}

fn read(d: &mut TagDriver<Box<dyn Transport>>, json_out: bool) -> Result<(), DriverError> {
    let info = d.read()?;
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&info).unwrap_or_default()
        );
    } else {
        println!("Reader   {}", d.transport().reader_name());
        print!("{}", describe(&info));
    }
    Ok(())
}

fn write(
    d: &mut TagDriver<Box<dyn Transport>>,
    url: &str,
    opts: &WriteOptions,
    json_out: bool,
) -> Result<(), DriverError> {
    let report = write_with_recovery(d, url, opts)?;
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else if report.already_written {
        println!(
            "{} {} already holds {} — nothing written ({} APDUs).",
            report.tag_type, report.uid, report.url, report.apdus
        );
    } else {
        println!(
            "Wrote {} to {} {} and verified it ({} pages written, {} already right, {} APDUs).",
            report.url,
            report.tag_type,
            report.uid,
            report.pages_written,
            report.pages_unchanged,
            report.apdus
        );
        if report.mirror {
            println!("A phone now reads: {}", report.url_as_read);
        }
    }
    Ok(())
}

/// A reset by another client is redone from the start (the write is idempotent).
fn write_with_recovery<T: Transport>(
    d: &mut TagDriver<T>,
    url: &str,
    opts: &WriteOptions,
) -> Result<WriteReport, DriverError> {
    match d.write_url(url, opts) {
        Err(DriverError::Transport(TransportError::CardReset)) => {
            tracing::info!("card was reset by another program; writing again");
            d.write_url(url, opts)
        }
        other => other,
    }
}

fn sim_card(
    addr: std::net::SocketAddr,
    kind: SimTagKind,
    image: Option<std::path::PathBuf>,
    faults: Vec<sim::Fault>,
    reinsert_ms: u64,
) -> Result<(), DriverError> {
    let tag = match &image {
        Some(path) => SimTransport::with_image(path, kind, Vec::new())
            .map_err(DriverError::BadInput)?
            .reader()
            .tag()
            .clone(),
        None => SimTag::with_seed(kind, sim::random_seed()),
    };
    let opts = sim::vpcd::VpcdOptions {
        addr,
        image,
        reinsert_after: Duration::from_millis(reinsert_ms),
        connect_timeout: Duration::from_secs(10),
    };
    eprintln!(
        "Serving an emulated {kind:?} (UID {}) to vpcd at {addr}; Ctrl-C to stop.",
        crate::hex::encode(&tag.uid())
    );
    let stop = AtomicBool::new(false);
    sim::vpcd::serve(sim::SimReader::new(tag, faults), &opts, &stop)
        .map_err(|e| DriverError::Transport(TransportError::Pcsc(e.to_string())))
}

fn demo(domain: &str) -> Result<(), DriverError> {
    let partners = [
        ("Iron Gym", SimTagKind::Ntag215),
        ("Café Zürich & Co.", SimTagKind::Ntag215),
        ("Łódź Książki", SimTagKind::Ntag216),
        ("Glow Day Spa", SimTagKind::Ntag213),
    ];
    println!(
        "Provisioning {} sample partners onto emulated cards (no reader needed)…\n",
        partners.len()
    );
    println!(
        "{:<20} {:<16} {:<8} {:<15} {:>6} {:>6}  URL a phone reads",
        "partner", "code", "card", "UID", "pages", "APDUs"
    );
    for (i, (name, kind)) in partners.iter().enumerate() {
        let code = ReferralCode::generate(
            name,
            u32::try_from(sim::random_seed() & 0x1FF_FFFF).unwrap_or(0),
        );
        let url = format!("https://{domain}/r/{code}");
        let mut d = TagDriver::new(SimTransport::new(
            SimTag::with_seed(*kind, sim::random_seed() ^ i as u64),
            Vec::new(),
        ));
        let r = d.write_url(
            &url,
            &WriteOptions {
                mirror: true,
                ..Default::default()
            },
        )?;
        // A phone taps it: a fresh power-up, then a read.
        d.transport_mut().reconnect()?;
        let info = d.read()?;
        println!(
            "{:<20} {:<16} {:<8} {:<15} {:>6} {:>6}  {}",
            name,
            code.as_str(),
            r.tag_type.to_string(),
            r.uid,
            r.pages_written,
            r.apdus,
            info.url.unwrap_or_default()
        );
    }
    println!(
        "\nEach card carries its partner's code and, through the NTAG mirror, its own UID and tap counter."
    );
    println!(
        "With a real reader: provisioner readers, then provisioner write --reader <name> --mirror <url>."
    );
    Ok(())
}

struct ProvisionArgs {
    source: SourceArgs,
    reader: ReaderArgs,
    journal: std::path::PathBuf,
    non_interactive: bool,
    sim_cards: String,
    mirror: bool,
    lock: bool,
    password: Option<[u8; 4]>,
    max_attempts: u32,
    dry_run: bool,
    json: bool,
}

/// The partners of a batch or print job, the brand domain, and the server they came
/// from (if any).
struct Partners {
    list: Vec<crate::partners::Partner>,
    domain: String,
    server: Option<crate::server_api::ServerApi>,
}

fn server_error(e: crate::server_api::ServerError) -> DriverError {
    use crate::server_api::ServerError;
    match e {
        ServerError::Config(m) => DriverError::BadInput(m),
        other => DriverError::Incomplete(other.to_string()),
    }
}

/// Reads the partner list from the CSV file or the server; bad rows are reported with
/// their line numbers and skipped.
fn load_partners(src: &SourceArgs) -> Result<Partners, DriverError> {
    use crate::server_api::{Credentials, ServerApi};
    let (list, errors, domain, server, origin) = match &src.csv {
        Some(csv) => {
            let domain = src.domain.clone().ok_or_else(|| {
                DriverError::BadInput(
                    "--domain is required with --csv: the brand's host, like book.example.com"
                        .into(),
                )
            })?;
            crate::partners::check_domain(&domain).map_err(DriverError::BadInput)?;
            let l =
                crate::partners::read_csv(csv).map_err(|e| DriverError::BadInput(e.to_string()))?;
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
                return Err(DriverError::BadInput(
                    "no partner list: give --csv FILE (offline) or --server URL (the affiliates that still need a card)".into(),
                ));
            }
            let creds = Credentials::resolve(
                src.server.as_deref(),
                std::env::var("TAPKIT_ADMIN_TOKEN").ok(),
                src.config.as_deref(),
            )
            .map_err(server_error)?;
            let api = ServerApi::new(creds).map_err(server_error)?;
            let remote = api.partners(!src.all).map_err(server_error)?;
            if remote.partners.is_empty() && remote.errors.is_empty() {
                if src.all {
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
                crate::partners::check_domain(&domain).map_err(DriverError::BadInput)?;
            }
            let origin = format!(
                "{} ({})",
                api.base(),
                if src.all {
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
        return Err(DriverError::BadInput(format!(
            "{origin} has no usable partner rows"
        )));
    }
    Ok(Partners {
        list,
        domain,
        server,
    })
}

fn provision(a: &ProvisionArgs) -> Result<(), DriverError> {
    use crate::provision::{self as batch, BatchOptions, PcscFeed, Reporter, SimFeed};
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    let Partners {
        list: partners,
        domain,
        mut server,
    } = load_partners(&a.source)?;
    if partners.is_empty() {
        return Ok(());
    }
    if a.dry_run {
        let lines = batch::dry_run(&partners, &domain);
        let mut too_long = 0;
        for l in &lines {
            if a.json {
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
            return Err(DriverError::BadInput(format!(
                "{too_long} partner URLs do not fit any NTAG21x card; shorten the domain"
            )));
        }
        return Ok(());
    }
    let (mut journal, prior) = crate::journal::Journal::open(&a.journal)
        .map_err(|e| DriverError::BadInput(e.to_string()))?;
    let opts = BatchOptions {
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
    #[allow(clippy::too_many_arguments)] // a local adapter over run_batch_with
    fn go<F: batch::CardFeed>(
        feed: &mut F,
        partners: &[crate::partners::Partner],
        journal: &mut crate::journal::Journal,
        prior: &[crate::journal::Entry],
        opts: &BatchOptions,
        reporter: &mut Reporter,
        stop: &AtomicBool,
        server: Option<&mut crate::server_api::ServerApi>,
    ) -> Result<batch::Summary, DriverError> {
        let registrar = server.map(|s| s as &mut dyn batch::Registrar);
        batch::run_batch_with(
            feed, partners, journal, prior, opts, reporter, stop, registrar,
        )
        .map_err(|e| match e {
            batch::BatchError::Reader(d) => d,
            other => DriverError::BadInput(other.to_string()),
        })
    }
    let summary = if a.reader.reader.as_deref() == Some("sim") {
        let script = batch::parse_script(&a.sim_cards).map_err(DriverError::BadInput)?;
        let mut feed = SimFeed::new(script, sim::random_seed());
        let s = stop.clone();
        let _ = ctrlc::set_handler(move || s.store(true, Ordering::Relaxed));
        go(
            &mut feed,
            &partners,
            &mut journal,
            &prior,
            &opts,
            &mut reporter,
            &stop,
            server.as_mut(),
        )?
    } else {
        let name = match a.reader.reader.as_deref() {
            Some(n) => pcsc_transport::resolve_reader(n)?,
            None => pcsc_transport::only_reader()?,
        };
        let mut feed = PcscFeed::new(&name, stop.clone())?;
        let canceller = feed.canceller();
        let s = stop.clone();
        let _ = ctrlc::set_handler(move || {
            // Finish the current card; a wait for the next one is interrupted.
            s.store(true, Ordering::Relaxed);
            let _ = canceller.cancel();
        });
        go(
            &mut feed,
            &partners,
            &mut journal,
            &prior,
            &opts,
            &mut reporter,
            &stop,
            server.as_mut(),
        )?
    };
    if summary.failed > 0 {
        return Err(DriverError::Incomplete(format!(
            "{} partners did not get a card; run the same command again to retry them",
            summary.failed
        )));
    }
    if summary.registration_pending > 0 {
        return Err(DriverError::Incomplete(format!(
            "{} written cards are not registered with the server yet; run the same command with the same --journal when the server is reachable",
            summary.registration_pending
        )));
    }
    Ok(())
}

fn print(
    source: &SourceArgs,
    template: Option<&std::path::Path>,
    job: &crate::print::PrintJob,
) -> Result<(), DriverError> {
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
    .map_err(DriverError::BadInput)?;
    let cards: Vec<crate::print::CardSpec> = partners
        .iter()
        .map(|p| crate::print::CardSpec {
            name: p.name.clone(),
            code: p.code.to_string(),
            kind: p.kind.clone(),
            nfc_url: crate::driver::mirrored_url(&p.url(domain)),
        })
        .collect();
    let r = crate::print::run(&cards, domain, &t, job)
        .map_err(|e| DriverError::BadInput(e.to_string()))?;
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
