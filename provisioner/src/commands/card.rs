//! The one-card subcommands at a reader: `readers`, `read`, `write`, `lock`.

use std::time::Duration;

use crate::cli::{CardOp, CliError, ReaderArgs};
use crate::driver::{DriverError, LockState, TagDriver, TagInfo, WriteOptions, WriteReport};
use crate::reader::pcsc::{self, PcscTransport};
use crate::reader::sim::{self, SimTag, SimTransport};
use crate::reader::{Transport, TransportError};

/// A driver over whatever reader the user named.
type Driver = TagDriver<Box<dyn Transport>>;

/// The person at the reader is told when a card is awaited (the transport prints nothing).
fn place_a_card(reader: &str) {
    eprintln!("Place a card on {reader} …");
}

/// Opens the reader the user named (`sim`, a name or part of one, or the only one).
fn open(args: &ReaderArgs, command: &'static str) -> Result<Box<dyn Transport>, CliError> {
    let reader_error = |error| CliError::Reader { command, error };
    let wait = Duration::from_secs(args.wait);
    Ok(match args.reader.as_deref() {
        Some("sim") => match &args.sim_image {
            Some(path) => Box::new(
                SimTransport::with_image(path, args.sim_tag, Vec::new())
                    .map_err(|error| CliError::SimImage { error })?,
            ),
            None => Box::new(SimTransport::new(
                SimTag::with_seed(args.sim_tag, sim::random_seed()),
                Vec::new(),
            )),
        },
        Some(name) => {
            let full = pcsc::resolve_reader(name).map_err(reader_error)?;
            Box::new(
                PcscTransport::open(&full, wait, Box::new(place_a_card)).map_err(reader_error)?,
            )
        }
        None => {
            let only = pcsc::only_reader().map_err(reader_error)?;
            Box::new(
                PcscTransport::open(&only, wait, Box::new(place_a_card)).map_err(reader_error)?,
            )
        }
    })
}

/// Opens the reader and runs `f` with a driver over it; signals the outcome on the
/// reader.
fn with_driver<R>(
    args: &ReaderArgs,
    op: CardOp,
    command: &'static str,
    f: impl FnOnce(&mut Driver) -> Result<R, DriverError>,
) -> Result<R, CliError> {
    let mut driver = TagDriver::new(open(args, command)?);
    let result = f(&mut driver);
    driver.transport_mut().signal(result.is_ok());
    result.map_err(|error| CliError::Card {
        op,
        reader: driver.transport().reader_name().to_owned(),
        error,
    })
}

