//! Fuzzes the decoders of outside input: a tag's memory image (capability container,
//! TLVs, NDEF message, URI record) and a bare NDEF message. Neither may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tapkit_core::read_tag_uri(data);
    // The same bytes placed after a valid NTAG215 header, so the fuzzer reaches the TLV
    // walker and the NDEF decoder without first having to guess a CC.
    let mut image = vec![0u8; 12];
    image.extend_from_slice(&[0xE1, 0x10, 0x3E, 0x00]);
    image.extend_from_slice(data);
    let _ = tapkit_core::read_tag_uri(&image);
    let _ = tapkit_core::ndef::decode_message(data);
    let _ = tapkit_core::code::ReferralCode::parse(&String::from_utf8_lossy(data));
});
