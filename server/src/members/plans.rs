//! The plans a program sells, as data (`[program.membership]`):
//!
//! ```toml
//! [program.membership]
//! retry_days = [3, 7, 14]   # days after a failed charge on which it is retried
//! grace_days = 7            # a past-due member may still check in this long
//! [[program.membership.plans]]
//! id = "basic"
//! name = "Basic"
//! price_minor = 2900        # per calendar month
//! visits = 2                # or "unlimited"
//! add_on_discount_bp = 1000 # 10 % off add-ons
//! priority = "standard"     # standard, high or instant
//! ```
//!
//! [`MembershipConfig::check`] refuses a config that cannot be billed, naming the key.

use std::collections::HashSet;

use serde::Deserialize;

/// How many visits a period includes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visits {
    /// This many each period.
    Limited(u32),
    /// No limit (nothing to roll over).
    Unlimited,
}

impl Visits {
    /// The most visits a limited plan may include in a month.
    pub const MAX: u32 = 1000;
}

impl<'de> Deserialize<'de> for Visits {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(i64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => u32::try_from(n)
                .ok()
                .filter(|n| *n <= Self::MAX)
                .map(Visits::Limited)
                .ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "visits must be a whole number from 0 to {} or \"unlimited\", not {n}",
                        Self::MAX
                    ))
                }),
            Raw::S(s) if s == "unlimited" => Ok(Visits::Unlimited),
            Raw::S(s) => Err(serde::de::Error::custom(format!(
                "visits must be a whole number or \"unlimited\", not {s:?}"
            ))),
        }
    }
}

/// How soon a member is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// The usual booking queue.
    Standard,
    /// Ahead of non-members.
    High,
    /// Served at once.
    Instant,
}

/// One plan.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Its id in the API and the database (`plus`): lower-case letters, digits and `-`.
    pub id: String,
    /// Its name as members see it.
    pub name: String,
    /// Price per calendar month, minor units.
    pub price_minor: i64,
    /// Visits included per month.
    pub visits: Visits,
    /// Discount on add-ons, basis points (1000 = 10 %).
    #[serde(default)]
    pub add_on_discount_bp: i64,
    /// Booking priority.
    #[serde(default = "standard")]
    pub priority: Priority,
}

fn standard() -> Priority {
    Priority::Standard
}

/// `[program.membership]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MembershipConfig {
    /// The plans, in the order the console lists them.
    pub plans: Vec<Plan>,
    /// Days after the first failed charge on which it is retried; after the last failed
    /// retry the member lapses.
    pub retry_days: Vec<u32>,
    /// Days after the first failed charge during which a past-due member may check in.
    pub grace_days: u32,
    /// The kiosks (ids) that may check members in; empty: every enrolled kiosk.
    pub checkin_kiosks: Vec<i64>,
}

impl Default for MembershipConfig {
    fn default() -> Self {
        Self {
            plans: Vec::new(),
            retry_days: vec![3, 7, 14],
            grace_days: 7,
            checkin_kiosks: Vec::new(),
        }
    }
}

/// The longest dunning sequence, days.
pub const MAX_RETRY_DAY: u32 = 60;

