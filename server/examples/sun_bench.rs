//! NTAG 424 DNA SUN for the benches, with the server's own code ([`SunKeys`]):
//!
//! - `sun_bench verify KEYFILE [N]`: times the tap path's SUN work (decrypting `e` under
//!   every key version, deriving the card's K_file, checking `c`) over N taps of 1,000
//!   cards, and prints nanoseconds per tap;
//! - `sun_bench urls KEYFILE CODE DIR ROUNDS`: writes the URLs 1,000 cards send, each
//!   counter rising, for wrk (`scripts/bench/sun.lua`): `DIR/sun-0.txt` holds the taps of
//!   cards 0–499, `DIR/sun-1.txt` of 500–999, in the order a card's taps must arrive.
//!
//! Card N's UID is `04` + 12 hex digits of 0x5000000000 + N, as the bench registers them
//! (apart from the NTAG21x row's cards).

use std::io::Write;
use std::time::Instant;

use tapkit_core::ntag424::keyfile::KeyFile;
use tapkit_core::ntag424::keys::FILE_SLOT;
use tapkit_core::ntag424::sun::{Picc, encrypt_picc, sdm_mac};
use tapkit_server::tap::sun::SunKeys;

fn uid(card: u64) -> [u8; 7] {
    let b = (0x50_0000_0000 + card).to_be_bytes();
    [0x04, b[2], b[3], b[4], b[5], b[6], b[7]]
}

fn tap(file: &KeyFile, card: u64, counter: u32) -> (String, String) {
    let m = file.current().expect("a key");
    let picc = Picc {
        uid: uid(card),
        counter,
    };
    let e = encrypt_picc(&m.meta_key(), &picc, [counter as u8; 5]);
    let c = sdm_mac(&m.card_key(FILE_SLOT, &picc.uid), &picc, b"");
    (tapkit_core::hex::encode(&e), tapkit_core::hex::encode(&c))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: sun_bench verify KEYFILE [N] | sun_bench urls KEYFILE CODE DIR ROUNDS";
    let file = KeyFile::parse(&std::fs::read_to_string(args.get(2).ok_or(usage)?)?)?;
    match args.get(1).map(String::as_str) {
        Some("verify") => {
            let n: usize = args.get(3).map_or(Ok(200_000), |s| s.parse())?;
            let taps: Vec<(String, String)> =
                (0..1000u64).map(|card| tap(&file, card, 7)).collect();
            let keys = SunKeys::new(file);
            let mut ok = 0usize;
            let start = Instant::now();
            for i in 0..n {
                let (e, c) = &taps[i % taps.len()];
                if let Ok(found) = keys.decrypt(e) {
                    for (version, picc) in found {
                        ok += usize::from(keys.mac_ok(version, &picc, c));
                    }
                }
            }
            let ns = start.elapsed().as_nanos() as f64 / n as f64;
            assert_eq!(ok, n, "every tap verifies");
            println!(
                "SUN verification: {ns:.0} ns per tap ({n} taps of 1,000 cards, {} key version(s))",
                keys_versions(&args[2])?
            );
        }
        Some("urls") => {
            let code = args.get(3).ok_or(usage)?;
            let dir = std::path::PathBuf::from(args.get(4).ok_or(usage)?);
            let rounds: u32 = args.get(5).ok_or(usage)?.parse()?;
            for half in 0..2u64 {
                let mut out = std::io::BufWriter::new(std::fs::File::create(
                    dir.join(format!("sun-{half}.txt")),
                )?);
                for counter in 1..=rounds {
                    for card in half * 500..half * 500 + 500 {
                        let (e, c) = tap(&file, card, counter);
                        writeln!(out, "/r/{code}?e={e}&c={c}")?;
                    }
                }
                out.flush()?;
            }
        }
        _ => return Err(usage.into()),
    }
    Ok(())
}

fn keys_versions(path: &str) -> Result<usize, Box<dyn std::error::Error>> {
    Ok(KeyFile::parse(&std::fs::read_to_string(path)?)?.all().len())
}
