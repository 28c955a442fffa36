//! The partners a batch is for, from a CSV file (offline work).
//!
//! CSV format: a header row naming the columns, then one partner per row.
//!
//! | column | required | meaning |
//! |---|---|---|
//! | `name` | yes | the partner's name as printed on the card (any script; 1 to 200 characters, no control characters) |
//! | `code` | yes | its referral code, e.g. `IRONGYM-7K2M9Q` (checked: a typo is caught) |
//! | `kind` | no | `business`, `influencer` or `customer` (default `business`) |
//!
//! Columns may come in any order; unknown columns are ignored. A bad row is reported
//! with its line number and skipped (a row of only commas too); the other rows are still used.

use std::path::Path;

use serde::Serialize;
use tapkit_core::code::ReferralCode;

/// One card holder to provision a card for: a partner or (with `--members`) a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partner {
    /// Name as printed (a member card: the first name and the plan).
    pub name: String,
    /// What the card's URL names.
    pub code: CardCode,
    /// Affiliate kind (a member card: `member`).
    pub kind: String,
    /// The affiliate's id on the server, when the list came from the server (cards are
    /// registered to it after a verified write).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affiliate_id: Option<i64>,
    /// The member's id on the server, for a member card (bound to the member after a
    /// verified write).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_id: Option<i64>,
}

impl Partner {
    /// The URL on the card: `https://{domain}/r/{code}` (a partner) or
    /// `https://{domain}/m/{code}` (a member).
    pub fn url(&self, domain: &str) -> String {
        format!("https://{domain}/{}/{}", self.code.route(), self.code)
    }
}

/// What a card's URL names: a partner's referral code (`/r/{code}`) or a member's page
/// code (`/m/{code}`, 12 hex digits given by the server).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum CardCode {
    /// A partner's referral code.
    Referral(ReferralCode),
    /// A member's page code.
    Member(MemberCode),
}

impl CardCode {
    /// The code as written in the URL.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Referral(c) => c.as_str(),
            Self::Member(c) => &c.0,
        }
    }

    /// The URL's route: `r` or `m`.
    pub fn route(&self) -> &'static str {
        match self {
            Self::Referral(_) => "r",
            Self::Member(_) => "m",
        }
    }

    /// Reads the code out of a card URL `https://…/r/CODE…` or `https://…/m/CODE…`.
    pub fn from_url(url: &str) -> Option<Self> {
        let tail = |route: &str| {
            url.split(route)
                .nth(1)
                .and_then(|r| r.split(['?', '&', '#']).next())
        };
        if let Some(c) = tail("/r/") {
            return ReferralCode::parse(c).ok().map(Self::Referral);
        }
        MemberCode::parse(tail("/m/")?).ok().map(Self::Member)
    }
}

impl std::fmt::Display for CardCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<ReferralCode> for CardCode {
    fn from(c: ReferralCode) -> Self {
        Self::Referral(c)
    }
}

/// A member's page code as the server gives it: 1 to 64 ASCII letters and digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct MemberCode(String);

impl MemberCode {
    /// Checks a member code.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > 64 || !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(format!(
                "{s:?} is not a member code (1 to 64 letters and digits, as the server lists them)"
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

/// A CSV row that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// 1-based line number in the file.
    pub line: u64,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// The usable partners and the rows that were not.
#[derive(Debug, Clone, Default)]
pub struct PartnerList {
    /// Good rows, in file order.
    pub partners: Vec<Partner>,
    /// Bad rows.
    pub errors: Vec<RowError>,
}

/// Why the file as a whole cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CsvError {
    /// Cannot open or read it.
    #[error("cannot read the partner list {path}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// No header row with the needed columns.
    #[error(
        "{path} needs a header row with the columns name,code (and optionally kind); found {found:?}"
    )]
    Header {
        /// The file.
        path: String,
        /// The header found.
        found: Vec<String>,
    },
}

/// The longest partner name, in characters: the server's limit, so a name that loads
/// here is also one the server takes.
pub const MAX_NAME_CHARS: usize = 200;

