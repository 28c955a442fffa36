//! The AES-128 building blocks NTAG 424 DNA uses: one-block ECB, CBC without padding,
//! AES-CMAC (NIST SP 800-38B), the truncated `MACt`, ISO 9797-1 padding method 2 and the
//! non-inverted CRC-32 of ChangeKey (`ntag424-reference.md` §0, §6, §7.3).

use aes::Aes128;
use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use cmac::{Cmac, Mac};

/// An AES-128 key.
pub type Key = [u8; 16];
/// One AES block.
pub type Block = [u8; 16];

fn cipher(k: &Key) -> Aes128 {
    Aes128::new(&(*k).into())
}

/// `E(K, b)`: one block, AES-128-ECB (the same as CBC with a zero IV for one block).
pub fn ecb_encrypt(k: &Key, b: &Block) -> Block {
    let mut blk = aes::Block::from(*b);
    cipher(k).encrypt_block(&mut blk);
    blk.into()
}

/// `D(K, b)`: one block, AES-128-ECB decryption.
pub fn ecb_decrypt(k: &Key, b: &Block) -> Block {
    let mut blk = aes::Block::from(*b);
    cipher(k).decrypt_block(&mut blk);
    blk.into()
}

/// Whole blocks of `data`; `None` when its length is not a multiple of 16.
fn blocks(data: &mut [u8]) -> Option<std::slice::ChunksExactMut<'_, u8>> {
    data.len()
        .is_multiple_of(16)
        .then(|| data.chunks_exact_mut(16))
}

/// AES-128-CBC encryption in place, no padding. `None` (and `data` untouched) when the
/// length is not a whole number of blocks.
pub fn cbc_encrypt(k: &Key, iv: &Block, data: &mut [u8]) -> Option<()> {
    let c = cipher(k);
    let mut prev = *iv;
    for chunk in blocks(data)? {
        let mut blk = aes::Block::default();
        for (i, b) in blk.iter_mut().enumerate() {
            *b = chunk[i] ^ prev[i];
        }
        c.encrypt_block(&mut blk);
        chunk.copy_from_slice(&blk);
        prev.copy_from_slice(&blk);
    }
    Some(())
}

/// AES-128-CBC decryption in place, no padding. `None` (and `data` untouched) when the
/// length is not a whole number of blocks.
pub fn cbc_decrypt(k: &Key, iv: &Block, data: &mut [u8]) -> Option<()> {
    let c = cipher(k);
    let mut prev = *iv;
    for chunk in blocks(data)? {
        let mut blk = aes::Block::default();
        blk.copy_from_slice(chunk);
        let this: Block = blk.into();
        c.decrypt_block(&mut blk);
        for (i, b) in chunk.iter_mut().enumerate() {
            *b = blk[i] ^ prev[i];
        }
        prev = this;
    }
    Some(())
}

/// AES-128-CMAC of `msg`.
pub fn cmac(k: &Key, msg: &[u8]) -> Block {
    let mut m = <Cmac<Aes128> as cmac::KeyInit>::new(&(*k).into());
    m.update(msg);
    m.finalize().into_bytes().into()
}

/// `MACt`: the odd-numbered bytes (1, 3, …, 15) of a CMAC, as the chip sends them.
pub fn truncate(full: &Block) -> [u8; 8] {
    std::array::from_fn(|i| full[2 * i + 1])
}

/// `MACt(K, msg)`.
pub fn mac_t(k: &Key, msg: &[u8]) -> [u8; 8] {
    truncate(&cmac(k, msg))
}

/// ISO 9797-1 padding method 2: always `80`, then zeros to a whole number of blocks (a
/// full extra block when `data` is already aligned).
pub fn pad(data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(data.len() + 16);
    v.extend_from_slice(data);
    v.push(0x80);
    while !v.len().is_multiple_of(16) {
        v.push(0);
    }
    v
}

/// Removes method-2 padding; `None` when there is none (a wrong key, or a forged
/// message).
pub fn unpad(data: &[u8]) -> Option<&[u8]> {
    let end = data.iter().rposition(|&b| b != 0)?;
    (data[end] == 0x80 && data.len() - end <= 16).then(|| &data[..end])
}

/// ChangeKey's CRC32NK: IEEE CRC-32 without the final inversion, least significant byte
/// first.
pub fn crc32nk(data: &[u8]) -> [u8; 4] {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    crc.to_le_bytes()
}

/// Equality of two MACs in time independent of where they differ.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::super::test_hex::{h, hex16};
    use super::*;
    use crate::hex;

    #[test]
    fn cmac_matches_nist_sp800_38b() {
        // SP 800-38B, appendix D.1, AES-128 examples 1 and 2.
        let k = hex16("2b7e151628aed2a6abf7158809cf4f3c");
        assert_eq!(
            hex::encode(&cmac(&k, b"")),
            "BB1D6929E95937287FA37D129B756746"
        );
        let m = h("6bc1bee22e409f96e93d7e117393172a");
        assert_eq!(
            hex::encode(&cmac(&k, &m)),
            "070A16B46B4D4144F79BDD9DD04A287C"
        );
    }

    #[test]
    fn cbc_round_trips_and_refuses_partial_blocks() {
        let k = hex16("000102030405060708090a0b0c0d0e0f");
        let iv = hex16("0f0e0d0c0b0a09080706050403020100");
        let plain: Vec<u8> = (0u8..48).collect();
        let mut data = plain.clone();
        assert_eq!(cbc_encrypt(&k, &iv, &mut data), Some(()));
        assert_ne!(data, plain);
        // CBC: the first block is E(K, P1 xor IV).
        let mut first = [0u8; 16];
        for i in 0..16 {
            first[i] = plain[i] ^ iv[i];
        }
        assert_eq!(data[..16], ecb_encrypt(&k, &first));
        assert_eq!(cbc_decrypt(&k, &iv, &mut data), Some(()));
        assert_eq!(data, plain);
        let mut odd = vec![0u8; 17];
        assert_eq!(cbc_encrypt(&k, &iv, &mut odd), None);
        assert_eq!(odd, vec![0u8; 17]);
    }

    #[test]
    fn padding_always_adds_and_unpad_checks() {
        assert_eq!(pad(&[1, 2]).len(), 16);
        assert_eq!(pad(&[0; 16]).len(), 32);
        assert_eq!(pad(&[0; 16])[16], 0x80);
        assert_eq!(unpad(&pad(&[1, 2, 0])), Some(&[1u8, 2, 0][..]));
        assert_eq!(unpad(&pad(&[])), Some(&[][..]));
        assert_eq!(unpad(&[0u8; 16]), None);
        assert_eq!(unpad(&[1u8; 16]), None);
        let mut long = vec![0x80];
        long.extend([0u8; 16]);
        assert_eq!(
            unpad(&long),
            None,
            "more than a block of zeros is not padding"
        );
    }

    #[test]
    fn crc32nk_matches_an12196_table_26() {
        let k = hex16("F3847D627727ED3BC9C4CC050489B966");
        assert_eq!(crc32nk(&k), [0x78, 0x9D, 0xFA, 0xDC]);
    }

    #[test]
    fn mac_t_takes_the_odd_bytes() {
        let full: Block = std::array::from_fn(|i| i as u8);
        assert_eq!(truncate(&full), [1, 3, 5, 7, 9, 11, 13, 15]);
        assert!(ct_eq(&[1, 2], &[1, 2]));
        assert!(!ct_eq(&[1, 2], &[1, 3]));
        assert!(!ct_eq(&[1, 2], &[1, 2, 3]));
    }
}
