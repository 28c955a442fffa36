//! The tag driver against the in-process simulator: NTAG facts, every fault, APDU budgets.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use proptest::prelude::*;
use tapkit_core::ntag::TagType;
use tapkit_provisioner::driver::{DriverError, LockState, TagDriver, WriteOptions};
use tapkit_provisioner::reader::sim::{Fault, SimTag, SimTagKind, SimTransport};
use tapkit_provisioner::reader::{Transport, TransportError};

const URL: &str = "https://book.example.com/r/IRONGYM-7K2M9Q";

fn driver(kind: SimTagKind, faults: Vec<Fault>) -> TagDriver<SimTransport> {
    TagDriver::new(SimTransport::new(SimTag::with_seed(kind, 7), faults))
}

fn plain() -> WriteOptions {
    WriteOptions::default()
}

/// An independent look at the EEPROM: the raw TLV bytes from page 4.
fn eeprom_uri(d: &TagDriver<SimTransport>) -> Option<String> {
    tapkit_core::read_tag_uri(d.transport().reader().tag().eeprom())
        .expect("the EEPROM holds a readable TLV layout")
}

#[test]
fn worked_example_bytes_land_on_a_blank_ntag215() {
    let mut d = driver(SimTagKind::Ntag215, vec![]);
    let r = d
        .write_url("https://example.com/r/ABC123", &plain())
        .unwrap();
    assert!(!r.already_written);
    // nfc-reference.md §1.4: pages 4..10
    let expect: Vec<u8> = [
        "0319D101", "15550465", "78616D70", "6C652E63", "6F6D2F72", "2F414243", "313233FE",
    ]
    .iter()
    .flat_map(|p| tapkit_provisioner::hex::decode(p).unwrap())
    .collect();
    assert_eq!(&d.transport().reader().tag().eeprom()[16..44], &expect[..]);
    assert_eq!(r.pages_written, 7);
    let info = d.read().unwrap();
    assert_eq!(info.tag_type, TagType::Ntag215);
    assert_eq!(info.url.as_deref(), Some("https://example.com/r/ABC123"));
    assert_eq!(info.capacity, Some(496));
    assert_eq!(info.lock, LockState::Unlocked);
}

#[test]
fn rewriting_the_same_url_only_reads() {
    let mut d = driver(SimTagKind::Ntag215, vec![]);
    d.write_url(URL, &plain()).unwrap();
    let before = d.transport().reader().tag().eeprom().to_vec();
    let r = d.write_url(URL, &plain()).unwrap();
    assert!(r.already_written);
    assert_eq!(r.pages_written, 0);
    assert_eq!(
        r.apdus, 3,
        "GET_VERSION, one FAST_READ of the data, one of the CFG pages"
    );
    assert_eq!(d.transport().reader().tag().eeprom(), &before[..]);
}

#[test]
fn a_typical_url_on_a_blank_ntag215_takes_the_minimum_apdus() {
    let mut d = driver(SimTagKind::Ntag215, vec![]);
    let url = "https://book.example.com/r/IRONGYM-7K2M9Q?s=nfc"; // 48 chars
    let r = d.write_url(url, &plain()).unwrap();
    let message = tapkit_core::ndef::uri_message(url);
    let pages = (2 + message.len() + 1).div_ceil(4); // TLV header + message + terminator
    // identify (GET_VERSION + one FAST_READ + CFG read) + one write per page + one verify read
    assert_eq!(r.pages_written, pages);
    assert_eq!(r.apdus as usize, 3 + pages + 1);
}

