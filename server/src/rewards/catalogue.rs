//! `[program.rewards]`: what each reward is worth at the brand's checkout, how long it
//! lasts, and the first-visit offer a referred friend gets. Pure: the settings, their
//! checks, and the arithmetic of one redemption.
//!
//! ```toml
//! [program.rewards]
//! expires_days = 180                      # an issued reward lasts this long
//! friend_offer = { percent_bp = 1500, days = 30 }   # 15 % off a friend's first visit
//!
//! [program.rewards.vouchers]
//! 10pct-off-next-service = { percent_bp = 1000, applies_to = "your next service" }
//! free-basic-service = { free = true, cap_minor = 6000, applies_to = "a basic service" }
//! ```
//!
//! With the section present, a commission in credit or vouchers is issued to the
//! referrer as a reward the moment it is earned, instead of waiting for month close.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::money::rules::{Commission, UnitKind};
use crate::store::vocab::RewardKind;

fn default_expires_days() -> u32 {
    180
}

fn default_offer_days() -> u32 {
    30
}

fn default_offer_kinds() -> Vec<String> {
    vec!["customer".into()]
}

fn default_offer_applies_to() -> String {
    "your first visit".into()
}

/// `[program.rewards]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardsConfig {
    /// Days an issued reward can be redeemed (1 to 3650).
    #[serde(default = "default_expires_days")]
    pub expires_days: u32,
    /// What each voucher a rule gives is worth, by its name.
    #[serde(default)]
    pub vouchers: BTreeMap<String, Worth>,
    /// The friend's first-visit offer; none: friends get no offer.
    pub friend_offer: Option<FriendOffer>,
}

/// What one voucher is worth: exactly one of `percent_bp`, `fixed_minor`, `free`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Worth {
    /// A percentage of the booking, in basis points (1500 = 15 %).
    pub percent_bp: Option<i64>,
    /// A fixed amount off, in minor units.
    pub fixed_minor: Option<i64>,
    /// The service for free.
    #[serde(default)]
    pub free: bool,
    /// The most it takes off, in minor units.
    pub cap_minor: Option<i64>,
    /// What it is for, as the checkout shows it ("a basic service").
    pub applies_to: String,
}

/// `friend_offer`: what a friend who arrives through a referral link gets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FriendOffer {
    /// A percentage off, in basis points.
    pub percent_bp: Option<i64>,
    /// A fixed amount off, in minor units.
    pub fixed_minor: Option<i64>,
    /// The most a percentage takes off.
    pub cap_minor: Option<i64>,
    /// What it is for.
    #[serde(default = "default_offer_applies_to")]
    pub applies_to: String,
    /// Days after the friend's tap it can be used.
    #[serde(default = "default_offer_days")]
    pub days: u32,
    /// The affiliate kinds whose links carry it (default: customers' links).
    #[serde(default = "default_offer_kinds")]
    pub for_kinds: Vec<String>,
}

/// The terms of one reward, as stored on its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    /// How it is worth something.
    pub kind: RewardKind,
    /// Credit: the amount issued; fixed: the amount off.
    pub value_minor: Option<i64>,
    /// Percent: basis points.
    pub percent_bp: Option<i64>,
    /// The most it takes off one booking.
    pub cap_minor: Option<i64>,
    /// What it is for.
    pub applies_to: String,
}

impl Worth {
    fn terms(&self) -> Terms {
        let kind = if self.free {
            RewardKind::Free
        } else if self.percent_bp.is_some() {
            RewardKind::Percent
        } else {
            RewardKind::Fixed
        };
        Terms {
            kind,
            value_minor: self.fixed_minor,
            percent_bp: self.percent_bp,
            cap_minor: self.cap_minor,
            applies_to: self.applies_to.clone(),
        }
    }
}

impl FriendOffer {
    /// The offer's terms.
    pub fn terms(&self) -> Terms {
        Terms {
            kind: if self.percent_bp.is_some() {
                RewardKind::Percent
            } else {
                RewardKind::Fixed
            },
            value_minor: self.fixed_minor,
            percent_bp: self.percent_bp,
            cap_minor: self.cap_minor,
            applies_to: self.applies_to.clone(),
        }
    }
}

/// The ledger unit of friends' offers (counted in whole offers).
pub const FRIEND_OFFER_UNIT: &str = "voucher:friend-offer";

impl RewardsConfig {
    /// The terms of a reward in `unit` (`credit:USD` for `amount` minor units, or
    /// `voucher:<name>`); none for cash, which month close pays.
    pub fn terms(&self, unit: &str, amount: i64) -> Option<Terms> {
        if unit.starts_with("credit:") {
            return Some(Terms {
                kind: RewardKind::Credit,
                value_minor: Some(amount),
                percent_bp: None,
                cap_minor: None,
                applies_to: "any booking".into(),
            });
        }
        let name = unit.strip_prefix("voucher:")?;
        self.vouchers.get(name).map(Worth::terms)
    }

