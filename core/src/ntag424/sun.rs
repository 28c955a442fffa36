//! SUN (Secure Unique NFC) messages: what an NTAG 424 DNA card with SDM writes into its
//! URL on every unauthenticated read, and how the server checks it
//! (`ntag424-reference.md` §8, §9).
//!
//! Tapkit's template is `https://{domain}/r/{code}?e=<32 hex>&c=<16 hex>`: `e` is the
//! PICCData (tag, UID and read counter, encrypted with K_meta), `c` the SDM MAC with
//! K_file's session key over an empty input (SDMMACInputOffset = SDMMACOffset).
//! Checking one costs three AES blocks and two CMACs: no search over cards, no
//! allocation.

use super::crypto::{Block, Key, cmac, ct_eq, ecb_decrypt, ecb_encrypt, mac_t};

/// The PICCData tag of a card that mirrors its 7-byte UID and its read counter.
pub const PICC_TAG: u8 = 0xC7;

/// Why a SUN URL was not accepted. The messages say what was wrong with the URL; the
/// server decides what the tap then counts as.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SunError {
    /// A parameter of the wrong length.
    #[error("`{param}` must be {expected} hex digits, not {got}")]
    Length {
        /// `e` or `c`.
        param: &'static str,
        /// What it must be.
        expected: usize,
        /// What it was.
        got: usize,
    },
    /// A 48-digit `e`: a card switched to LRP mode, which Tapkit does not configure.
    #[error("`e` has 48 hex digits: the card is in LRP mode, which Tapkit does not support")]
    Lrp,
    /// A parameter that is not hex.
    #[error("`{0}` is not hex")]
    NotHex(&'static str),
    /// `e` does not decrypt to Tapkit's PICCData: the card is keyed with another K_meta
    /// (another key version or deployment), or the URL was made up.
    #[error(
        "`e` does not decrypt under this key version's meta key (tag {tag:02X}, want C7): another key version, or a forged URL"
    )]
    BadTag {
        /// The first decrypted byte.
        tag: u8,
    },
    /// The MAC does not verify with the card's K_file: a copied or altered URL.
    #[error("`c` does not verify for this card: the URL was altered or forged")]
    BadMac,
}

/// What a valid PICCData holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Picc {
    /// The card's UID.
    pub uid: [u8; 7],
    /// SDMReadCtr: how many times the card has been read since SDM was enabled.
    pub counter: u32,
}

/// Fixed-length hex into bytes, either case.
fn parse_hex<const N: usize>(s: &str, param: &'static str) -> Result<[u8; N], SunError> {
    let b = s.as_bytes();
    if b.len() != 2 * N {
        if param == "e" && b.len() == 48 {
            return Err(SunError::Lrp);
        }
        return Err(SunError::Length {
            param,
            expected: 2 * N,
            got: b.len(),
        });
    }
    let nib = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        let (Some(hi), Some(lo)) = (nib(b[2 * i]), nib(b[2 * i + 1])) else {
            return Err(SunError::NotHex(param));
        };
        *o = hi << 4 | lo;
    }
    Ok(out)
}

/// Decrypts `e` with K_meta: the card's UID and counter.
pub fn decrypt_picc(k_meta: &Key, e: &str) -> Result<Picc, SunError> {
    let p = ecb_decrypt(k_meta, &parse_hex::<16>(e, "e")?);
    if p[0] != PICC_TAG {
        return Err(SunError::BadTag { tag: p[0] });
    }
    let mut uid = [0u8; 7];
    uid.copy_from_slice(&p[1..8]);
    let counter = u32::from_le_bytes([p[8], p[9], p[10], 0]);
    Ok(Picc { uid, counter })
}

/// KSesSDMFileReadMAC: the session key of one read, from K_file, the UID and the counter.
pub fn session_mac_key(k_file: &Key, picc: &Picc) -> Key {
    let mut sv2 = [0u8; 16];
    sv2[..6].copy_from_slice(&[0x3C, 0xC3, 0x00, 0x01, 0x00, 0x80]);
    sv2[6..13].copy_from_slice(&picc.uid);
    sv2[13..16].copy_from_slice(&picc.counter.to_le_bytes()[..3]);
    cmac(k_file, &sv2)
}

/// The SDM MAC of one read over `input` (the URL text from SDMMACInputOffset to the
/// MAC; empty in Tapkit's template).
pub fn sdm_mac(k_file: &Key, picc: &Picc, input: &[u8]) -> [u8; 8] {
    mac_t(&session_mac_key(k_file, picc), input)
}

