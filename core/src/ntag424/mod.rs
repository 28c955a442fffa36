//! NTAG 424 DNA: the AES crypto of its SUN messages, its EV2 sessions and its keys per
//! card, pure and tested against the published NXP vectors (AN12196, AN10922).
//! Byte-level facts: `shared/docs/ntag424-reference.md`.
//!
//! - [`crypto`]: AES-128 blocks, CBC, CMAC, `MACt`, padding, CRC32NK;
//! - [`keys`]: AN10922 diversification and Tapkit's key per slot;
//! - [`keyfile`]: the brand's master keys by version, as the provisioner and the server read them;
//! - [`sun`]: decrypting and checking a tap's `e` and `c`, and making them (the card's side);
//! - [`session`]: AuthenticateEV2First, the command counter, CommMode MAC and Full.

pub mod crypto;
pub mod keyfile;
pub mod keys;
pub mod session;
pub mod sun;

#[cfg(test)]
pub(crate) mod test_hex {
    /// Hex (spaces allowed) into bytes.
    pub fn h(s: &str) -> Vec<u8> {
        crate::hex::decode(s).unwrap()
    }

    /// Hex into one block.
    pub fn hex16(s: &str) -> [u8; 16] {
        h(s).try_into().unwrap()
    }
}