    /// Checks the section against the program's commission rules (the message names
    /// the setting and how to fix it).
    pub fn validate(&self, commission: &Commission) -> Result<(), String> {
        let max = commission.max_amount_minor;
        if !(1..=3650).contains(&self.expires_days) {
            return Err(format!(
                "rewards.expires_days is {}; use 1 to 3650 days",
                self.expires_days
            ));
        }
        for (name, w) in &self.vouchers {
            let at = format!("rewards.vouchers.{name}");
            let set = [w.percent_bp.is_some(), w.fixed_minor.is_some(), w.free];
            if set.iter().filter(|x| **x).count() != 1 {
                return Err(format!(
                    "{at} must set exactly one of percent_bp, fixed_minor or free = true"
                ));
            }
            check_worth(&at, w.percent_bp, w.fixed_minor, w.cap_minor, max)?;
            check_label(&at, &w.applies_to)?;
        }
        for rule in &commission.rules {
            for r in &rule.rewards {
                if r.unit != UnitKind::Voucher {
                    continue;
                }
                let name = r.voucher.as_deref().unwrap_or_default();
                if !self.vouchers.contains_key(name) {
                    let rule = rule.name.as_deref().unwrap_or("a rule");
                    return Err(format!(
                        "rewards.vouchers has no entry for the voucher {name:?} that {rule:?} gives; add [program.rewards.vouchers] {name} = {{ percent_bp = …, applies_to = \"…\" }} (or fixed_minor, or free = true)"
                    ));
                }
            }
        }
        if let Some(f) = &self.friend_offer {
            let at = "rewards.friend_offer";
            if f.percent_bp.is_some() == f.fixed_minor.is_some() {
                return Err(format!(
                    "{at} must set exactly one of percent_bp or fixed_minor"
                ));
            }
            check_worth(at, f.percent_bp, f.fixed_minor, f.cap_minor, max)?;
            check_label(at, &f.applies_to)?;
            if !(1..=365).contains(&f.days) {
                return Err(format!("{at}.days is {}; use 1 to 365 days", f.days));
            }
            for k in &f.for_kinds {
                if !["business", "influencer", "customer"].contains(&k.as_str()) {
                    return Err(format!(
                        "{at}.for_kinds has {k:?}; use business, influencer or customer"
                    ));
                }
            }
        }
        Ok(())
    }
}

fn check_worth(
    at: &str,
    percent_bp: Option<i64>,
    fixed_minor: Option<i64>,
    cap_minor: Option<i64>,
    max: i64,
) -> Result<(), String> {
    if let Some(bp) = percent_bp
        && !(1..=10_000).contains(&bp)
    {
        return Err(format!(
            "{at}.percent_bp is {bp}; use 1 to 10000 basis points (1500 = 15 %)"
        ));
    }
    for (name, v) in [("fixed_minor", fixed_minor), ("cap_minor", cap_minor)] {
        if let Some(v) = v
            && !(1..=max).contains(&v)
        {
            return Err(format!(
                "{at}.{name} is {v}; use 1 to {max} minor units (commission.max_amount_minor)"
            ));
        }
    }
    Ok(())
}

fn check_label(at: &str, s: &str) -> Result<(), String> {
    let n = s.chars().count();
    if n == 0 || n > 100 || s.chars().any(char::is_control) || s.trim().is_empty() {
        return Err(format!(
            "{at}.applies_to must be 1 to 100 characters without control characters (what the checkout shows, e.g. \"a basic service\")"
        ));
    }
    Ok(())
}

/// Why a reward takes nothing off a booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nothing {
    /// Its balance is spent (a voucher used, a credit at zero).
    Spent,
    /// A percentage of this amount rounds to zero.
    TooSmall,
}

