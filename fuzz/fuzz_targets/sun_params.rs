//! Fuzzes the NTAG 424 DNA parsers of outside input: a tap's `e` and `c` query values
//! (any text a URL can carry) and the SUN key file. None may panic; a parsed tap's MAC
//! check is constant work.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapkit_core::ntag424::{keyfile::KeyFile, sun};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (e, c) = text.split_once('&').unwrap_or((&text, ""));
    let k = [0u8; 16];
    if let Ok(p) = sun::decrypt_picc(&k, e) {
        let _ = sun::check_mac(&k, &p, c, data);
    }
    let _ = sun::check_mac(&k, &sun::Picc { uid: [0; 7], counter: 0 }, c, b"");
    let _ = KeyFile::parse(&text);
});
