//! UTC calendar dates without a date crate: days since 1970-01-01 to and from
//! `YYYY-MM-DD` (H. Hinnant's civil-date algorithms, exact over the proleptic Gregorian
//! calendar), and RFC 3339 timestamps.

/// (year, month 1–12, day 1–31) of a day number (days since 1970-01-01).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    // d is 1..=31 and m 1..=12 by construction.
    (y, m as u32, d as u32)
}

/// The day number of a civil date (no range check: see [`parse_date`]).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD` of a day number.
pub fn format_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Parses `YYYY-MM-DD` (a real date between 1970 and 9999) into a day number.
pub fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    // Digits only: `str::parse` would also take a sign (`2026-+1-05`).
    let num = |r: std::ops::Range<usize>| {
        let d = s.get(r)?;
        d.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| d.parse::<u32>().ok())?
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || d == 0 {
        return None;
    }
    let days = days_from_civil(i64::from(y), m, d);
    // Rejects 2026-02-30 and the like: the round trip must give the same date.
    (civil_from_days(days) == (i64::from(y), m, d)).then_some(days)
}

/// RFC 3339 UTC of seconds since the epoch, e.g. `2026-11-21T10:54:03Z`.
pub fn rfc3339(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        format_date(days),
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parses an RFC 3339 timestamp (`2026-11-21T10:54:03Z`, `…03.250+01:00`; `t` and
/// `z` in lower case too) into Unix milliseconds. Fractions beyond milliseconds are
/// truncated; leap seconds are refused.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    if !s.is_ascii() || s.len() < 20 || s.len() > 40 {
        return None;
    }
    let (date, rest) = s.split_at(10);
    let days = parse_date(date)?;
    let rest = rest.strip_prefix(['T', 't'])?;
    let b = rest.as_bytes();
    if b.len() < 9 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let two = |i: usize| -> Option<i64> {
        let d = rest.get(i..i + 2)?;
        d.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| d.parse().ok())?
    };
    let (h, mi, sec) = (two(0)?, two(3)?, two(6)?);
    if h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let mut rest = &rest[8..];
    let mut ms = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        let digits = &frac[..n];
        ms = digits
            .bytes()
            .chain(std::iter::repeat(b'0'))
            .take(3)
            .fold(0i64, |a, c| a * 10 + i64::from(c - b'0'));
        rest = &frac[n..];
    }
    let offset_min = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let (oh, om) = (two_at(rest, 1)?, two_at(rest, 4)?);
            if oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 60 + om)
        }
    };
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec) - offset_min * 60) * 1000 + ms)
}

fn two_at(s: &str, i: usize) -> Option<i64> {
    let d = s.get(i..i + 2)?;
    d.bytes()
        .all(|c| c.is_ascii_digit())
        .then(|| d.parse().ok())?
}

/// `YYYY-MM` of Unix milliseconds (UTC).
pub fn month_of_ms(ms: i64) -> String {
    let (y, m, _) = civil_from_days(ms.div_euclid(86_400_000));
    format!("{y:04}-{m:02}")
}

/// Parses `YYYY-MM` (1970–9999) into the Unix milliseconds of its first instant and of
/// the next month's first instant.
pub fn parse_month(s: &str) -> Option<(i64, i64)> {
    let start = parse_date(&format!("{s}-01"))?;
    let (y, m, _) = civil_from_days(start);
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    Some((start * 86_400_000, days_from_civil(ny, nm, 1) * 86_400_000))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc3339_timestamps_parse_exactly() {
        assert_eq!(
            parse_rfc3339_ms("2026-11-21T10:54:03Z"),
            Some(1_795_258_443_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2026-11-21T11:54:03.25+01:00"),
            Some(1_795_258_443_250)
        );
        assert_eq!(
            parse_rfc3339_ms("2026-11-21t05:24:03.123456-05:30"),
            Some(1_795_258_443_123)
        );
        for bad in [
            "",
            "2026-11-21",
            "2026-11-21 10:54:03Z",
            "2026-11-21T10:54:03",
            "2026-11-21T24:00:00Z",
            "2026-11-21T10:54:60Z",
            "2026-11-21T10:54:03.Z",
            "2026-11-21T10:54:03+0100",
            "2026-02-30T10:54:03Z",
            "2026-11-21T1:54:03Z",
            "2026-11-21T+1:54:03Z",
            "２026-11-21T10:54:03Z",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad:?}");
        }
        assert_eq!(month_of_ms(1_795_258_443_000), "2026-11");
        assert_eq!(month_of_ms(-1), "1969-12");
        let (a, b) = parse_month("2026-12").unwrap_or_default();
        assert_eq!(
            (month_of_ms(a), month_of_ms(b), month_of_ms(b - 1)),
            ("2026-12".into(), "2027-01".into(), "2026-12".into())
        );
        assert_eq!(parse_month("2026-13"), None);
        assert_eq!(parse_month("2026-1"), None);
    }

    proptest! {
        #[test]
        fn rfc3339_parsing_never_panics(s in "\\PC{0,40}") {
            let _ = parse_rfc3339_ms(&s);
        }

        #[test]
        fn rfc3339_round_trips(secs in 0u64..253_402_300_799) {
            prop_assert_eq!(parse_rfc3339_ms(&rfc3339(secs)), Some(secs as i64 * 1000));
        }
    }

    #[test]
    fn known_dates() {
        assert_eq!(format_date(0), "1970-01-01");
        assert_eq!(rfc3339(1_795_258_443), "2026-11-21T10:54:03Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(parse_date("2026-11-21"), Some(1_795_258_443 / 86_400));
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "2026-1-01",
            "1969-12-31",
            "x",
            "2026-11-21T",
            "2026-+1-05",
            "2026-11-+5",
            "+026-11-05",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        assert_eq!(parse_month("2026-+1"), None);
        assert_eq!(parse_month("0000-00"), None);
    }

    proptest! {
        #[test]
        fn days_round_trip(days in 0i64..3_000_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert_eq!(days_from_civil(y, m, d), days);
            if y <= 9999 {
                prop_assert_eq!(parse_date(&format_date(days)), Some(days));
            }
        }
    }
}
