//! Referral codes: short, case-insensitive, unambiguous, with a check symbol.
//!
//! A code is an optional readable prefix taken from the partner's name and a six-symbol
//! body, e.g. `IRONGYM-7K2M9Q`. The body is five random symbols and one check symbol
//! from the Crockford base32 alphabet (`0-9 A-Z` without `I L O U`).
//!
//! Reading is forgiving the way Crockford base32 is: case is ignored, hyphens and spaces
//! are ignored, and in the body `I`/`L` read as `1` and `O` as `0`. The prefix is letters
//! only (`A-Z`).
//!
//! The check symbol is a Damm-style check over GF(32): with `x ∘ y = 2·x + y` in GF(2⁵)
//! (a totally anti-symmetric quasigroup), every single-symbol substitution and every
//! swap of two adjacent symbols changes the result, so a mistyped code is rejected before
//! any database lookup. Prefix letters take part in the check too (`A`–`Z` map to
//! distinct field elements), so a typo anywhere in the code is caught.

use std::fmt;

/// The Crockford base32 alphabet: value `v` is written as `ALPHABET[v]`.
pub const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Symbols in the body: random symbols plus the check symbol.
pub const BODY_LEN: usize = RANDOM_LEN + 1;
/// Random symbols in the body (32⁵ ≈ 33.5 million codes per prefix).
pub const RANDOM_LEN: usize = 5;
/// The longest readable prefix taken from a partner's name.
pub const MAX_PREFIX_LEN: usize = 8;

/// A validated referral code in canonical form (`PREFIX-BODY` or `BODY`, upper case).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct ReferralCode(String);

/// Why a string is not a referral code. Each message says what is wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodeError {
    /// Nothing but separators was given.
    #[error("the referral code is empty; it looks like IRONGYM-7K2M9Q")]
    Empty,
    /// Fewer than the six body symbols.
    #[error(
        "the referral code {given:?} is too short: it ends in {BODY_LEN} letters or digits, like IRONGYM-7K2M9Q"
    )]
    TooShort {
        /// The input as given.
        given: String,
    },
    /// The prefix is longer than any generated prefix.
    #[error(
        "the referral code {given:?} is too long: the part before the last {BODY_LEN} symbols has at most {MAX_PREFIX_LEN} letters"
    )]
    TooLong {
        /// The input as given.
        given: String,
    },
    /// A character that can never appear in a code.
    #[error(
        "the referral code {given:?} has {ch:?}, which never appears in a code; check the code for a typo"
    )]
    BadCharacter {
        /// The input as given.
        given: String,
        /// The offending character.
        ch: char,
    },
    /// The check symbol does not match: a typo somewhere.
    #[error(
        "the referral code {given:?} does not check out (a mistyped letter or digit); compare it with the card or link"
    )]
    CheckFailed {
        /// The input as given.
        given: String,
    },
}

/// The value of a Crockford body symbol, with the usual aliases (`I`,`L` → 1, `O` → 0).
fn body_value(c: u8) -> Option<u8> {
    let c = c.to_ascii_uppercase();
    let c = match c {
        b'I' | b'L' => b'1',
        b'O' => b'0',
        other => other,
    };
    ALPHABET
        .iter()
        .position(|&a| a == c)
        .and_then(|p| u8::try_from(p).ok())
}

/// Multiplication by 2 in GF(2⁵) with the primitive polynomial x⁵ + x² + 1.
fn gf32_double(x: u8) -> u8 {
    let d = x << 1;
    if d & 0x20 != 0 { (d ^ 0x25) & 0x1F } else { d }
}

/// Runs the quasigroup over the values; a valid code (check symbol included) ends at 0.
fn damm(values: impl IntoIterator<Item = u8>) -> u8 {
    values
        .into_iter()
        .fold(0, |acc, v| gf32_double(acc) ^ (v & 0x1F))
}