/// Checks a partner name as it would be printed and registered: 1 to
/// [`MAX_NAME_CHARS`] characters, no control characters (a NUL, a tab or a line break
/// cannot be printed on a card, and the server refuses them).
pub fn check_name(name: &str) -> Result<(), String> {
    let n = name.chars().count();
    if n == 0 {
        return Err("the name is empty; fill it in".into());
    }
    if n > MAX_NAME_CHARS {
        return Err(format!(
            "the name {} is {n} characters long; a card name has at most {MAX_NAME_CHARS}",
            shown(name)
        ));
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(format!(
            "the name {} contains the control character U+{:04X}, which cannot be printed; remove it",
            shown(name),
            u32::from(c)
        ));
    }
    Ok(())
}

/// A value as an error message quotes it: at most 40 characters, control characters
/// escaped, so a hostile cell cannot flood the terminal or the journal.
fn shown(v: &str) -> String {
    let head: String = v.chars().take(40).collect();
    if head.len() < v.len() {
        format!("{head:?}…")
    } else {
        format!("{head:?}")
    }
}

/// Reads partners from a CSV file.
pub fn read_csv(path: &Path) -> Result<PartnerList, CsvError> {
    let file = std::fs::File::open(path).map_err(|source| CsvError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse_csv(std::io::BufReader::new(file), &path.display().to_string())
}

/// Reads partners from CSV text (for tests and stdin).
pub fn parse_csv(input: impl std::io::Read, label: &str) -> Result<PartnerList, CsvError> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let header_err = |found: Vec<String>| CsvError::Header {
        path: label.to_owned(),
        found,
    };
    let headers: Vec<String> = match rdr.headers() {
        Ok(h) => h
            .iter()
            .map(|s| s.trim_start_matches('\u{feff}').to_ascii_lowercase())
            .collect(),
        Err(_) => return Err(header_err(Vec::new())),
    };
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (Some(name_col), Some(code_col)) = (col("name"), col("code")) else {
        return Err(header_err(headers));
    };
    let kind_col = col("kind");
    let mut out = PartnerList::default();
    let mut seen = std::collections::HashMap::new();
    for (i, rec) in rdr.records().enumerate() {
        let fallback_line = i as u64 + 2;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(fallback_line, |p| p.line());
                out.errors.push(RowError {
                    line,
                    message: format!("not valid CSV ({e}); check its quotes"),
                });
                continue;
            }
        };
        let line = rec.position().map_or(fallback_line, |p| p.line());
        let field = |c: usize| rec.get(c).unwrap_or("").to_owned();
        let name = field(name_col);
        let code = field(code_col);
        if rec.iter().all(str::is_empty) {
            // (The CSV reader passes over lines that are truly empty; this one has commas
            // or spaces, so it is reported like any row that is not used.)
            out.errors.push(RowError {
                line,
                message: "the row has no values, only commas or spaces; delete it or fill in name and code".into(),
            });
            continue;
        }
        if let Err(message) = check_name(&name) {
            out.errors.push(RowError { line, message });
            continue;
        }
        let code = match ReferralCode::parse(&code) {
            Ok(c) => c,
            Err(e) => {
                out.errors.push(RowError {
                    line,
                    message: format!("{e} (partner {})", shown(&name)),
                });
                continue;
            }
        };
        let kind = kind_col
            .map(field)
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| "business".into());
        if !matches!(kind.as_str(), "business" | "influencer" | "customer") {
            out.errors.push(RowError {
                line,
                message: format!(
                    "kind {:?} is not business, influencer or customer (partner {})",
                    shown(&kind),
                    shown(&name)
                ),
            });
            continue;
        }
        if let Some(first) = seen.insert(code.clone(), line) {
            out.errors.push(RowError {
                line,
                message: format!(
                    "code {code} is already used on line {first}; each partner needs its own code"
                ),
            });
            continue;
        }
        out.partners.push(Partner {
            name,
            code: code.into(),
            kind,
            affiliate_id: None,
            member_id: None,
        });
    }
    Ok(out)
}

