//! Commission rules as data: which conversions earn what, for whom, in which unit.
//!
//! A program's `[program.commission]` section (see `server/programs/*.toml`) lists
//! volume tiers and rules. For a conversion the engine finds the affiliate's tier (its
//! override, else the highest tier whose `min_referrals` the affiliate's converted
//! referrals this month reach, counting this one), then the **first** rule in file
//! order that matches the event (`on`), the affiliate kind, the tier and the lead
//! action, and computes that rule's rewards. Money is integer minor units; a
//! percentage is basis points (1000 = 10 %) and rounds down to the minor unit; no
//! floating point anywhere.

use serde::Deserialize;

/// What a rule pays on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum On {
    /// A booking, earned once it is both paid and serviced.
    Booking,
    /// A lead (sign-up, quote request, …), earned when it arrives.
    Lead,
    /// A purchase, earned when it arrives.
    Purchase,
    /// A member's paid invoice (first, renewal or upgrade), earned when it is paid,
    /// for the partner who brought the member; see [`Rule::months`].
    Membership,
}

/// The unit a reward is paid in; each is kept apart in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitKind {
    /// Money, in the program's currency.
    Cash,
    /// Platform credit, in the program's currency, debited from the program's credit pool.
    Credit,
    /// A voucher (a discount or a free service), counted in whole vouchers.
    Voucher,
}

/// One reward of a rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reward {
    /// Cash, credit or voucher.
    pub unit: UnitKind,
    /// A fixed amount in minor units (cents), for cash and credit.
    pub fixed_minor: Option<i64>,
    /// A percentage of the conversion's amount in basis points (1000 = 10 %).
    pub percent_bp: Option<i64>,
    /// The most a percentage reward pays, in minor units.
    pub cap_minor: Option<i64>,
    /// For vouchers: what the voucher is (`free-basic-service`).
    pub voucher: Option<String>,
    /// For vouchers: how many (default 1).
    pub count: Option<i64>,
}

/// A volume tier.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// Its name (`bronze`).
    pub name: String,
    /// Converted referrals in the calendar month that reach it (counting the current
    /// one). Without it the tier is a plan an admin assigns to an affiliate as its
    /// tier override.
    pub min_referrals: Option<u32>,
}

/// A rule: when it applies and what it pays.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// A name for reports (default: derived from the conditions).
    pub name: Option<String>,
    /// The conversion it pays on.
    pub on: On,
    /// Only for this affiliate kind (`business`, `influencer`, `customer`).
    pub affiliate_kind: Option<String>,
    /// Only in this tier.
    pub tier: Option<String>,
    /// Only for leads with this `action` (`account_created`, `rfq` …).
    pub action: Option<String>,
    /// Only the customer's first converting booking or purchase earns.
    #[serde(default)]
    pub first_only: bool,
    /// For `on = "membership"`: how many of the member's billing periods earn (the
    /// first N periods with a paid invoice; `1` with a `fixed_minor` reward is a flat
    /// fee on the first payment). Unset: every paid period while the membership lives.
    pub months: Option<u32>,
    /// What it pays (one or more units).
    pub rewards: Vec<Reward>,
}

fn default_currency() -> String {
    "USD".into()
}

/// The default [`Commission::max_amount_minor`]: 1,000,000,000 minor units
/// (10,000,000.00 in a two-decimal currency), far above any single local-services booking.
pub const DEFAULT_MAX_AMOUNT_MINOR: i64 = 1_000_000_000;

/// The highest [`Commission::max_amount_minor`] a program may set: 10¹² minor units. With
/// every stored amount at most this (a percentage reward is at most 100 % of its booking,
/// and fixed rewards, caps and the payout minimum are held to the program's maximum too),
/// a sum of up to 9.2 million amounts fits in an `i64`, so no balance, report or page
/// total can overflow.
pub const AMOUNT_CEILING_MINOR: i64 = 1_000_000_000_000;

/// The most vouchers one reward may give.
pub const MAX_VOUCHER_COUNT: i64 = 1_000;

