//! Monthly recurring revenue and its movements, from who was billed for which plan in
//! each period. A member counts in a month at its plan's full monthly price (not the
//! prorated first charge) when the month has a first, renewal or upgrade invoice for
//! it; the last plan billed in the month is the one that counts.
//!
//! Movements from one month to the next, per member: **new** (first month ever billed),
//! **reactivated** (billed again after a month or more without: a pause or a lapse that
//! came back), **expansion** and **contraction** (a dearer or cheaper plan),
//! **churned** (billed last month, not this one: cancelled, lapsed or paused). They
//! reconcile by construction: `mrr = previous mrr + new + reactivated + expansion −
//! contraction − churned`, every month.

use std::collections::{BTreeMap, HashMap};

use super::billing::Period;

/// One month of MRR.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct MonthMrr {
    /// `YYYY-MM`.
    pub month: String,
    /// MRR at the month, minor units.
    pub mrr_minor: i64,
    /// From members billed for the first time.
    pub new_minor: i64,
    /// From members billed again after a gap.
    pub reactivated_minor: i64,
    /// From members on a dearer plan than last month.
    pub expansion_minor: i64,
    /// From members on a cheaper plan (a positive amount, subtracted).
    pub contraction_minor: i64,
    /// From members billed last month and not this one (positive, subtracted).
    pub churned_minor: i64,
    /// Members billed this month.
    pub members: u64,
    /// Of them, per plan.
    pub by_plan: BTreeMap<String, u64>,
    /// Members churned this month over members billed last month, in basis points
    /// (0 when last month had none).
    pub churn_rate_bp: i64,
    /// Average revenue per member, minor units (0 with no members).
    pub arpm_minor: i64,
}

/// One billed (member, period, plan), in invoice order.
#[derive(Debug, Clone)]
pub struct Billed {
    /// The member.
    pub member_id: i64,
    /// `YYYY-MM`.
    pub period: String,
    /// The plan billed.
    pub plan: String,
}

/// MRR for each month from `from` to `to`, given every billing up to `to` (earlier ones
/// decide "new" against "reactivated") and each plan's monthly price.
pub fn months(
    billed: &[Billed],
    price: &HashMap<String, i64>,
    from: Period,
    to: Period,
) -> Vec<MonthMrr> {
    // member → period → the last plan billed in it.
    let mut plan_of: HashMap<i64, BTreeMap<Period, &str>> = HashMap::new();
    for b in billed {
        if let Some(p) = Period::parse(&b.period) {
            plan_of.entry(b.member_id).or_default().insert(p, &b.plan);
        }
    }
    let worth = |plan: Option<&&str>| plan.map_or(0, |p| price.get(*p).copied().unwrap_or(0));
    let mut out = Vec::new();
    let mut m = from;
    while m <= to {
        let before = prev(m);
        let mut row = MonthMrr {
            month: m.to_string(),
            ..MonthMrr::default()
        };
        let mut last_members = 0u64;
        let mut churned_members = 0u64;
        for ps in plan_of.values() {
            let (was, now) = (worth(ps.get(&before)), worth(ps.get(&m)));
            if ps.contains_key(&before) {
                last_members += 1;
            }
            if let Some(plan) = ps.get(&m) {
                row.members += 1;
                *row.by_plan.entry((*plan).to_owned()).or_default() += 1;
                row.mrr_minor += now;
            }
            match (ps.contains_key(&before), ps.contains_key(&m)) {
                (false, true) if ps.keys().next() != Some(&m) => row.reactivated_minor += now,
                (false, true) => row.new_minor += now,
                (true, false) => {
                    row.churned_minor += was;
                    churned_members += 1;
                }
                (true, true) if now > was => row.expansion_minor += now - was,
                (true, true) => row.contraction_minor += was - now,
                (false, false) => {}
            }
        }
        row.churn_rate_bp = (churned_members * 10_000)
            .checked_div(last_members)
            .map_or(0, |v| i64::try_from(v).unwrap_or(i64::MAX));
        row.arpm_minor = i64::try_from(row.members)
            .ok()
            .and_then(|n| row.mrr_minor.checked_div(n))
            .unwrap_or(0);
        out.push(row);
        m = m.next();
    }
    out
}

/// The first of the twelve months that end with `to` (not before 1970-01).
pub fn twelve_months_to(to: Period) -> Period {
    let mut from = to;
    for _ in 0..11 {
        from = prev(from);
    }
    from.max(Period {
        year: 1970,
        month: 1,
    })
}

/// The month before.
pub fn prev(p: Period) -> Period {
    if p.month == 1 {
        Period {
            year: p.year - 1,
            month: 12,
        }
    } else {
        Period {
            year: p.year,
            month: p.month - 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn b(member_id: i64, period: &str, plan: &str) -> Billed {
        Billed {
            member_id,
            period: period.into(),
            plan: plan.into(),
        }
    }

    fn prices() -> HashMap<String, i64> {
        [("basic", 2900), ("plus", 4900), ("premium", 7900)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect()
    }

    #[test]
    fn three_months_by_hand() {
        let p = |s| Period::parse(s).unwrap();
        let billed = [
            // 1: joins Plus in October, upgrades to Premium in November.
            b(1, "2026-10", "plus"),
            b(1, "2026-11", "plus"),
            b(1, "2026-11", "premium"),
            b(1, "2026-12", "premium"),
            // 2: Basic from September, pauses in November, back in December.
            b(2, "2026-09", "basic"),
            b(2, "2026-10", "basic"),
            b(2, "2026-12", "basic"),
            // 3: Premium in October, downgrades to Plus in November, cancels after.
            b(3, "2026-10", "premium"),
            b(3, "2026-11", "plus"),
        ];
        let m = months(&billed, &prices(), p("2026-10"), p("2026-12"));
        let row = |i: usize| {
            let r = &m[i];
            (
                r.mrr_minor,
                r.new_minor,
                r.reactivated_minor,
                r.expansion_minor,
                r.contraction_minor,
                r.churned_minor,
            )
        };
        // October: 1 new (4900), 3 new (7900), 2 carried (2900).
        assert_eq!(row(0), (15_700, 12_800, 0, 0, 0, 0));
        // November: 1 expands +3000, 3 contracts −3000, 2 churns (pause) −2900.
        assert_eq!(row(1), (12_800, 0, 0, 3000, 3000, 2900));
        // December: 2 reactivated +2900, 3 churned −4900.
        assert_eq!(row(2), (10_800, 0, 2900, 0, 0, 4900));
        assert_eq!(m[1].churn_rate_bp, 3333, "1 of 3");
        assert_eq!(m[2].by_plan.get("premium"), Some(&1));
        assert_eq!(m[2].arpm_minor, 5400);
    }

    proptest! {
        /// The movements always reconcile month to month.
        #[test]
        fn movements_reconcile(bills in prop::collection::vec((0i64..8, 0u32..6, 0usize..3), 0..60)) {
            let plans = ["basic", "plus", "premium"];
            let billed: Vec<Billed> = bills
                .iter()
                .map(|(id, m, pl)| b(*id, &format!("2026-{:02}", m + 1), plans[*pl]))
                .collect();
            let p = |s| Period::parse(s).unwrap();
            let m = months(&billed, &prices(), p("2026-01"), p("2026-06"));
            let mut last = 0;
            for r in &m {
                prop_assert_eq!(
                    r.mrr_minor,
                    last + r.new_minor + r.reactivated_minor + r.expansion_minor
                        - r.contraction_minor - r.churned_minor
                );
                last = r.mrr_minor;
            }
        }
    }
}