/// Checks `c` against the card's K_file.
pub fn check_mac(k_file: &Key, picc: &Picc, c: &str, input: &[u8]) -> Result<(), SunError> {
    let c = parse_hex::<8>(c, "c")?;
    if ct_eq(&sdm_mac(k_file, picc, input), &c) {
        Ok(())
    } else {
        Err(SunError::BadMac)
    }
}

/// The card's side: the encrypted PICCData of one read, with 5 random bytes.
pub fn encrypt_picc(k_meta: &Key, picc: &Picc, random: [u8; 5]) -> Block {
    let mut p = [0u8; 16];
    p[0] = PICC_TAG;
    p[1..8].copy_from_slice(&picc.uid);
    p[8..11].copy_from_slice(&picc.counter.to_le_bytes()[..3]);
    p[11..].copy_from_slice(&random);
    ecb_encrypt(k_meta, &p)
}

#[cfg(test)]
mod tests {
    use super::super::test_hex::{h, hex16};
    use super::*;
    use crate::hex;

    fn verify(k_meta: &Key, k_file: &Key, e: &str, c: &str, input: &[u8]) -> Picc {
        let p = decrypt_picc(k_meta, e).unwrap();
        check_mac(k_file, &p, c, input).unwrap();
        p
    }

    #[test]
    fn s1_session_keys() {
        // [A] Table 2: SV2 = 3CC3 0001 0080 ‖ UID ‖ ctr; MAC session key.
        let p = Picc {
            uid: h("04C767F2066180").try_into().unwrap(),
            counter: 1,
        };
        let k = hex16("5ACE7E50AB65D5D51FD5BF5A16B8205B");
        assert_eq!(
            hex::encode(&session_mac_key(&k, &p)),
            "3A3E8110E05311F7A3FCF0D969BF2B48"
        );
    }

    #[test]
    fn s2_zero_keys_empty_input() {
        let z = [0u8; 16];
        let p = verify(
            &z,
            &z,
            "EF963FF7828658A599F3041510671E88",
            "94EED9EE65337086",
            b"",
        );
        assert_eq!(hex::encode(&p.uid), "04DE5F1EACC040");
        assert_eq!(p.counter, 61);
        // Lower case parses the same.
        verify(
            &z,
            &z,
            "ef963ff7828658a599f3041510671e88",
            "94eed9ee65337086",
            b"",
        );
    }

    #[test]
    fn s3_s4_mac_over_url_text() {
        let z = [0u8; 16];
        let p = verify(
            &z,
            &z,
            "FDE4AFA99B5C820A2C1BB0F1C792D0EB",
            "C48B89C17A233B2C",
            b"94592FDE69FA06E8E3B6CA686A22842B&cmac=",
        );
        assert_eq!(
            (hex::encode(&p.uid).as_str(), p.counter),
            ("04958CAA5C5E80", 1)
        );
        let p = verify(
            &z,
            &z,
            "FD91EC264309878BE6345CBE53BADF40",
            "ECC1E7F6C6C73BF6",
            b"CEE9A53E3E463EF1F459635736738962&cmac=",
        );
        assert_eq!(p.counter, 8);
    }

    #[test]
    fn s5_plain_mirror_mac() {
        let p = Picc {
            uid: h("041E3C8A2D6B80").try_into().unwrap(),
            counter: 6,
        };
        assert_eq!(hex::encode(&sdm_mac(&[0; 16], &p, b"")), "4B00064004B0B3D3");
    }

    #[test]
    fn s6_distinct_meta_and_file_keys() {
        let k_meta = hex16("42aff114f2cb3b6141be6dc95dfc5416");
        let k_file = hex16("b62a9baf092439bd43c62aee96b970c5");
        let p = verify(
            &k_meta,
            &k_file,
            "8ACADDEF0A9B62CDAE39A16B83FC14DE",
            "238B2543A8DEBAD8",
            b"B8436E11F627BB7F543FCC0C1E0D1A89",
        );
        assert_eq!(
            (hex::encode(&p.uid).as_str(), p.counter),
            ("041D3C8A2D6B80", 291)
        );
        // The two keys swapped: the tag is wrong, reported as such (not as a MAC).
        assert!(matches!(
            decrypt_picc(&k_file, "8ACADDEF0A9B62CDAE39A16B83FC14DE"),
            Err(SunError::BadTag { .. })
        ));
    }

