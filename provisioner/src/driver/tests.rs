//! The driver against scripted transcripts ([`MockTransport`]): every APDU it sends is
//! checked byte for byte, and a transcript it does not finish fails the test. The
//! bytes are the NTAG21x datasheet's (GET_VERSION 60h, FAST_READ 3Ah) wrapped the way an
//! ACR122U takes them (PN532 InCommunicateThru `FF 00 00 00 Lc D4 42 …` → `D5 43 00 …`),
//! and PC/SC Part 3 storage-card APDUs (`FF B0` READ BINARY, `FF D6` UPDATE BINARY).

use tapkit_core::ntag::TagType;

use super::{DriverError, LockState, TagDriver, WriteOptions};
use crate::reader::TransportError;
use crate::reader::mock::{Exchange, MockTransport, hex};

/// A PC/SC Part 3 storage-card ATR naming the Ultralight family (NN = 00 03).
const ATR_NTAG: &str = "3B8F8001804F0CA0000003060300030000000068";
/// The same for a MIFARE Classic 1K (NN = 00 01).
const ATR_CLASSIC: &str = "3B8F8001804F0CA000000306030001000000006A";

/// Pages 0–3: UID 04A1B2C3D4E5F6 with its check bytes, no static lock bits, and the
/// NTAG215 capability container (E1 10 3E 00: 496 bytes, read/write).
const HEADER: &str = "04A1B29F C3D4E5F6 04480000 E1103E00";
/// A factory-blank data area: an empty NDEF TLV, then the terminator.
const BLANK: &str = "0300FE00";
/// `https://a.example/r/X` as one URI record (prefix 04 = https://) in an NDEF TLV.
const URL: &str = "https://a.example/r/X";
const URL_PAGES: [&str; 6] = [
    "0312D101", "0E550461", "2E657861", "6D706C65", "2F722F58", "FE000000",
];
/// Dynamic lock, CFG0 (no mirror, AUTH0 FFh: no password) and CFG1 (counter off).
const CFG: &str = "000000BD 040000FF 00050000";

/// Memory from page 0 to `through`: the header, then `data` pages, then zeros.
fn card(data: &[&str], through: u8) -> Vec<u8> {
    let mut m = hex(HEADER);
    for p in data {
        m.extend(hex(p));
    }
    m.resize((usize::from(through) + 1) * 4, 0);
    m
}

fn get_version_ntag215() -> Exchange {
    Exchange::transmit("FF000000 03 D442 60", "D54300 0004040201001103 9000")
}

fn fast_read(from: u8, to: u8, data: &[u8]) -> Exchange {
    Exchange::transmit(
        &format!("FF000000 05 D442 3A {from:02X} {to:02X}"),
        &format!("D54300 {} 9000", crate::hex::encode(data)),
    )
}

fn update_binary(page: u8, data: &str) -> String {
    format!("FFD600{page:02X} 04 {data}")
}

fn written(page: u8, data: &str) -> Exchange {
    Exchange::transmit(&update_binary(page, data), "9000")
}

/// Identification and the reads `write_url(URL)` makes on a card holding `data`.
fn write_preamble(data: &[&str]) -> Vec<Exchange> {
    vec![
        get_version_ntag215(),
        // The first read reaches as far as the new message will: 16 + 8 + 18 bytes.
        fast_read(0x00, 0x0B, &card(data, 0x0B)),
        fast_read(0x82, 0x84, &hex(CFG)),
    ]
}

/// The page writes for URL onto a blank card: body pages first, the TLV header last.
fn url_writes() -> Vec<Exchange> {
    [5, 6, 7, 8, 9, 4]
        .into_iter()
        .map(|p| written(p, URL_PAGES[usize::from(p - 4)]))
        .collect()
}

fn plain() -> WriteOptions {
    WriteOptions::default()
}

#[test]
fn read_identifies_an_ntag215_and_decodes_its_url() {
    let t = MockTransport::new(
        &hex(ATR_NTAG),
        [
            get_version_ntag215(),
            fast_read(0x00, 0x10, &card(&URL_PAGES, 0x10)),
            fast_read(0x82, 0x84, &hex(CFG)),
        ],
    );
    let mut d = TagDriver::new(t);
    let info = d.read().unwrap();
    assert_eq!(info.tag_type, TagType::Ntag215);
    assert_eq!(info.uid, "04A1B2C3D4E5F6");
    assert_eq!(info.url.as_deref(), Some(URL));
    assert_eq!(info.capacity, Some(496));
    assert_eq!(info.lock, LockState::Unlocked);
    assert!(!info.password_protected && !info.mirror && !info.config_locked);
    assert_eq!(
        info.counter, None,
        "the counter is off: READ_CNT is not sent"
    );
    assert_eq!(d.traffic().apdus, 3);
}

