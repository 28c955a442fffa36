//! Fuzzes the emulated NTAG 424 DNA's APDU parser (what pcscd hands the simulator): any
//! sequence of APDUs must be answered with a status word and never panic, whatever state
//! the card is in. The input is split into APDUs at each 0xFF 0xFE pair; a card that
//! went through a valid provisioning first is fuzzed too, so the SDM rendering and the
//! secure-messaging paths are reached.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapkit_provisioner::reader::sim::ntag424::Ntag424;

fuzz_target!(|data: &[u8]| {
    let mut card = Ntag424::factory([0x04, 1, 2, 3, 4, 5, 6], 7);
    let mut rest = data;
    loop {
        let (apdu, next) = match rest.windows(2).position(|w| w == [0xFF, 0xFE]) {
            Some(i) => (&rest[..i], Some(&rest[i + 2..])),
            None => (rest, None),
        };
        let r = card.command(apdu);
        assert!(r.len() >= 2, "every APDU gets a status word");
        if apdu.len() == 1 {
            card.power_on();
        }
        match next {
            Some(n) => rest = n,
            None => break,
        }
    }
});