/// Field values of the prefix letters: `A`..`Z` → 0..25, distinct per position.
fn prefix_values(prefix: &str) -> impl Iterator<Item = u8> + '_ {
    prefix.bytes().map(|b| b - b'A')
}

/// The check symbol value for a prefix and the random part of the body.
fn check_value(prefix: &str, random: &[u8]) -> u8 {
    gf32_double(damm(prefix_values(prefix).chain(random.iter().copied())))
}

impl ReferralCode {
    /// Reads a code typed or scanned by a person: ignores case, hyphens and spaces, maps
    /// Crockford aliases in the body, and verifies the check symbol.
    pub fn parse(input: &str) -> Result<Self, CodeError> {
        let given = || input.to_owned();
        let compact: Vec<u8> = input
            .bytes()
            .filter(|b| !matches!(b, b'-' | b' ' | b'\t'))
            .collect();
        if compact.is_empty() {
            return Err(CodeError::Empty);
        }
        if let Some(ch) = input
            .chars()
            .find(|c| !c.is_ascii() || c.is_ascii_control())
        {
            return Err(CodeError::BadCharacter { given: given(), ch });
        }
        if compact.len() < BODY_LEN {
            return Err(CodeError::TooShort { given: given() });
        }
        let (prefix_raw, body_raw) = compact.split_at(compact.len() - BODY_LEN);
        if prefix_raw.len() > MAX_PREFIX_LEN {
            return Err(CodeError::TooLong { given: given() });
        }
        let mut prefix = String::with_capacity(prefix_raw.len());
        for &b in prefix_raw {
            if !b.is_ascii_alphabetic() {
                return Err(CodeError::BadCharacter {
                    given: given(),
                    ch: char::from(b),
                });
            }
            prefix.push(char::from(b.to_ascii_uppercase()));
        }
        let mut body = [0u8; BODY_LEN];
        for (slot, &b) in body.iter_mut().zip(body_raw) {
            *slot = body_value(b).ok_or_else(|| CodeError::BadCharacter {
                given: given(),
                ch: char::from(b),
            })?;
        }
        if damm(prefix_values(&prefix).chain(body)) != 0 {
            return Err(CodeError::CheckFailed { given: given() });
        }
        Ok(Self::assemble(&prefix, &body))
    }

    /// Makes a new code for a partner: a readable prefix from `name` (see
    /// [`prefix_from_name`]) and a body from the low 25 bits of `random`. The caller
    /// supplies the randomness (core does no I/O) and checks uniqueness against its store.
    pub fn generate(name: &str, random: u32) -> Self {
        let prefix = prefix_from_name(name);
        let mut body = [0u8; BODY_LEN];
        for (i, slot) in body.iter_mut().take(RANDOM_LEN).enumerate() {
            // 5 bits per symbol; truncation to the low five bits is the intent.
            *slot = ((random >> (5 * i)) & 0x1F) as u8;
        }
        body[RANDOM_LEN] = check_value(&prefix, &body[..RANDOM_LEN]);
        Self::assemble(&prefix, &body)
    }

    fn assemble(prefix: &str, body: &[u8; BODY_LEN]) -> Self {
        let mut s = String::with_capacity(prefix.len() + 1 + BODY_LEN);
        if !prefix.is_empty() {
            s.push_str(prefix);
            s.push('-');
        }
        s.extend(body.iter().map(|&v| char::from(ALPHABET[usize::from(v)])));
        Self(s)
    }

    /// The canonical form, e.g. `IRONGYM-7K2M9Q`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The readable prefix (empty when the partner's name had no Latin letters).
    pub fn prefix(&self) -> &str {
        self.0.rsplit_once('-').map_or("", |(p, _)| p)
    }
}