#[test]
fn ntag213_keeps_its_lock_control_tlv_and_refuses_what_does_not_fit() {
    let mut d = driver(SimTagKind::Ntag213, vec![]);
    d.write_url(URL, &plain()).unwrap();
    let mem = d.transport().reader().tag().eeprom();
    assert_eq!(&mem[16..23], &[0x01, 0x03, 0xA0, 0x0C, 0x34, 0x03, 0x26]);
    assert_eq!(eeprom_uri(&d).as_deref(), Some(URL));
    let long = format!("https://book.example.com/r/{}", "A".repeat(120));
    let err = d
        .write_url(
            &long,
            &WriteOptions {
                overwrite: true,
                ..plain()
            },
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            DriverError::DoesNotFit {
                tag: TagType::Ntag213,
                needed: 146,
                available: 139
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("use a shorter URL or a larger card")
    );
    assert_eq!(
        eeprom_uri(&d).as_deref(),
        Some(URL),
        "a refused write changes nothing"
    );
}

#[test]
fn another_partners_url_is_refused_unless_overwrite() {
    let mut d = driver(SimTagKind::Ntag216, vec![]);
    d.write_url(URL, &plain()).unwrap();
    let other = "https://book.example.com/r/GLOWDAYS-BBPEMY";
    let err = d.write_url(other, &plain()).unwrap_err();
    assert_eq!(
        err,
        DriverError::HoldsOtherUrl {
            existing: URL.into()
        }
    );
    assert!(err.to_string().ends_with("pass --overwrite to replace it"));
    let r = d
        .write_url(
            other,
            &WriteOptions {
                overwrite: true,
                ..plain()
            },
        )
        .unwrap();
    assert!(r.pages_written > 0);
    assert_eq!(d.read().unwrap().url.as_deref(), Some(other));
}

#[test]
fn wrong_tags_are_refused_with_the_reason() {
    for (kind, needle) in [
        (SimTagKind::UltralightEv1, "MIFARE Ultralight EV1"),
        (SimTagKind::Ntag424, "NTAG 424 DNA"),
        (SimTagKind::Classic1k, "MIFARE Classic 1K"),
    ] {
        let mut d = driver(kind, vec![]);
        let err = d.write_url(URL, &plain()).unwrap_err();
        assert!(
            matches!(err, DriverError::Unsupported { .. }),
            "{kind:?}: {err}"
        );
        assert!(err.to_string().contains(needle), "{err}");
        assert!(err.to_string().contains("NTAG213, 215 or 216"), "{err}");
    }
    let info = driver(SimTagKind::Ntag424, vec![]).read().unwrap();
    assert_eq!(info.tag_type, TagType::Ntag424Dna);
    // Read, it is a card Tapkit writes with SUN: its keys are shown instead.
    assert!(info.unsupported.is_none());
    assert_eq!(
        info.sun_keys,
        Some(tapkit_provisioner::driver::sun::KeyState::Factory)
    );
}

#[test]
fn a_card_pulled_mid_write_says_so_and_a_retry_completes() {
    let mut d = driver(SimTagKind::Ntag215, vec![Fault::PullAtWrite(4)]);
    let err = d.write_url(URL, &plain()).unwrap_err();
    assert_eq!(
        err,
        DriverError::PulledMidWrite {
            written: 3,
            total: 11
        }
    );
    assert!(err.to_string().contains("put the same card back"));
    assert!(err.is_retryable());
    // Header page last: the half-written card reads as empty, never as a wrong URL.
    assert_eq!(eeprom_uri(&d), None);
    d.transport_mut().reinsert();
    let r = d.write_url(URL, &plain()).unwrap();
    assert_eq!(
        r.pages_written, 8,
        "the three pages already written are skipped"
    );
    assert_eq!(eeprom_uri(&d).as_deref(), Some(URL));
}

#[test]
fn a_rewrite_torn_midway_reads_as_empty_not_as_a_mix() {
    let mut d = driver(SimTagKind::Ntag215, vec![]);
    d.write_url(URL, &plain()).unwrap();
    let mut d = TagDriver::new(SimTransport::new(
        d.into_transport().reader().tag().clone(),
        vec![Fault::TearAtWrite(3)],
    ));
    let other = "https://book.example.com/r/CAFEZURI-9F1F9P";
    let err = d
        .write_url(
            other,
            &WriteOptions {
                overwrite: true,
                ..plain()
            },
        )
        .unwrap_err();
    assert!(
        matches!(err, DriverError::PulledMidWrite { written: 2, .. }),
        "{err}"
    );
    assert_eq!(
        eeprom_uri(&d),
        None,
        "the old message was marked empty first"
    );
    d.transport_mut().reinsert();
    d.write_url(
        other,
        &WriteOptions {
            overwrite: true,
            ..plain()
        },
    )
    .unwrap();
    assert_eq!(eeprom_uri(&d).as_deref(), Some(other));
}

#[test]
fn a_nak_is_reported_and_the_tag_recovers() {
    // APDU 4 is the first page write after GET_VERSION and the two reads.
    let mut d = driver(SimTagKind::Ntag215, vec![Fault::NakAt(4)]);
    let err = d.write_url(URL, &plain()).unwrap_err();
    assert!(matches!(err, DriverError::Nak { op: "write", .. }), "{err}");
    d.write_url(URL, &plain()).unwrap();
    assert_eq!(eeprom_uri(&d).as_deref(), Some(URL));
}

#[test]
fn a_reset_by_another_client_is_reported_then_redone() {
    let mut d = driver(SimTagKind::Ntag215, vec![Fault::ResetAfter(5)]);
    let err = d.write_url(URL, &plain()).unwrap_err();
    assert_eq!(err, DriverError::Transport(TransportError::CardReset));
    d.write_url(URL, &plain()).unwrap();
    assert_eq!(eeprom_uri(&d).as_deref(), Some(URL));
}

#[test]
fn a_slow_card_still_completes() {
    let mut d = driver(
        SimTagKind::Ntag215,
        vec![Fault::Slow(std::time::Duration::from_millis(30))],
    );
    let r = d.write_url(URL, &plain()).unwrap();
    assert_eq!(
        d.transport().simulated_delay(),
        std::time::Duration::from_millis(30) * r.apdus
    );
}

#[test]
fn the_mirror_fills_in_uid_and_counter_per_tap() {
    let mut d = driver(SimTagKind::Ntag215, vec![]);
    let r = d
        .write_url(
            URL,
            &WriteOptions {
                mirror: true,
                ..plain()
            },
        )
        .unwrap();
    assert_eq!(r.url, format!("{URL}?m=00000000000000x000000"));
    let uid = d.transport().reader().tag().uid();
    let uid_hex = tapkit_provisioner::hex::encode(&uid);
    let mut seen = Vec::new();
    for _ in 0..3 {
        d.transport_mut().reconnect().unwrap(); // a phone: field on, read
        let info = d.read().unwrap();
        let url = info.url.unwrap();
        let m = url.rsplit_once("?m=").unwrap().1.to_owned();
        let (u, c) = tapkit_core::ntag::parse_mirror_text(&m).unwrap();
        assert_eq!(tapkit_provisioner::hex::encode(&u), uid_hex);
        assert_eq!(info.counter, Some(c));
        seen.push(c);
    }
    assert!(
        seen.windows(2).all(|w| w[1] == w[0] + 1),
        "counter rises per tap: {seen:?}"
    );
    // Writing the same mirrored URL again is recognised despite the filled-in mirror.
    let again = d
        .write_url(
            URL,
            &WriteOptions {
                mirror: true,
                ..plain()
            },
        )
        .unwrap();
    assert!(again.already_written);
    // Writing without --mirror turns the stale mirror off, so it cannot corrupt the URL.
    d.write_url(
        URL,
        &WriteOptions {
            overwrite: true,
            ..plain()
        },
    )
    .unwrap();
    d.transport_mut().reconnect().unwrap();
    let info = d.read().unwrap();
    assert_eq!(info.url.as_deref(), Some(URL));
    assert!(!info.mirror);
}

#[test]
fn a_url_too_long_for_the_mirror_is_refused() {
    let mut d = driver(SimTagKind::Ntag213, vec![]);
    let url = format!("https://book.example.com/r/{}", "B".repeat(100));
    let err = d
        .write_url(
            &url,
            &WriteOptions {
                mirror: true,
                ..plain()
            },
        )
        .unwrap_err();
    assert!(
        matches!(err, DriverError::Mirror(_) | DriverError::DoesNotFit { .. }),
        "{err}"
    );
}

#[test]
fn a_password_guards_writes_but_phones_still_read() {
    let pwd = [0x1A, 0x2B, 0x3C, 0x4D];
    let mut d = driver(SimTagKind::Ntag213, vec![]);
    let set = WriteOptions {
        password: Some(pwd),
        set_password: true,
        pack: [0xBE, 0xEF],
        ..plain()
    };
    let r = d.write_url(URL, &set).unwrap();
    assert!(r.password_set);
    d.transport_mut().reconnect().unwrap();
    let info = d.read().unwrap();
    assert!(info.password_protected);
    assert_eq!(
        info.url.as_deref(),
        Some(URL),
        "PROT stays 0: reads need no password"
    );
    let other = "https://book.example.com/r/GLOWDAYS-BBPEMY";
    let over = WriteOptions {
        overwrite: true,
        ..plain()
    };
    assert_eq!(
        d.write_url(other, &over).unwrap_err(),
        DriverError::PasswordRequired
    );
    let wrong = WriteOptions {
        password: Some([0; 4]),
        ..over.clone()
    };
    assert_eq!(
        d.write_url(other, &wrong).unwrap_err(),
        DriverError::WrongPassword
    );
    d.transport_mut().reconnect().unwrap();
    let right = WriteOptions {
        password: Some(pwd),
        ..over
    };
    d.write_url(other, &right).unwrap();
    assert_eq!(eeprom_uri(&d).as_deref(), Some(other));
}

#[test]
fn locking_needs_confirmation_and_then_refuses_writes() {
    let mut d = driver(SimTagKind::Ntag215, vec![]);
    d.write_url(
        URL,
        &WriteOptions {
            mirror: true,
            ..plain()
        },
    )
    .unwrap();
    assert_eq!(
        d.lock(false, None).unwrap_err(),
        DriverError::NeedsConfirmation
    );
    assert_eq!(d.read().unwrap().lock, LockState::Unlocked);
    let r = d.lock(true, None).unwrap();
    assert!(!r.already_locked);
    let info = d.read().unwrap();
    assert_eq!(info.lock, LockState::ReadOnly);
    assert!(info.config_locked);
    assert!(
        info.url.unwrap().starts_with(URL),
        "a locked card still reads"
    );
    let err = d
        .write_url(
            "https://book.example.com/r/X",
            &WriteOptions {
                overwrite: true,
                ..plain()
            },
        )
        .unwrap_err();
    assert_eq!(err, DriverError::Locked);
    assert!(d.lock(true, None).unwrap().already_locked);
}

#[test]
fn a_preset_locked_page_refuses_a_write_before_anything_changes() {
    let mut d = driver(SimTagKind::Ntag215, vec![]);
    // Static lock bit L5 (page 5) set directly on the tag.
    assert_eq!(
        d.transport_mut()
            .transmit(&[0xFF, 0xD6, 0, 2, 4, 0, 0, 0x20, 0])
            .unwrap(),
        vec![0x90, 0]
    );
    let before = d.transport().reader().tag().eeprom().to_vec();
    assert_eq!(d.write_url(URL, &plain()).unwrap_err(), DriverError::Locked);
    assert_eq!(d.transport().reader().tag().eeprom(), &before[..]);
    assert_eq!(d.read().unwrap().lock, LockState::PartiallyLocked);
}

#[test]
fn corrupt_content_is_reported_and_overwrite_repairs_it() {
    let mut d = driver(SimTagKind::Ntag215, vec![]);
    // An NDEF TLV claiming 200 bytes of garbage.
    d.transport_mut()
        .transmit(&[0xFF, 0xD6, 0, 4, 4, 0x03, 0x20, 0xD1, 0x01])
        .unwrap();
    let info = d.read().unwrap();
    assert!(info.content_error.is_some());
    let err = d.write_url(URL, &plain()).unwrap_err();
    assert!(matches!(err, DriverError::Content(_)), "{err}");
    d.write_url(
        URL,
        &WriteOptions {
            overwrite: true,
            ..plain()
        },
    )
    .unwrap();
    assert_eq!(eeprom_uri(&d).as_deref(), Some(URL));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_fitting_url_round_trips(path in "[A-Za-z0-9/_-]{1,80}", kind in prop_oneof![
        Just(SimTagKind::Ntag213), Just(SimTagKind::Ntag215), Just(SimTagKind::Ntag216)
    ], mirror in any::<bool>()) {
        let url = format!("https://partners.example.com/r/{path}");
        let mut d = driver(kind, vec![]);
        match d.write_url(&url, &WriteOptions { mirror, ..plain() }) {
            Ok(r) => {
                prop_assert_eq!(&r.url, &if mirror { format!("{url}?m=00000000000000x000000") } else { url.clone() });
                let read = d.read().unwrap().url.unwrap();
                let prefix = format!("{url}?m=04");
                if mirror { prop_assert!(read.starts_with(&prefix)); } else { prop_assert_eq!(read, url); }
            }
            Err(DriverError::DoesNotFit { .. } | DriverError::Mirror(_)) => prop_assert_eq!(kind, SimTagKind::Ntag213),
            Err(e) => prop_assert!(false, "{}", e),
        }
    }
}

/// The same driver on an ACR1252U-class reader, which takes the tag's commands raw (no
/// PN532 wrapper): the dialect is found, the mirror and counter work, a password guards
/// writes.
#[test]
fn a_raw_dialect_reader_writes_mirrors_and_protects() {
    let mut t = SimTransport::new(SimTag::with_seed(SimTagKind::Ntag215, 9), vec![]);
    t.reader_mut().set_dialect(tapkit_core::apdu::Dialect::Raw);
    let mut d = TagDriver::new(t);
    let pwd = [9, 8, 7, 6];
    let r = d
        .write_url(
            URL,
            &WriteOptions {
                mirror: true,
                password: Some(pwd),
                set_password: true,
                ..plain()
            },
        )
        .unwrap();
    assert_eq!(r.tag_type, TagType::Ntag215, "GET_VERSION went through raw");
    assert!(r.password_set);
    d.transport_mut().reconnect().unwrap();
    let info = d.read().unwrap();
    assert!(info.mirror && info.password_protected);
    assert!(info.counter.is_some(), "READ_CNT went through raw");
    let over = WriteOptions {
        overwrite: true,
        ..plain()
    };
    assert_eq!(
        d.write_url("https://book.example.com/r/X", &over)
            .unwrap_err(),
        DriverError::PasswordRequired
    );
}