#[test]
fn without_direct_transmit_the_card_is_identified_and_read_with_read_binary() {
    let mem = card(&URL_PAGES, 0x13);
    let page = |p: usize| crate::hex::encode(&mem[p * 4..p * 4 + 16]);
    let t = MockTransport::new(
        &hex(ATR_NTAG),
        [
            // Neither the PN532 wrapper nor a raw frame is taken by this reader.
            Exchange::transmit("FF000000 03 D442 60", "6A81"),
            Exchange::transmit("FF000000 01 60", "6A81"),
            // The CC's size byte (3Eh) tells an NTAG215.
            Exchange::transmit("FFB0000010", &format!("{} 9000", page(0))),
            Exchange::transmit("FFB0000010", &format!("{} 9000", page(0))),
            Exchange::transmit("FFB0000410", &format!("{} 9000", page(4))),
            Exchange::transmit("FFB0000810", &format!("{} 9000", page(8))),
            Exchange::transmit("FFB0000C10", &format!("{} 9000", page(12))),
            Exchange::transmit("FFB0001010", &format!("{} 9000", page(16))),
            Exchange::transmit("FFB0008210", &format!("{CFG} 00000000 9000")),
        ],
    );
    let mut d = TagDriver::new(t);
    let info = d.read().unwrap();
    assert_eq!(info.tag_type, TagType::Ntag215);
    assert_eq!(info.url.as_deref(), Some(URL));
}

#[test]
fn a_mifare_classic_is_refused_from_its_atr_without_a_single_apdu() {
    let mut d = TagDriver::new(MockTransport::new(&hex(ATR_CLASSIC), []));
    let err = d.read().unwrap_err();
    assert!(matches!(err, DriverError::Unsupported { .. }), "{err:?}");
    assert!(err.to_string().contains("MIFARE Classic 1K"), "{err}");
}

#[test]
fn a_write_sends_only_the_differing_pages_header_last_then_verifies() {
    let mut script = write_preamble(&[BLANK]);
    script.extend(url_writes());
    script.push(fast_read(0x04, 0x09, &hex(&URL_PAGES.concat())));
    let mut d = TagDriver::new(MockTransport::new(&hex(ATR_NTAG), script));
    let r = d.write_url(URL, &plain()).unwrap();
    assert!(!r.already_written);
    assert_eq!((r.pages_written, r.pages_unchanged, r.apdus), (6, 0, 10));
    assert_eq!(r.url_as_read, URL);
    assert_eq!(d.traffic().writes, 6);
}

#[test]
fn writing_the_url_a_card_already_holds_costs_reads_only() {
    let script = write_preamble(&URL_PAGES);
    let mut d = TagDriver::new(MockTransport::new(&hex(ATR_NTAG), script));
    let r = d.write_url(URL, &plain()).unwrap();
    assert!(r.already_written);
    assert_eq!((r.pages_written, r.apdus), (0, 3));
}

#[test]
fn a_read_back_that_differs_is_a_verify_failure_naming_the_page() {
    let mut script = write_preamble(&[BLANK]);
    script.extend(url_writes());
    let mut back = hex(&URL_PAGES.concat());
    back[3 * 4] = 0x00; // page 7 lost its first byte
    script.push(fast_read(0x04, 0x09, &back));
    let mut d = TagDriver::new(MockTransport::new(&hex(ATR_NTAG), script));
    let err = d.write_url(URL, &plain()).unwrap_err();
    assert_eq!(
        err,
        DriverError::VerifyFailed {
            page: 7,
            expected: "6D706C65".into(),
            found: "00706C65".into(),
        }
    );
    assert!(err.is_retryable());
}

#[test]
fn a_card_pulled_at_the_third_write_stops_the_write_there() {
    let mut script = write_preamble(&[BLANK]);
    script.extend(url_writes().into_iter().take(2));
    script.push(Exchange::fail(
        &update_binary(7, URL_PAGES[3]),
        TransportError::CardRemoved,
    ));
    let mut d = TagDriver::new(MockTransport::new(&hex(ATR_NTAG), script));
    let err = d.write_url(URL, &plain()).unwrap_err();
    assert_eq!(
        err,
        DriverError::PulledMidWrite {
            written: 2,
            total: 6
        }
    );
    assert!(err.card_left());
}

#[test]
fn a_nak_wakes_the_tag_and_names_the_page() {
    let mut script = write_preamble(&[BLANK]);
    script.push(Exchange::transmit(&update_binary(5, URL_PAGES[1]), "6300"));
    script.push(Exchange::reconnect());
    let mut d = TagDriver::new(MockTransport::new(&hex(ATR_NTAG), script));
    let err = d.write_url(URL, &plain()).unwrap_err();
    assert_eq!(
        err,
        DriverError::Nak {
            op: "write",
            page: 5
        }
    );
}

#[test]
fn a_failed_write_whose_card_is_gone_counts_as_pulled() {
    // 63 00 is both a NAK and a card leaving; the reconnect tells them apart.
    let mut script = write_preamble(&[BLANK]);
    script.push(Exchange::transmit(&update_binary(5, URL_PAGES[1]), "6300"));
    script.push(Exchange::reconnect_fails(TransportError::CardRemoved));
    let mut d = TagDriver::new(MockTransport::new(&hex(ATR_NTAG), script));
    let err = d.write_url(URL, &plain()).unwrap_err();
    assert_eq!(
        err,
        DriverError::PulledMidWrite {
            written: 0,
            total: 6
        }
    );
}