fn print_json(v: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// `provisioner readers`.
pub(super) fn readers(json_out: bool) -> Result<(), CliError> {
    let list = match pcsc::list_readers() {
        Ok(l) => l,
        Err(TransportError::NoService) if !json_out => {
            println!("No PC/SC service (pcscd) is running, so no reader can be seen.");
            println!(
                "Start it (sudo systemctl start pcscd.socket), or try the simulator: provisioner read --reader sim"
            );
            return Ok(());
        }
        Err(error) => {
            return Err(CliError::Reader {
                command: "readers",
                error,
            });
        }
    };
    if json_out {
        print_json(&list);
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
    if let Some(k) = &info.sun_keys {
        s += &format!(
            "Keys     {}\n",
            match k {
                crate::driver::sun::KeyState::Factory =>
                    "factory (blank: write it with --sun --keys FILE)".to_owned(),
                crate::driver::sun::KeyState::Tapkit { version } =>
                    format!("Tapkit's, key version {version}; every tap is signed (SUN)"),
                crate::driver::sun::KeyState::Partial { version, .. } => format!(
                    "half changed to key version {version} (a write was interrupted: run the same write again to finish it)"
                ),
            }
        );
    }
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

/// `provisioner read`.
pub(super) fn read(args: &ReaderArgs, json_out: bool) -> Result<(), CliError> {
    let (info, reader) = with_driver(args, CardOp::Read, "read", |d| {
        Ok((d.read()?, d.transport().reader_name().to_owned()))
    })?;
    if json_out {
        print_json(&info);
    } else {
        println!("Reader   {reader}");
        print!("{}", describe(&info));
    }
    Ok(())
}

fn check_url(url: &str) -> Result<(), CliError> {
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() > "https://".len()
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(CliError::BadUrl {
            url: url.to_owned(),
        })
    }
}

/// `provisioner write`.
pub(super) fn write(
    args: &ReaderArgs,
    url: &str,
    opts: &WriteOptions,
    json_out: bool,
) -> Result<(), CliError> {
    check_url(url)?;
    let report = with_driver(args, CardOp::Write, "write", |d| {
        write_with_recovery(d, url, opts)
    })?;
    if json_out {
        print_json(&report);
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

/// `provisioner lock`.
pub(super) fn lock(
    args: &ReaderArgs,
    permanent: bool,
    password: Option<[u8; 4]>,
    json_out: bool,
) -> Result<(), CliError> {
    let r = with_driver(args, CardOp::Lock, "lock", |d| d.lock(permanent, password))?;
    if json_out {
        print_json(&r);
    } else if r.already_locked {
        println!("The card {} was already locked.", r.uid);
    } else {
        println!(
            "Locked {} {} for good ({} pages written).",
            r.tag_type, r.uid, r.pages_written
        );
    }
    Ok(())
}

/// `provisioner write --sun --keys FILE URL`.
pub(super) fn write_sun(
    args: &ReaderArgs,
    url: &str,
    keys: &std::path::Path,
    journal: &std::path::Path,
    json_out: bool,
) -> Result<(), CliError> {
    check_url(url)?;
    let keyfile = super::keys::load(keys)?;
    let mut record =
        crate::journal::key_step_recorder(journal).map_err(|error| CliError::Journal { error })?;
    let report = with_driver(args, CardOp::Write, "write", |d| {
        d.expect_ntag424(|tag| format!(
            "--sun needs an NTAG 424 DNA card and this is {tag}; write NTAG21x cards without --sun (--mirror gives them a tap counter)"
        ))?;
        d.write_sun(url, &keyfile, &mut record)
    })?;
    if json_out {
        print_json(&report);
        return Ok(());
    }
    if report.already_written {
        println!(
            "{} {} is already a Tapkit SUN card for this URL (key version {}); two test taps verified, nothing written.",
            report.tag_type, report.uid, report.key_version
        );
    } else {
        println!(
            "Wrote {} to {} {}{}, keyed it with key version {} ({} keys changed, {} APDUs), and verified two test taps.",
            report.url,
            report.tag_type,
            report.uid,
            if report.resumed {
                " (finishing a run that was interrupted)"
            } else {
                ""
            },
            report.key_version,
            report.keys_changed,
            report.apdus
        );
    }
    println!(
        "A phone now reads: {}",
        report.urls_as_read.last().map_or("", String::as_str)
    );
    println!(
        "Register it: POST /api/admin/cards {{\"affiliate_id\": …, \"uid\": \"{}\", \"key_version\": {}}}",
        report.uid, report.key_version
    );
    Ok(())
}

/// `provisioner reset --keys FILE`.
pub(super) fn reset(
    args: &ReaderArgs,
    keys: &std::path::Path,
    journal: &std::path::Path,
    json_out: bool,
) -> Result<(), CliError> {
    let keyfile = super::keys::load(keys)?;
    let mut record =
        crate::journal::key_step_recorder(journal).map_err(|error| CliError::Journal { error })?;
    let report = with_driver(args, CardOp::Reset, "reset", |d| {
        d.expect_ntag424(|tag| format!(
            "reset returns NTAG 424 DNA cards to factory keys and this is {tag}; rewrite NTAG21x cards with `provisioner write --overwrite`"
        ))?;
        d.reset_sun(&keyfile, &mut record)
    })?;
    if json_out {
        print_json(&report);
    } else if report.was_version == 0 && report.keys_changed == 0 {
        println!(
            "NTAG 424 DNA {} had factory keys already; its NDEF file is now empty.",
            report.uid
        );
    } else {
        println!(
            "NTAG 424 DNA {} is back to factory keys and settings ({} keys changed; it was key version {}), with an empty NDEF file.\nRetire its binding on the server: POST /api/admin/cards/{{id}}/retire",
            report.uid, report.keys_changed, report.was_version
        );
    }
    Ok(())
}