fn default_max_amount() -> i64 {
    DEFAULT_MAX_AMOUNT_MINOR
}

/// `[program.commission]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Commission {
    /// ISO 4217 code of cash and credit amounts; conversions in another currency are
    /// refused.
    #[serde(default = "default_currency")]
    pub currency: String,
    /// Days after being earned before a commission can be paid out (refund window).
    #[serde(default)]
    pub holding_days: u32,
    /// Cash balances below this are carried to the next month instead of paid.
    #[serde(default)]
    pub minimum_payout_minor: i64,
    /// The largest `amount_minor` a conversion event may carry; a larger one is refused
    /// with 422 naming this setting (default [`DEFAULT_MAX_AMOUNT_MINOR`], at most
    /// [`AMOUNT_CEILING_MINOR`]).
    #[serde(default = "default_max_amount")]
    pub max_amount_minor: i64,
    /// Volume tiers, lowest first.
    #[serde(default)]
    pub tiers: Vec<Tier>,
    /// What a tier's `min_referrals` counts: this calendar month's converted referrals
    /// (`"month"`, the default) or every one since the affiliate joined (`"lifetime"`).
    #[serde(default)]
    pub tier_window: TierWindow,
    /// The rules; the first match wins.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

impl Default for Commission {
    /// The demo program: businesses 10 % of the booking (at most $50), influencers a
    /// flat $20, customers a $10 credit, on serviced bookings.
    fn default() -> Self {
        let cash = |fixed: Option<i64>, bp: Option<i64>, cap: Option<i64>| Reward {
            unit: UnitKind::Cash,
            fixed_minor: fixed,
            percent_bp: bp,
            cap_minor: cap,
            voucher: None,
            count: None,
        };
        let rule = |kind: &str, reward: Reward| Rule {
            name: None,
            on: On::Booking,
            affiliate_kind: Some(kind.into()),
            tier: None,
            action: None,
            first_only: false,
            months: None,
            rewards: vec![reward],
        };
        Self {
            currency: default_currency(),
            holding_days: 0,
            minimum_payout_minor: 0,
            max_amount_minor: DEFAULT_MAX_AMOUNT_MINOR,
            tiers: Vec::new(),
            tier_window: TierWindow::Month,
            rules: vec![
                rule("business", cash(None, Some(1000), Some(5000))),
                rule("influencer", cash(Some(2000), None, None)),
                rule(
                    "customer",
                    Reward {
                        unit: UnitKind::Credit,
                        ..cash(Some(1000), None, None)
                    },
                ),
            ],
        }
    }
}

/// What [`Tier::min_referrals`] counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TierWindow {
    /// Converted referrals in the calendar month of the conversion.
    #[default]
    Month,
    /// Every converted referral of the affiliate.
    Lifetime,
}

/// One computed reward: `amount_minor` of `unit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amount {
    /// `USD`, `credit:USD` or `voucher:<name>`.
    pub unit: String,
    /// Minor units (vouchers: a count).
    pub amount_minor: i64,
}

/// The conversion being priced.
#[derive(Debug, Clone, Copy)]
pub struct Conversion<'a> {
    /// What it is.
    pub on: On,
    /// The lead action, if any.
    pub action: Option<&'a str>,
    /// The affiliate's kind.
    pub affiliate_kind: &'a str,
    /// The affiliate's tier (see [`Commission::tier`]).
    pub tier: Option<&'a str>,
    /// The amount the customer paid, in minor units.
    pub amount_minor: Option<i64>,
    /// Whether this is the customer's first converting booking or purchase.
    pub first_for_customer: bool,
}

/// What a conversion earns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Priced {
    /// The rule's name.
    pub rule: String,
    /// The rewards (non-zero amounts only).
    pub amounts: Vec<Amount>,
}

/// Why a conversion could not be priced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    /// A percentage rule needs the conversion's amount.
    #[error("this program pays a percentage on {0}: amount_minor is required")]
    AmountRequired(&'static str),
}

