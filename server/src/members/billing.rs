//! Billing periods are calendar months (UTC). A member who joins mid-month pays the
//! days left; an upgrade mid-period pays the difference for the days left. The rounding,
//! stated once (and in `docs/memberships.md`):
//!
//! - "days left" on day `d` of a month of `n` days is `n − d + 1`: the day of the change
//!   is paid for;
//! - each charge is one exact fraction rounded once to the minor unit, halves up:
//!   the first charge is `round(price × days_left / n)`, an upgrade
//!   `max(0, round((new_price − old_price) × days_left / n))`. Daily prices are never
//!   rounded on their own, so a charge is never a cent off from its exact value by more
//!   than half a cent.

use tapkit_core::date::{civil_from_days, days_from_civil};

/// A calendar month, the billing period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    /// Year.
    pub year: i64,
    /// Month, 1–12.
    pub month: u32,
}

impl Period {
    /// The month that holds `day` (days since 1970-01-01).
    pub fn of_day(day: i64) -> Self {
        let (year, month, _) = civil_from_days(day);
        Self { year, month }
    }

    /// Its first day.
    pub fn first_day(self) -> i64 {
        days_from_civil(self.year, self.month, 1)
    }

    /// The month after.
    pub fn next(self) -> Self {
        if self.month == 12 {
            Self {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Self {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// How many days it has.
    pub fn days(self) -> i64 {
        self.next().first_day() - self.first_day()
    }

    /// Days from `day` to the month's end, `day` included (0 if `day` is past it, the
    /// whole month if before it).
    pub fn days_left(self, day: i64) -> i64 {
        (self.next().first_day() - day.max(self.first_day())).clamp(0, self.days())
    }

    /// Parses `YYYY-MM` (1970-01 to 9999-12).
    pub fn parse(s: &str) -> Option<Self> {
        let (y, m) = s.split_once('-')?;
        if y.len() != 4 || m.len() != 2 || !(y.bytes().chain(m.bytes())).all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let (year, month): (i64, u32) = (y.parse().ok()?, m.parse().ok()?);
        ((1970..=9999).contains(&year) && (1..=12).contains(&month)).then_some(Self { year, month })
    }
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// `num / den` rounded to the nearest integer, halves away from zero (`den` > 0).
fn div_round(num: i128, den: i128) -> i128 {
    let q = num.div_euclid(den);
    let r = num.rem_euclid(den);
    if 2 * r >= den { q + 1 } else { q }
}

/// The first charge of a member joining on `day` on a plan of `price_minor` a month.
pub fn first_charge(price_minor: i64, day: i64) -> i64 {
    let p = Period::of_day(day);
    prorated(i128::from(price_minor), p.days_left(day), p.days())
}

/// What an upgrade on `day` from a plan of `old_minor` to one of `new_minor` a month
/// charges now (0 for a downgrade, which waits for the next period).
pub fn upgrade_charge(old_minor: i64, new_minor: i64, day: i64) -> i64 {
    let p = Period::of_day(day);
    let diff = i128::from(new_minor) - i128::from(old_minor);
    prorated(diff, p.days_left(day), p.days()).max(0)
}

fn prorated(amount: i128, days_left: i64, days: i64) -> i64 {
    let v = div_round(amount * i128::from(days_left), i128::from(days.max(1)));
    // |v| ≤ |amount|, and amount came from i64 prices (or their difference, which the
    // plan check bounds to well inside i64).
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use tapkit_core::date::parse_date;

    use super::*;

    fn day(s: &str) -> i64 {
        parse_date(s).unwrap()
    }

    #[test]
    fn periods_are_calendar_months() {
        let p = Period::of_day(day("2026-02-14"));
        assert_eq!(p.to_string(), "2026-02");
        assert_eq!(p.days(), 28);
        assert_eq!(Period::of_day(day("2028-02-01")).days(), 29);
        assert_eq!(p.next().to_string(), "2026-03");
        assert_eq!(
            Period::parse("2026-12").unwrap().next().to_string(),
            "2027-01"
        );
        assert_eq!(p.days_left(day("2026-02-14")), 15);
        assert_eq!(p.days_left(day("2026-02-01")), 28);
        assert_eq!(p.days_left(day("2026-02-28")), 1);
        assert_eq!(p.days_left(day("2026-03-01")), 0);
        assert_eq!(p.days_left(day("2026-01-20")), 28);
        for bad in [
            "2026-13", "2026-00", "0000-00", "26-01", "2026-1", "2026/01", "+026-01",
        ] {
            assert_eq!(Period::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn charges_match_hand_computed_values() {
        // Plus ($49) joined on 16 November (30 days): 15 days left, 4900 × 15 / 30.
        assert_eq!(first_charge(4900, day("2026-11-16")), 2450);
        // Basic ($29) on 10 December (31 days): 22 days, 2900 × 22 / 31 = 2058.06.
        assert_eq!(first_charge(2900, day("2026-12-10")), 2058);
        // On the 1st: the whole month.
        assert_eq!(first_charge(7900, day("2027-01-01")), 7900);
        // On the last day of February: one day, 4900 / 28 = 175.
        assert_eq!(first_charge(4900, day("2027-02-28")), 175);
        // Plus → Premium on 21 November: 10 days left, (7900 − 4900) × 10 / 30 = 1000.
        assert_eq!(upgrade_charge(4900, 7900, day("2026-11-21")), 1000);
        // Basic → Plus on 5 December: 27 days, 2000 × 27 / 31 = 1741.94 → 1742.
        assert_eq!(upgrade_charge(2900, 4900, day("2026-12-05")), 1742);
        // A downgrade charges nothing now.
        assert_eq!(upgrade_charge(7900, 2900, day("2026-12-05")), 0);
        // Halves round up: 1 × 15 / 30 = 0.5 → 1.
        assert_eq!(first_charge(1, day("2026-11-16")), 1);
    }

    proptest! {
        #[test]
        fn a_charge_is_within_half_a_cent_of_its_exact_value(
            price in 1i64..1_000_000_000,
            d in 0i64..40_000,
        ) {
            let p = Period::of_day(d);
            let c = first_charge(price, d);
            let exact = price as f64 * p.days_left(d) as f64 / p.days() as f64;
            prop_assert!((c as f64 - exact).abs() <= 0.5 + 1e-6);
            prop_assert!((0..=price).contains(&c));
            // Joining later never costs more.
            prop_assert!(first_charge(price, d + 1) <= c || Period::of_day(d + 1) != p);
        }

        #[test]
        fn an_upgrade_never_charges_more_than_the_difference(
            old in 1i64..1_000_000_000,
            new in 1i64..1_000_000_000,
            d in 0i64..40_000,
        ) {
            let c = upgrade_charge(old, new, d);
            prop_assert!(c >= 0);
            prop_assert!(c <= (new - old).max(0));
        }
    }
}
