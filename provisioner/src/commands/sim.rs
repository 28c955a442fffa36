//! The simulator's subcommands: `sim-card` (an emulated tag served to pcscd through
//! vpcd) and `demo` (sample partners written onto emulated cards).

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tapkit_core::code::ReferralCode;

use crate::cli::{CardOp, CliError};
use crate::driver::{DriverError, TagDriver, WriteOptions};
use crate::reader::Transport;
use crate::reader::sim::{self, SimTag, SimTagKind, SimTransport};

/// `provisioner sim-card`.
pub(super) fn sim_card(
    addr: std::net::SocketAddr,
    kind: SimTagKind,
    image: Option<PathBuf>,
    faults: Vec<sim::Fault>,
    reinsert_ms: u64,
    reader_kind: crate::cli::ReaderKind,
) -> Result<(), CliError> {
    if let (SimTagKind::Ntag424, Some(path)) = (kind, &image) {
        return Err(CliError::SimImage {
            error: sim::ImageError::Invalid {
                path: path.clone(),
                reason: "--image keeps NTAG21x memory only; an emulated NTAG 424 DNA lives as long as its sim-card process".into(),
            },
        });
    }
    let tag = match &image {
        Some(path) => SimTransport::with_image(path, kind, Vec::new())
            .map_err(|error| CliError::SimImage { error })?
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
    let mut reader = sim::SimReader::new(tag, faults);
    reader.set_dialect(match reader_kind {
        crate::cli::ReaderKind::Acr122u => tapkit_core::apdu::Dialect::Pn532,
        crate::cli::ReaderKind::Acr1252u => tapkit_core::apdu::Dialect::Raw,
    });
    sim::vpcd::serve(reader, &opts, &stop).map_err(|error| CliError::Vpcd { addr, error })
}

/// `provisioner demo`.
pub(super) fn demo(domain: &str) -> Result<(), CliError> {
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
    let failed = |error| CliError::Card {
        op: CardOp::Demo,
        reader: "sim".into(),
        error,
    };
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
        let r = d
            .write_url(
                &url,
                &WriteOptions {
                    mirror: true,
                    ..Default::default()
                },
            )
            .map_err(failed)?;
        // A phone taps it: a fresh power-up, then a read.
        d.transport_mut()
            .reconnect()
            .map_err(|e| failed(DriverError::Transport(e)))?;
        let info = d.read().map_err(failed)?;
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