impl fmt::Display for ReferralCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for ReferralCode {
    type Err = CodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The readable prefix for a partner's name: its Latin letters, upper-cased, with common
/// diacritics folded (`Café Zürich` → `CAFEZURI`), at most [`MAX_PREFIX_LEN`] letters.
/// Names without Latin letters give an empty prefix.
pub fn prefix_from_name(name: &str) -> String {
    let mut out = String::with_capacity(MAX_PREFIX_LEN);
    let mut ascii = [0u8; 4];
    for ch in name.chars() {
        let folded = if ch.is_ascii() {
            ch.encode_utf8(&mut ascii)
        } else {
            fold_latin(ch)
        };
        for letter in folded.chars().filter(char::is_ascii_alphabetic) {
            if out.len() == MAX_PREFIX_LEN {
                return out;
            }
            out.push(letter.to_ascii_uppercase());
        }
    }
    out
}

/// Folds the Latin-1 and Latin Extended-A letters partner names use into ASCII letters;
/// anything else folds to nothing.
fn fold_latin(ch: char) -> &'static str {
    const TABLE: &[(&str, &str)] = &[
        ("ÀÁÂÃÄÅàáâãäåĀāĂăĄą", "A"),
        ("ÇçĆćĈĉĊċČč", "C"),
        ("ĎďĐđÐð", "D"),
        ("ÈÉÊËèéêëĒēĔĕĖėĘęĚě", "E"),
        ("ĜĝĞğĠġĢģ", "G"),
        ("ĤĥĦħ", "H"),
        ("ÌÍÎÏìíîïĨĩĪīĬĭĮįİı", "I"),
        ("Ĵĵ", "J"),
        ("Ķķ", "K"),
        ("ĹĺĻļĽľĿŀŁł", "L"),
        ("ÑñŃńŅņŇň", "N"),
        ("ÒÓÔÕÖØòóôõöøŌōŎŏŐő", "O"),
        ("ŔŕŖŗŘř", "R"),
        ("ŚśŜŝŞşŠš", "S"),
        ("ŢţŤťŦŧ", "T"),
        ("ÙÚÛÜùúûüŨũŪūŬŭŮůŰűŲų", "U"),
        ("Ŵŵ", "W"),
        ("ÝýÿŶŷŸ", "Y"),
        ("ŹźŻżŽž", "Z"),
        ("Ææ", "AE"),
        ("Œœ", "OE"),
        ("ß", "SS"),
        ("Þþ", "TH"),
    ];
    TABLE
        .iter()
        .find(|(from, _)| from.contains(ch))
        .map_or("", |(_, to)| to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_codes_look_right() {
        let c = ReferralCode::generate("Iron Gym", 0x01AB_CDEF);
        assert!(c.as_str().starts_with("IRONGYM-"), "{c}");
        assert_eq!(c.as_str().len(), "IRONGYM-".len() + BODY_LEN);
        assert_eq!(c.prefix(), "IRONGYM");
        assert_eq!(ReferralCode::parse(c.as_str()), Ok(c.clone()));
    }

    #[test]
    fn prefixes_fold_names() {
        assert_eq!(prefix_from_name("Café Zürich & Co."), "CAFEZURI");
        assert_eq!(prefix_from_name("Łódź Książki"), "LODZKSIA");
        assert_eq!(prefix_from_name("Straße 5"), "STRASSE");
        assert_eq!(prefix_from_name("東京ジム"), "");
        assert_eq!(prefix_from_name(""), "");
        let c = ReferralCode::generate("東京ジム", 7);
        assert_eq!(c.prefix(), "");
        assert_eq!(c.as_str().len(), BODY_LEN);
        assert!(ReferralCode::parse(c.as_str()).is_ok());
    }

    #[test]
    fn reading_is_forgiving_about_case_separators_and_aliases() {
        let c = ReferralCode::generate("Iron Gym", 0);
        // body of random 0 is "00000" + check: O and o read as 0
        let body = &c.as_str()["IRONGYM-".len()..];
        assert!(body.starts_with("00000"));
        let typed = format!("irongym {}", body.replace('0', "o").to_lowercase());
        assert_eq!(ReferralCode::parse(&typed), Ok(c.clone()));
        let no_dash = c.as_str().replace('-', "");
        assert_eq!(ReferralCode::parse(&no_dash), Ok(c));
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(ReferralCode::parse(" - "), Err(CodeError::Empty));
        assert!(matches!(
            ReferralCode::parse("AB1"),
            Err(CodeError::TooShort { .. })
        ));
        assert!(matches!(
            ReferralCode::parse("ABCDEFGHIJ-00000"),
            Err(CodeError::TooLong { .. })
        ));
        assert!(matches!(
            ReferralCode::parse("IRON1-7K2M9Q"),
            Err(CodeError::BadCharacter { ch: '1', .. })
        ));
        assert!(matches!(
            ReferralCode::parse("IRONGYM-7K2U9Q"),
            Err(CodeError::BadCharacter { ch: 'U', .. })
        ));
        assert!(matches!(
            ReferralCode::parse("GYM-7K2M9Ü"),
            Err(CodeError::BadCharacter { ch: 'Ü', .. })
        ));
        let msg = ReferralCode::parse("x").unwrap_err().to_string();
        assert!(
            msg.contains("too short") && msg.contains("IRONGYM-7K2M9Q"),
            "{msg}"
        );
    }

    fn name_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            "[A-Za-z ]{0,20}",
            Just("Café Zürich & Co.".to_owned()),
            Just("Łódź Książki".to_owned()),
            "\\PC{0,12}",
        ]
    }

    proptest! {
        #[test]
        fn every_generated_code_validates(name in name_strategy(), r in any::<u32>()) {
            let c = ReferralCode::generate(&name, r);
            prop_assert_eq!(ReferralCode::parse(c.as_str()), Ok(c.clone()));
            prop_assert_eq!(ReferralCode::parse(&c.as_str().to_lowercase()), Ok(c));
        }

        #[test]
        fn every_single_character_typo_is_detected(
            name in name_strategy(), r in any::<u32>(), pos in any::<prop::sample::Index>(),
            replacement in any::<prop::sample::Index>(),
        ) {
            let c = ReferralCode::generate(&name, r);
            let mut chars: Vec<char> = c.as_str().chars().collect();
            let positions: Vec<usize> = (0..chars.len()).filter(|&i| chars[i] != '-').collect();
            let i = positions[pos.index(positions.len())];
            let is_body = i + BODY_LEN >= chars.len();
            // A typo is another symbol that can stand in that position (an alias of the
            // same value, like O for 0, is not a typo).
            let pool: Vec<char> = if is_body {
                ALPHABET.iter().map(|&b| char::from(b)).filter(|&ch| ch != chars[i]).collect()
            } else {
                ('A'..='Z').filter(|&ch| ch != chars[i]).collect()
            };
            chars[i] = pool[replacement.index(pool.len())];
            let typo: String = chars.into_iter().collect();
            prop_assert!(
                matches!(ReferralCode::parse(&typo), Err(CodeError::CheckFailed { .. })),
                "typo {} of {} was accepted", typo, c
            );
        }

        #[test]
        fn every_adjacent_swap_is_detected(name in name_strategy(), r in any::<u32>(), pos in any::<prop::sample::Index>()) {
            let c = ReferralCode::generate(&name, r);
            let body_start = c.as_str().len() - BODY_LEN;
            let mut chars: Vec<char> = c.as_str().chars().collect();
            let i = body_start + pos.index(BODY_LEN - 1);
            prop_assume!(chars[i] != chars[i + 1]);
            chars.swap(i, i + 1);
            let swapped: String = chars.into_iter().collect();
            prop_assert!(ReferralCode::parse(&swapped).is_err(), "swap {} of {} accepted", swapped, c);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = ReferralCode::parse(&s);
        }
    }
}
