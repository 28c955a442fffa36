//! A scripted transport for unit tests, in the style of the pn532 crate's SPI tests: it
//! is built with the exact exchanges the code under test must make — each command APDU
//! and the response to give it, plus any reconnects — and panics with a clear message
//! on the first exchange that differs from the script, and when it is dropped with
//! exchanges left over.
//!
//! ```
//! use tapkit_provisioner::reader::Transport;
//! use tapkit_provisioner::reader::mock::{Exchange, MockTransport};
//!
//! // GET_VERSION through an ACR122U (PN532 InCommunicateThru), answered by an NTAG215.
//! let mut t = MockTransport::new(
//!     &[0x3B, 0x8F],
//!     [Exchange::transmit("FF000000 03 D442 60", "D543 00 0004040201001103 9000")],
//! );
//! let resp = t.transmit(&[0xFF, 0, 0, 0, 3, 0xD4, 0x42, 0x60]).unwrap();
//! assert_eq!(resp.len(), 13);
//! ```

use std::collections::VecDeque;

use super::{Transport, TransportError};

/// One step the code under test must take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exchange {
    /// `transmit(command)`, answered with `response`.
    Transmit {
        /// The exact command APDU expected.
        command: Vec<u8>,
        /// What `transmit` returns.
        response: Result<Vec<u8>, TransportError>,
    },
    /// `reconnect()`, answered with this.
    Reconnect(Result<(), TransportError>),
}

impl Exchange {
    /// A command answered with a response; both in hex, spaces allowed.
    ///
    /// # Panics
    /// When either is not hex (a broken test).
    pub fn transmit(command: &str, response: &str) -> Self {
        Self::Transmit {
            command: hex(command),
            response: Ok(hex(response)),
        }
    }

    /// A command (hex) that fails with `error`.
    ///
    /// # Panics
    /// When the command is not hex (a broken test).
    pub fn fail(command: &str, error: TransportError) -> Self {
        Self::Transmit {
            command: hex(command),
            response: Err(error),
        }
    }

    /// A reconnect that succeeds.
    pub fn reconnect() -> Self {
        Self::Reconnect(Ok(()))
    }

    /// A reconnect that fails with `error`.
    pub fn reconnect_fails(error: TransportError) -> Self {
        Self::Reconnect(Err(error))
    }
}

/// Hex with spaces allowed, for scripts.
///
/// # Panics
/// When `s` is not hex (a broken test).
pub fn hex(s: &str) -> Vec<u8> {
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    match tapkit_core::hex::decode(&compact) {
        Ok(b) => b,
        Err(e) => panic!("MockTransport script: {s:?} is not hex ({e})"),
    }
}

/// A transport that plays back a script of [`Exchange`]s.
#[derive(Debug)]
pub struct MockTransport {
    atr: Vec<u8>,
    script: VecDeque<Exchange>,
    done: usize,
    signals: Vec<bool>,
}

impl MockTransport {
    /// A card with `atr` that expects exactly `script`, in order.
    pub fn new(atr: &[u8], script: impl IntoIterator<Item = Exchange>) -> Self {
        Self {
            atr: atr.to_vec(),
            script: script.into_iter().collect(),
            done: 0,
            signals: Vec::new(),
        }
    }

    /// Exchanges performed so far.
    pub fn performed(&self) -> usize {
        self.done
    }

    /// The results signalled on the reader so far (`signal` is not scripted).
    pub fn signals(&self) -> &[bool] {
        &self.signals
    }

    fn next(&mut self, what: &str) -> Exchange {
        match self.script.pop_front() {
            Some(e) => {
                self.done += 1;
                e
            }
            None => panic!(
                "MockTransport: unexpected {what} after the {} scripted exchanges",
                self.done
            ),
        }
    }
}

fn show(bytes: &[u8]) -> String {
    crate::hex::encode(bytes)
}

impl Transport for MockTransport {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let n = self.done + 1;
        match self.next(&format!("transmit({})", show(apdu))) {
            Exchange::Transmit { command, response } => {
                assert!(
                    command == apdu,
                    "MockTransport: exchange {n} sent {} but the script expects {}",
                    show(apdu),
                    show(&command)
                );
                response
            }
            Exchange::Reconnect(_) => panic!(
                "MockTransport: exchange {n} sent {} but the script expects a reconnect",
                show(apdu)
            ),
        }
    }

    fn atr(&self) -> &[u8] {
        &self.atr
    }

    fn reader_name(&self) -> &str {
        "mock"
    }

    fn reconnect(&mut self) -> Result<(), TransportError> {
        let n = self.done + 1;
        match self.next("reconnect") {
            Exchange::Reconnect(r) => r,
            Exchange::Transmit { command, .. } => panic!(
                "MockTransport: exchange {n} is a reconnect but the script expects {}",
                show(&command)
            ),
        }
    }

    fn signal(&mut self, success: bool) {
        self.signals.push(success);
    }
}

impl Drop for MockTransport {
    fn drop(&mut self) {
        if self.script.is_empty() || std::thread::panicking() {
            return;
        }
        let next = match &self.script[0] {
            Exchange::Transmit { command, .. } => show(command),
            Exchange::Reconnect(_) => "a reconnect".to_owned(),
        };
        panic!(
            "MockTransport dropped after {} exchanges with {} scripted exchanges never made (the next: {next})",
            self.done,
            self.script.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plays_the_script_in_order() {
        let mut t = MockTransport::new(
            &[0x3B],
            [
                Exchange::transmit("FFCA000000", "04A1B2 9000"),
                Exchange::reconnect(),
                Exchange::fail("FFB0000410", TransportError::CardRemoved),
            ],
        );
        assert_eq!(
            t.transmit(&hex("FFCA000000")),
            Ok(vec![0x04, 0xA1, 0xB2, 0x90, 0x00])
        );
        assert_eq!(t.reconnect(), Ok(()));
        assert_eq!(
            t.transmit(&hex("FFB0000410")),
            Err(TransportError::CardRemoved)
        );
        assert_eq!(t.performed(), 3);
    }

    #[test]
    #[should_panic(expected = "exchange 1 sent FFB0000410 but the script expects FFCA000000")]
    fn a_different_command_panics() {
        let mut t = MockTransport::new(&[], [Exchange::transmit("FFCA000000", "9000")]);
        let _ = t.transmit(&hex("FFB0000410"));
    }

    #[test]
    #[should_panic(expected = "unexpected reconnect after the 0 scripted exchanges")]
    fn an_exchange_past_the_script_panics() {
        let mut t = MockTransport::new(&[], []);
        let _ = t.reconnect();
    }

    #[test]
    #[should_panic(expected = "with 1 scripted exchanges never made (the next: FFCA000000)")]
    fn leftover_exchanges_panic_at_drop() {
        let _t = MockTransport::new(&[], [Exchange::transmit("FFCA000000", "9000")]);
    }
}