impl Commission {
    /// Checks the rules; the message names the rule and the problem.
    pub fn validate(&self) -> Result<(), String> {
        let c = &self.currency;
        if c.len() != 3 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(format!(
                "commission.currency {c:?} must be an ISO 4217 code such as USD or EUR"
            ));
        }
        let max = self.max_amount_minor;
        if !(1..=AMOUNT_CEILING_MINOR).contains(&max) {
            return Err(format!(
                "commission.max_amount_minor {max} must be 1 to {AMOUNT_CEILING_MINOR} (minor units: the largest amount one booking or purchase may carry)"
            ));
        }
        if !(0..=max).contains(&self.minimum_payout_minor) {
            return Err(format!(
                "commission.minimum_payout_minor must be 0 to commission.max_amount_minor ({max})"
            ));
        }
        let mut last = 0;
        for (i, t) in self.tiers.iter().enumerate() {
            if t.name.is_empty() || self.tiers[..i].iter().any(|o| o.name == t.name) {
                return Err(format!(
                    "commission.tiers[{i}]: tier names must be unique and not empty"
                ));
            }
            if let Some(m) = t.min_referrals {
                if m < last.max(1) {
                    return Err(format!(
                        "commission.tiers[{i}] ({}): min_referrals must be at least 1 and rise from tier to tier",
                        t.name
                    ));
                }
                last = m;
            }
        }
        for (i, r) in self.rules.iter().enumerate() {
            let at = format!("commission.rules[{i}]");
            if let Some(k) = &r.affiliate_kind
                && !["business", "influencer", "customer"].contains(&k.as_str())
            {
                return Err(format!(
                    "{at}: affiliate_kind {k:?} is not business, influencer or customer"
                ));
            }
            if let Some(t) = &r.tier
                && !self.tiers.iter().any(|x| &x.name == t)
            {
                return Err(format!("{at}: tier {t:?} is not one of commission.tiers"));
            }
            if r.action.is_some() && r.on != On::Lead {
                return Err(format!("{at}: action only applies to on = \"lead\""));
            }
            if r.on == On::Membership {
                if r.tier.is_some() {
                    return Err(format!(
                        "{at}: tier does not apply to on = \"membership\" (tiers count a month's bookings); make a rule per affiliate_kind instead"
                    ));
                }
                if r.first_only {
                    return Err(format!(
                        "{at}: first_only does not apply to on = \"membership\"; use months = 1 to pay on the first payment only"
                    ));
                }
                if r.months.is_some_and(|m| !(1..=120).contains(&m)) {
                    return Err(format!(
                        "{at}: months must be 1 to 120 (the member's first N paid periods earn), or left out for every paid period"
                    ));
                }
            } else if r.months.is_some() {
                return Err(format!("{at}: months only applies to on = \"membership\""));
            }
            if r.rewards.is_empty() {
                return Err(format!("{at}: rewards is empty; give at least one reward"));
            }
            for (j, w) in r.rewards.iter().enumerate() {
                let at = format!("{at}.rewards[{j}]");
                match w.unit {
                    UnitKind::Voucher => {
                        let ok_name = w.voucher.as_deref().is_some_and(|v| {
                            !v.is_empty()
                                && v.len() <= 60
                                && v.bytes()
                                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                        });
                        if !ok_name {
                            return Err(format!(
                                "{at}: a voucher needs voucher = \"name\" (letters, digits, - and _)"
                            ));
                        }
                        if w.fixed_minor.is_some() || w.percent_bp.is_some() {
                            return Err(format!(
                                "{at}: a voucher is counted with count, not fixed_minor or percent_bp"
                            ));
                        }
                        if w.count
                            .is_some_and(|n| !(1..=MAX_VOUCHER_COUNT).contains(&n))
                        {
                            return Err(format!("{at}: count must be 1 to {MAX_VOUCHER_COUNT}"));
                        }
                    }
                    UnitKind::Cash | UnitKind::Credit => {
                        if w.voucher.is_some() || w.count.is_some() {
                            return Err(format!(
                                "{at}: voucher and count only apply to unit = \"voucher\""
                            ));
                        }
                        match (w.fixed_minor, w.percent_bp) {
                            (Some(f), None) if f > 0 => {}
                            (None, Some(p)) if (1..=10_000).contains(&p) => {}
                            (Some(_), None) => {
                                return Err(format!("{at}: fixed_minor must be positive"));
                            }
                            (None, Some(_)) => {
                                return Err(format!(
                                    "{at}: percent_bp must be 1 to 10000 (basis points: 1000 = 10 %)"
                                ));
                            }
                            _ => {
                                return Err(format!(
                                    "{at}: give exactly one of fixed_minor or percent_bp"
                                ));
                            }
                        }
                        if w.cap_minor.is_some_and(|c| c <= 0) {
                            return Err(format!("{at}: cap_minor must be positive"));
                        }
                        if w.fixed_minor
                            .into_iter()
                            .chain(w.cap_minor)
                            .any(|v| v > max)
                        {
                            return Err(format!(
                                "{at}: fixed_minor and cap_minor must not exceed commission.max_amount_minor ({max})"
                            ));
                        }
                        if w.cap_minor.is_some() && w.percent_bp.is_none() {
                            return Err(format!("{at}: cap_minor only applies to percent_bp"));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The affiliate's tier: its override when it names a tier, else the highest
    /// volume tier that `referrals` (this month's, including the current one) reach.
    pub fn tier<'a>(&'a self, override_tier: Option<&'a str>, referrals: u32) -> Option<&'a str> {
        if let Some(t) = override_tier
            && self.tiers.iter().any(|x| x.name == t)
        {
            return Some(t);
        }
        self.tiers
            .iter()
            .rfind(|t| t.min_referrals.is_some_and(|m| referrals >= m))
            .map(|t| t.name.as_str())
    }

    /// The ledger unit of a reward.
    pub fn unit(&self, r: &Reward) -> String {
        match r.unit {
            UnitKind::Cash => self.currency.clone(),
            UnitKind::Credit => format!("credit:{}", self.currency),
            UnitKind::Voucher => format!("voucher:{}", r.voucher.as_deref().unwrap_or("voucher")),
        }
    }

    /// The rule that applies to the conversion (the first match in file order).
    pub fn matching_rule(&self, c: &Conversion<'_>) -> Option<&Rule> {
        self.find(c).map(|(_, r)| r)
    }

    fn find(&self, c: &Conversion<'_>) -> Option<(usize, &Rule)> {
        self.rules.iter().enumerate().find(|(_, r)| {
            r.on == c.on
                && r.affiliate_kind
                    .as_deref()
                    .is_none_or(|k| k == c.affiliate_kind)
                && r.tier.as_deref().is_none_or(|t| Some(t) == c.tier)
                && r.action.as_deref().is_none_or(|a| Some(a) == c.action)
        })
    }

    /// What the conversion earns: `Ok(None)` when no rule matches (or a first-only
    /// rule meets a repeat customer).
    pub fn price(&self, c: &Conversion<'_>) -> Result<Option<Priced>, PriceError> {
        let Some((i, rule)) = self.find(c) else {
            return Ok(None);
        };
        if rule.first_only && !c.first_for_customer {
            return Ok(None);
        }
        let mut amounts = Vec::with_capacity(rule.rewards.len());
        for r in &rule.rewards {
            let amount = match (r.unit, r.fixed_minor, r.percent_bp) {
                (UnitKind::Voucher, _, _) => r.count.unwrap_or(1),
                (_, Some(f), _) => f,
                (_, None, Some(bp)) => {
                    let basis = c
                        .amount_minor
                        .ok_or(PriceError::AmountRequired(match c.on {
                            On::Booking => "bookings",
                            On::Lead => "leads",
                            On::Purchase => "purchases",
                            On::Membership => "memberships",
                        }))?;
                    let v = i128::from(basis) * i128::from(bp) / 10_000;
                    let v = i64::try_from(v).unwrap_or(i64::MAX);
                    r.cap_minor.map_or(v, |cap| v.min(cap))
                }
                (_, None, None) => 0, // refused by validate()
            };
            if amount > 0 {
                amounts.push(Amount {
                    unit: self.unit(r),
                    amount_minor: amount,
                });
            }
        }
        let name = rule.name.clone().unwrap_or_else(|| {
            let mut n = format!("rule {}", i + 1);
            for part in [
                rule.affiliate_kind.as_deref(),
                rule.tier.as_deref(),
                rule.action.as_deref(),
            ]
            .into_iter()
            .flatten()
            {
                n.push(' ');
                n.push_str(part);
            }
            n
        });
        Ok(Some(Priced {
            rule: name,
            amounts,
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tiered() -> Commission {
        toml::from_str(
            r#"
            currency = "USD"
            tiers = [
              { name = "bronze", min_referrals = 1 },
              { name = "silver", min_referrals = 3 },
              { name = "gold", min_referrals = 5 },
              { name = "flat-plan" },
            ]
            [[rules]]
            on = "booking"
            tier = "gold"
            rewards = [{ unit = "cash", percent_bp = 1500, cap_minor = 7500 }]
            [[rules]]
            on = "booking"
            tier = "flat-plan"
            rewards = [{ unit = "cash", fixed_minor = 3000 }]
            [[rules]]
            on = "booking"
            affiliate_kind = "business"
            rewards = [{ unit = "cash", percent_bp = 1000, cap_minor = 5000 }]
            [[rules]]
            on = "booking"
            affiliate_kind = "customer"
            first_only = true
            rewards = [{ unit = "voucher", voucher = "free-basic-service" }, { unit = "credit", fixed_minor = 2500 }]
            "#,
        )
        .unwrap()
    }

    fn conv(kind: &str, tier: Option<&'static str>, amount: i64) -> Conversion<'static> {
        Conversion {
            on: On::Booking,
            action: None,
            affiliate_kind: if kind == "business" {
                "business"
            } else {
                "customer"
            },
            tier,
            amount_minor: Some(amount),
            first_for_customer: true,
        }
    }

    #[test]
    fn tiers_come_from_volume_or_the_override() {
        let c = tiered();
        c.validate().unwrap();
        assert_eq!(c.tier(None, 0), None);
        assert_eq!(c.tier(None, 1), Some("bronze"));
        assert_eq!(c.tier(None, 2), Some("bronze"));
        assert_eq!(c.tier(None, 3), Some("silver"));
        assert_eq!(c.tier(None, 99), Some("gold"));
        assert_eq!(c.tier(Some("flat-plan"), 1), Some("flat-plan"));
        assert_eq!(c.tier(Some("gold"), 1), Some("gold"));
        // An override naming no tier of this program is ignored, not an error.
        assert_eq!(c.tier(Some("platinum"), 3), Some("silver"));
    }

    #[test]
    fn the_first_matching_rule_prices_in_integer_minor_units() {
        let c = tiered();
        let p = c
            .price(&conv("business", Some("bronze"), 12_345))
            .unwrap()
            .unwrap();
        // 10 % of 123.45 rounds down to 12.34.
        assert_eq!(
            p.amounts,
            vec![Amount {
                unit: "USD".into(),
                amount_minor: 1234
            }]
        );
        let p = c
            .price(&conv("business", Some("bronze"), 90_000))
            .unwrap()
            .unwrap();
        assert_eq!(p.amounts[0].amount_minor, 5000, "capped");
        let p = c
            .price(&conv("business", Some("gold"), 10_000))
            .unwrap()
            .unwrap();
        assert_eq!(p.amounts[0].amount_minor, 1500, "gold rule first");
        let p = c
            .price(&conv("business", Some("flat-plan"), 1))
            .unwrap()
            .unwrap();
        assert_eq!(p.amounts[0].amount_minor, 3000);
        let p = c
            .price(&conv("customer", Some("bronze"), 5000))
            .unwrap()
            .unwrap();
        assert_eq!(
            p.amounts,
            vec![
                Amount {
                    unit: "voucher:free-basic-service".into(),
                    amount_minor: 1
                },
                Amount {
                    unit: "credit:USD".into(),
                    amount_minor: 2500
                },
            ]
        );
        let repeat = Conversion {
            first_for_customer: false,
            ..conv("customer", None, 5000)
        };
        assert_eq!(c.price(&repeat).unwrap(), None, "first_only");
        let lead = Conversion {
            on: On::Lead,
            ..conv("business", None, 1)
        };
        assert_eq!(c.price(&lead).unwrap(), None, "no rule for leads");
        let no_amount = Conversion {
            amount_minor: None,
            ..conv("business", None, 0)
        };
        assert!(c.price(&no_amount).is_err());
        let huge = conv("business", Some("gold"), i64::MAX);
        assert_eq!(
            c.price(&huge).unwrap().unwrap().amounts[0].amount_minor,
            7500
        );
    }

    #[test]
    fn bad_rules_are_named() {
        let bad = |toml_text: &str| {
            let c: Commission = toml::from_str(toml_text).unwrap();
            c.validate().unwrap_err()
        };
        assert!(bad("currency = \"usd\"").contains("ISO 4217"));
        let e = bad(
            "[[rules]]\non = \"booking\"\nrewards = [{ unit = \"cash\", fixed_minor = 5, percent_bp = 10 }]",
        );
        assert!(
            e.contains("rules[0].rewards[0]") && e.contains("exactly one"),
            "{e}"
        );
        let e = bad(
            "[[rules]]\non = \"booking\"\ntier = \"gold\"\nrewards = [{ unit = \"cash\", fixed_minor = 5 }]",
        );
        assert!(e.contains("tier \"gold\""), "{e}");
        let e =
            bad("[[rules]]\non = \"booking\"\nrewards = [{ unit = \"cash\", percent_bp = 20000 }]");
        assert!(e.contains("basis points"), "{e}");
        let e = bad("[[rules]]\non = \"booking\"\nrewards = [{ unit = \"voucher\" }]");
        assert!(e.contains("voucher"), "{e}");
        let e = bad(
            "tiers = [{ name = \"a\", min_referrals = 3 }, { name = \"b\", min_referrals = 2 }]",
        );
        assert!(e.contains("rise"), "{e}");
        Commission::default().validate().unwrap();
    }

    #[test]
    fn amounts_a_program_may_pay_are_bounded() {
        let bad = |toml_text: &str| {
            let c: Commission = toml::from_str(toml_text).unwrap();
            c.validate().unwrap_err()
        };
        for m in ["0", "-1", "1000000000001"] {
            let e = bad(&format!("max_amount_minor = {m}"));
            assert!(e.contains("max_amount_minor") && e.contains(m), "{e}");
        }
        let e = bad("max_amount_minor = 1000
[[rules]]
on = \"booking\"\nrewards = [{ unit = \"cash\", fixed_minor = 1001 }]");
        assert!(
            e.contains("rules[0].rewards[0]") && e.contains("(1000)"),
            "{e}"
        );
        let e = bad("max_amount_minor = 1000
[[rules]]
on = \"booking\"\nrewards = [{ unit = \"cash\", percent_bp = 10, cap_minor = 5000 }]");
        assert!(e.contains("cap_minor"), "{e}");
        let e = bad("max_amount_minor = 1000
minimum_payout_minor = 2000");
        assert!(e.contains("minimum_payout_minor"), "{e}");
        let e = bad("[[rules]]
on = \"booking\"\nrewards = [{ unit = \"voucher\", voucher = \"v\", count = 1001 }]");
        assert!(e.contains("count must be 1 to 1000"), "{e}");
        let c: Commission = toml::from_str("currency = \"EUR\"").unwrap();
        assert_eq!(c.max_amount_minor, DEFAULT_MAX_AMOUNT_MINOR);
        c.validate().unwrap();
    }
}
