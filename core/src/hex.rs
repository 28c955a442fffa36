//! Hex strings: UIDs, tag images and JSON output (upper case), keys, hashes and MACs
//! (lower case). By table, not `format!` per byte: the server's `/r/{code}` hop hashes
//! on every tap.

fn encode_with(bytes: &[u8], digits: &[u8; 16]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(digits[usize::from(b >> 4)]));
        s.push(char::from(digits[usize::from(b & 0x0f)]));
    }
    s
}

/// Upper-case hex without separators.
pub fn encode(bytes: &[u8]) -> String {
    encode_with(bytes, b"0123456789ABCDEF")
}

/// Lower-case hex without separators.
pub fn encode_lower(bytes: &[u8]) -> String {
    encode_with(bytes, b"0123456789abcdef")
}

/// A `#rrggbb` colour, strictly: `#` and exactly six hex digits, nothing else.
pub fn parse_rgb(s: &str) -> Option<[u8; 3]> {
    let hex = s.strip_prefix('#')?;
    if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let d = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    Some([d(0)?, d(2)?, d(4)?])
}

/// Parses hex (either case; spaces and colons ignored).
pub fn decode(s: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|b| !matches!(b, b' ' | b':' | b'\n'))
        .collect();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("{s:?} has an odd number of hex digits"));
    }
    digits
        .chunks(2)
        .map(|pair| {
            let hi = char::from(pair[0]).to_digit(16);
            let lo = char::from(pair[1]).to_digit(16);
            match (hi, lo) {
                // Two hex digits always fit a byte.
                (Some(h), Some(l)) => Ok(u8::try_from(h * 16 + l).unwrap_or(0)),
                _ => Err(format!("{s:?} is not hex")),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        assert_eq!(super::encode(&[0x04, 0xAB]), "04AB");
        assert_eq!(super::encode_lower(&[0x04, 0xAB]), "04ab");
        assert_eq!(super::decode("04ab").unwrap(), vec![0x04, 0xAB]);
        assert_eq!(super::decode("04:AB").unwrap(), vec![0x04, 0xAB]);
        assert!(super::decode("0").is_err());
        assert!(super::decode("zz").is_err());
    }

    #[test]
    fn colours_are_parsed_strictly() {
        assert_eq!(super::parse_rgb("#0b2545"), Some([0x0b, 0x25, 0x45]));
        assert_eq!(super::parse_rgb("#FFFFFF"), Some([255, 255, 255]));
        for bad in [
            "", "#", "0b2545", "#0b254", "#0b25455", "#ff ff ", "#ff:ff:", "#gg0000", "#+f0000",
            "#ééé",
        ] {
            assert_eq!(super::parse_rgb(bad), None, "{bad:?}");
        }
    }
}