impl MembershipConfig {
    /// The plan with this id.
    pub fn plan(&self, id: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.id == id)
    }

    /// Checks what serde cannot: ids, names, prices within `max_amount_minor` (the
    /// program's largest amount), discounts, and a retry schedule that ends.
    pub fn check(&self, max_amount_minor: i64) -> Result<(), String> {
        let mut seen = HashSet::new();
        for (i, p) in self.plans.iter().enumerate() {
            let at = format!("program.membership.plans[{i}]");
            let id_ok = (1..=32).contains(&p.id.len())
                && p.id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !id_ok {
                return Err(format!(
                    "{at}.id {:?}: use 1 to 32 lower-case letters, digits or '-' (e.g. \"plus\")",
                    p.id
                ));
            }
            if !seen.insert(p.id.as_str()) {
                return Err(format!("{at}.id {:?} is used by two plans", p.id));
            }
            let chars = p.name.chars().count();
            if !(1..=100).contains(&chars) || p.name.chars().any(char::is_control) {
                return Err(format!(
                    "{at}.name: 1 to 100 characters without control characters"
                ));
            }
            if !(1..=max_amount_minor).contains(&p.price_minor) {
                return Err(format!(
                    "{at}.price_minor {}: a price from 1 to {max_amount_minor} minor units (program.commission.max_amount_minor)",
                    p.price_minor
                ));
            }
            if !(0..=10_000).contains(&p.add_on_discount_bp) {
                return Err(format!(
                    "{at}.add_on_discount_bp {}: basis points from 0 to 10000 (1000 = 10 %)",
                    p.add_on_discount_bp
                ));
            }
        }
        let rising = self.retry_days.windows(2).all(|w| w[0] < w[1]);
        let in_range = self
            .retry_days
            .iter()
            .all(|d| (1..=MAX_RETRY_DAY).contains(d));
        if self.retry_days.is_empty() || !rising || !in_range {
            return Err(format!(
                "program.membership.retry_days {:?}: rising days from 1 to {MAX_RETRY_DAY} after the first failure, e.g. [3, 7, 14]",
                self.retry_days
            ));
        }
        let last = self.retry_days.last().copied().unwrap_or(0);
        if self.grace_days > last {
            return Err(format!(
                "program.membership.grace_days {}: at most the last retry day ({last}); a lapsed member cannot check in",
                self.grace_days
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<MembershipConfig, String> {
        let c: MembershipConfig = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        c.check(1_000_000_000)?;
        Ok(c)
    }

    const THREE: &str = r#"
        [[plans]]
        id = "basic"
        name = "Basic"
        price_minor = 2900
        visits = 2
        add_on_discount_bp = 1000
        [[plans]]
        id = "plus"
        name = "Plus"
        price_minor = 4900
        visits = 4
        add_on_discount_bp = 1500
        priority = "high"
        [[plans]]
        id = "premium"
        name = "Premium"
        price_minor = 7900
        visits = "unlimited"
        add_on_discount_bp = 2000
        priority = "instant"
    "#;

    #[test]
    fn the_three_sample_plans_parse() {
        let c = parse(THREE).unwrap();
        assert_eq!(c.plans.len(), 3);
        assert_eq!(c.plan("plus").unwrap().visits, Visits::Limited(4));
        assert_eq!(c.plan("premium").unwrap().visits, Visits::Unlimited);
        assert_eq!(c.plan("premium").unwrap().priority, Priority::Instant);
        assert_eq!(c.plan("basic").unwrap().priority, Priority::Standard);
        assert_eq!(c.retry_days, [3, 7, 14]);
        assert!(c.plan("gold").is_none());
    }

    #[test]
    fn bad_plans_are_refused_naming_the_key() {
        let plan = |extra: &str| {
            format!("[[plans]]\nid = \"basic\"\nname = \"Basic\"\nprice_minor = 2900\n{extra}")
        };
        for (body, says) in [
            (
                plan("visits = -1"),
                "visits must be a whole number from 0 to 1000",
            ),
            (
                plan("visits = 1001"),
                "visits must be a whole number from 0 to 1000",
            ),
            (plan("visits = \"lots\""), "not \"lots\""),
            (
                plan("visits = 2\nadd_on_discount_bp = 10001"),
                "add_on_discount_bp 10001",
            ),
            (plan("visits = 2\npriority = \"vip\""), "unknown variant"),
            (plan("visits = 2\ncolour = 1"), "unknown field"),
            (
                plan("visits = 2").replace("2900", "0"),
                "plans[0].price_minor 0",
            ),
            (
                plan("visits = 2").replace("2900", "1000000001"),
                "max_amount_minor",
            ),
            (
                plan("visits = 2").replace("\"basic\"", "\"Basic!\""),
                "plans[0].id",
            ),
            (
                format!("{}\n{}", plan("visits = 2"), plan("visits = 3")),
                "used by two plans",
            ),
            (
                plan("visits = 2").replace("\"Basic\"", "\"\""),
                "plans[0].name",
            ),
            (
                format!("retry_days = []\n{}", plan("visits = 2")),
                "retry_days []",
            ),
            (
                format!("retry_days = [7, 3]\n{}", plan("visits = 2")),
                "rising days",
            ),
            (
                format!("retry_days = [3, 61]\n{}", plan("visits = 2")),
                "from 1 to 60",
            ),
            (
                format!("grace_days = 15\n{}", plan("visits = 2")),
                "grace_days 15",
            ),
        ] {
            let err = parse(&body).expect_err(&body);
            assert!(err.contains(says), "{body}\n→ {err}\n(wanted {says:?})");
        }
    }

    #[test]
    fn no_section_means_no_plans_and_the_default_schedule() {
        let c = parse("").unwrap();
        assert!(c.plans.is_empty());
        assert_eq!(
            (c.retry_days.as_slice(), c.grace_days),
            (&[3, 7, 14][..], 7)
        );
    }
}