    #[test]
    fn s7_bolt_card_vectors() {
        let k1 = hex16("0c3b25d92b38ae443229dd59ad34b85d");
        let k2 = hex16("b45775776cb224c75bcde7ca3704e933");
        for (e, ctr, c) in [
            ("4E2E289D945A66BB13377A728884E867", 3, "E19CCB1FED8892CE"),
            ("00F48C4F8E386DED06BCDC78FA92E2FE", 5, "66B4826EA4C155B4"),
            ("0DBF3C59B59B0638D60B5842A997D4D1", 7, "CC61660C020B4D96"),
        ] {
            let p = verify(&k1, &k2, e, c, b"");
            assert_eq!(hex::encode(&p.uid), "04996C6A926980");
            assert_eq!(p.counter, ctr);
        }
    }

    #[test]
    fn the_card_side_round_trips_and_tampering_is_caught() {
        let (k_meta, k_file) = ([1u8; 16], [2u8; 16]);
        let picc = Picc {
            uid: [4, 9, 8, 7, 6, 5, 4],
            counter: 0x00AB_CDEF,
        };
        let e = hex::encode(&encrypt_picc(&k_meta, &picc, [1, 2, 3, 4, 5]));
        let c = hex::encode(&sdm_mac(&k_file, &picc, b""));
        assert_eq!(verify(&k_meta, &k_file, &e, &c, b""), picc);
        let mut bad = c.clone().into_bytes();
        bad[0] = if bad[0] == b'0' { b'1' } else { b'0' };
        let bad = String::from_utf8(bad).unwrap();
        assert_eq!(check_mac(&k_file, &picc, &bad, b""), Err(SunError::BadMac));
        assert_eq!(check_mac(&[3; 16], &picc, &c, b""), Err(SunError::BadMac));
    }

    proptest::proptest! {
        /// Any text in `e` and `c` (what a URL can carry) is an answer, never a panic.
        #[test]
        fn any_parameters_are_answered(e in "\\PC{0,60}", c in "\\PC{0,30}") {
            let z = [0u8; 16];
            if let Ok(p) = decrypt_picc(&z, &e) {
                let _ = check_mac(&z, &p, &c, e.as_bytes());
            }
            let _ = check_mac(&z, &Picc { uid: [0; 7], counter: 0 }, &c, b"");
        }

        /// Every tap the card side makes verifies, and any one digit changed in `c` does
        /// not.
        #[test]
        fn made_taps_verify_and_changed_ones_do_not(
            k_meta: [u8; 16],
            k_file: [u8; 16],
            uid: [u8; 7],
            counter in 0u32..0x0100_0000,
            random: [u8; 5],
            at in 0usize..16,
        ) {
            let picc = Picc { uid, counter };
            let e = hex::encode(&encrypt_picc(&k_meta, &picc, random));
            let c = hex::encode(&sdm_mac(&k_file, &picc, b""));
            proptest::prop_assert_eq!(decrypt_picc(&k_meta, &e), Ok(picc));
            proptest::prop_assert_eq!(check_mac(&k_file, &picc, &c, b""), Ok(()));
            let mut bad = c.into_bytes();
            bad[at] = if bad[at] == b'F' { b'E' } else { b'F' };
            let bad = String::from_utf8(bad).unwrap_or_default();
            proptest::prop_assert_eq!(check_mac(&k_file, &picc, &bad, b""), Err(SunError::BadMac));
        }
    }

    #[test]
    fn bad_parameters_say_what_is_wrong() {
        let z = [0u8; 16];
        assert_eq!(
            decrypt_picc(&z, "00"),
            Err(SunError::Length {
                param: "e",
                expected: 32,
                got: 2
            })
        );
        assert_eq!(decrypt_picc(&z, &"0".repeat(48)), Err(SunError::Lrp));
        assert_eq!(
            decrypt_picc(&z, &"g".repeat(32)),
            Err(SunError::NotHex("e"))
        );
        let p = Picc {
            uid: [0; 7],
            counter: 0,
        };
        assert_eq!(
            check_mac(&z, &p, "", b""),
            Err(SunError::Length {
                param: "c",
                expected: 16,
                got: 0
            })
        );
        assert_eq!(
            check_mac(&z, &p, "é12345678901234", b""),
            Err(SunError::NotHex("c"))
        );
        assert!(SunError::Lrp.to_string().contains("LRP"));
    }
}
