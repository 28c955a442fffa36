//! Hex strings for UIDs, images and JSON output.

/// Upper-case hex without separators.
pub fn encode(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02X}");
            s
        })
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
        assert_eq!(super::decode("04ab").unwrap(), vec![0x04, 0xAB]);
        assert_eq!(super::decode("04:AB").unwrap(), vec![0x04, 0xAB]);
        assert!(super::decode("0").is_err());
        assert!(super::decode("zz").is_err());
    }
}