/// Checks a brand domain given on the command line: a host name, no scheme or path.
pub fn check_domain(domain: &str) -> Result<(), String> {
    let ok = !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
        })
        && domain.contains('.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{domain:?} is not a domain name; give just the host, like book.example.com (no https://, no path)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(name: &str, r: u32) -> String {
        ReferralCode::generate(name, r).to_string()
    }

    #[test]
    fn good_and_bad_rows() {
        let a = code("Iron Gym", 1);
        let b = code("Café Zürich", 2);
        let csv = format!(
            "name,code,kind\nIron Gym,{a},business\n\"Café Zürich & Co.\",{b},influencer\n,{a},\nTypo,IRONGYM-7K2M9X,\nDup,{a},\nOdd,{},robot\n\n",
            code("Odd", 3)
        );
        let l = parse_csv(csv.as_bytes(), "t.csv").unwrap();
        assert_eq!(l.partners.len(), 2);
        assert_eq!(l.partners[1].name, "Café Zürich & Co.");
        assert_eq!(l.partners[1].kind, "influencer");
        let lines: Vec<u64> = l.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![4, 5, 6, 7]);
        assert!(l.errors[0].message.contains("name is empty"));
        assert!(l.errors[1].message.contains("does not check out"));
        assert!(l.errors[2].message.contains("already used on line 2"));
        assert!(l.errors[3].message.contains("robot"));
        assert_eq!(
            l.partners[0].url("book.example.com"),
            format!("https://book.example.com/r/{a}")
        );
    }

    #[test]
    fn every_unused_row_is_reported_and_names_are_bounded() {
        let a = code("Iron Gym", 1);
        let (b, c, d) = (code("Huge", 2), code("Nul", 3), code("Ok", 4));
        let huge = "x".repeat(2_000_000);
        let csv = format!(
            "name,code\n,\n  ,  \n{huge},{b}\n\"Nul\0Gym\",{c}\n{},{d}\n\nIron Gym,{a}\n",
            "é".repeat(MAX_NAME_CHARS)
        );
        let l = parse_csv(csv.as_bytes(), "t.csv").unwrap();
        let lines: Vec<u64> = l.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5], "{:?}", l.errors);
        assert!(l.errors[0].message.contains("no values"), "{}", l.errors[0]);
        assert!(l.errors[1].message.contains("no values"), "{}", l.errors[1]);
        // The 2 MB name is refused, and the message quotes 40 characters of it.
        assert!(
            l.errors[2].message.contains("2000000 characters"),
            "{}",
            l.errors[2]
        );
        assert!(
            l.errors[2].message.len() < 200,
            "{}",
            l.errors[2].message.len()
        );
        assert!(l.errors[3].message.contains("U+0000"), "{}", l.errors[3]);
        assert!(!l.errors[3].message.contains('\0'));
        // 200 characters (400 bytes) is the limit, not over it.
        let names: Vec<usize> = l.partners.iter().map(|p| p.name.chars().count()).collect();
        assert_eq!(names, vec![MAX_NAME_CHARS, 8]);
    }

    #[test]
    fn header_is_required_and_columns_may_move() {
        let err = parse_csv("Iron Gym,X\n".as_bytes(), "t.csv").unwrap_err();
        assert!(
            err.to_string()
                .contains("needs a header row with the columns name,code"),
            "{err}"
        );
        let a = code("Glow", 9);
        let l = parse_csv(format!("\u{feff}Code,Name\n{a},Glow\n").as_bytes(), "t.csv").unwrap();
        assert_eq!(l.partners[0].name, "Glow");
        assert_eq!(l.partners[0].kind, "business");
    }

    #[test]
    fn domains() {
        assert!(check_domain("book.example.com").is_ok());
        assert!(
            check_domain("https://book.example.com")
                .unwrap_err()
                .contains("no https://")
        );
        assert!(check_domain("book.example.com/r").is_err());
        assert!(check_domain("localhost").is_err());
    }
}