/// What redeeming a reward with `balance` left on a booking of `amount_minor` takes off
/// (`discount`, in minor units) and from its balance (`units`: minor units of credit,
/// or one voucher).
pub fn redeem(t: &Terms, balance: i64, amount_minor: i64) -> Result<(i64, i64), Nothing> {
    if balance <= 0 {
        return Err(Nothing::Spent);
    }
    let cap = |d: i64| t.cap_minor.map_or(d, |c| d.min(c));
    let discount = match t.kind {
        RewardKind::Credit => return Ok((balance.min(amount_minor), balance.min(amount_minor))),
        RewardKind::Fixed => t.value_minor.unwrap_or(0).min(amount_minor),
        RewardKind::Percent => {
            let bp = i128::from(t.percent_bp.unwrap_or(0));
            let d = i128::from(amount_minor) * bp / 10_000;
            cap(i64::try_from(d).unwrap_or(i64::MAX)).min(amount_minor)
        }
        RewardKind::Free => cap(amount_minor),
    };
    if discount <= 0 {
        return Err(Nothing::TooSmall);
    }
    Ok((discount, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(kind: RewardKind, value: Option<i64>, bp: Option<i64>, cap: Option<i64>) -> Terms {
        Terms {
            kind,
            value_minor: value,
            percent_bp: bp,
            cap_minor: cap,
            applies_to: "x".into(),
        }
    }

    #[test]
    fn what_a_redemption_takes_off() {
        use RewardKind::*;
        type Taken = Result<(i64, i64), Nothing>;
        let cases: &[(Terms, i64, i64, Taken)] = &[
            // A credit pays what it can; the rest stays for next time.
            (
                terms(Credit, Some(2500), None, None),
                2500,
                4000,
                Ok((2500, 2500)),
            ),
            (
                terms(Credit, Some(2500), None, None),
                2500,
                1000,
                Ok((1000, 1000)),
            ),
            (
                terms(Credit, Some(2500), None, None),
                0,
                1000,
                Err(Nothing::Spent),
            ),
            // A fixed voucher never takes off more than the booking.
            (terms(Fixed, Some(1000), None, None), 1, 4000, Ok((1000, 1))),
            (terms(Fixed, Some(1000), None, None), 1, 600, Ok((600, 1))),
            (
                terms(Fixed, Some(1000), None, None),
                0,
                600,
                Err(Nothing::Spent),
            ),
            // Percentages round down, and stop at the cap.
            (
                terms(Percent, None, Some(1500), None),
                1,
                4000,
                Ok((600, 1)),
            ),
            (
                terms(Percent, None, Some(1500), Some(500)),
                1,
                4000,
                Ok((500, 1)),
            ),
            (
                terms(Percent, None, Some(1500), None),
                1,
                6,
                Err(Nothing::TooSmall),
            ),
            (
                terms(Percent, None, Some(10_000), None),
                1,
                i64::MAX,
                Ok((i64::MAX, 1)),
            ),
            // A free service: the whole booking, up to the cap.
            (terms(Free, None, None, Some(6000)), 1, 4000, Ok((4000, 1))),
            (terms(Free, None, None, Some(6000)), 1, 9000, Ok((6000, 1))),
            (terms(Free, None, None, None), 1, 9000, Ok((9000, 1))),
        ];
        for (t, balance, amount, want) in cases {
            assert_eq!(
                redeem(t, *balance, *amount),
                *want,
                "{t:?} {balance} {amount}"
            );
        }
    }

    fn config(toml_text: &str) -> Result<(), String> {
        #[derive(Deserialize)]
        struct File {
            rewards: RewardsConfig,
            commission: Commission,
        }
        let f: File = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        f.rewards.validate(&f.commission)
    }

    #[test]
    fn settings_are_checked_with_a_fix_named() {
        let rule = "[[commission.rules]]\nname = \"c\"\non = \"booking\"\nrewards = [{ unit = \"voucher\", voucher = \"free-wash\" }]\n";
        let ok = format!(
            "[rewards]\nvouchers = {{ free-wash = {{ free = true, applies_to = \"a wash\" }} }}\n[commission]\n{rule}"
        );
        config(&ok).unwrap();
        let missing = format!("[rewards]\n[commission]\n{rule}");
        let e = config(&missing).unwrap_err();
        assert!(
            e.contains("\"free-wash\"") && e.contains("free = true"),
            "{e}"
        );
        let two = "[rewards]\nvouchers = { w = { free = true, percent_bp = 10, applies_to = \"a\" } }\n[commission]\n";
        assert!(config(two).unwrap_err().contains("exactly one"));
        let bp = "[rewards]\nvouchers = { w = { percent_bp = 10001, applies_to = \"a\" } }\n[commission]\n";
        assert!(config(bp).unwrap_err().contains("1 to 10000"));
        let label =
            "[rewards]\nvouchers = { w = { free = true, applies_to = \" \" } }\n[commission]\n";
        assert!(config(label).unwrap_err().contains("applies_to"));
        let offer =
            "[rewards]\nfriend_offer = { percent_bp = 1500, fixed_minor = 100 }\n[commission]\n";
        assert!(config(offer).unwrap_err().contains("friend_offer"));
        let days = "[rewards]\nexpires_days = 0\n[commission]\n";
        assert!(config(days).unwrap_err().contains("expires_days"));
        let kinds = "[rewards]\nfriend_offer = { percent_bp = 1500, for_kinds = [\"friend\"] }\n[commission]\n";
        assert!(config(kinds).unwrap_err().contains("for_kinds"));
    }

    #[test]
    fn units_map_to_terms() {
        let c = RewardsConfig {
            expires_days: 10,
            vouchers: [(
                "w".to_owned(),
                Worth {
                    percent_bp: Some(1000),
                    fixed_minor: None,
                    free: false,
                    cap_minor: None,
                    applies_to: "a".into(),
                },
            )]
            .into(),
            friend_offer: None,
        };
        assert_eq!(c.terms("credit:USD", 700).unwrap().value_minor, Some(700));
        assert_eq!(c.terms("voucher:w", 1).unwrap().kind, RewardKind::Percent);
        assert_eq!(c.terms("voucher:other", 1), None);
        assert_eq!(c.terms("USD", 700), None);
    }
}
