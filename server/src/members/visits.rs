//! A period's visits. A period includes its plan's visits; the visits a limited plan
//! leaves unused roll over for one month: they are used first in the next period and
//! expire at its end (so they never roll twice). An unlimited plan rolls nothing.

use super::plans::Visits;

/// Visits of one member in one period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    /// Included this period (the plan's, raised by an upgrade).
    pub included: Visits,
    /// Included visits used.
    pub used: u32,
    /// Rolled over from the previous period.
    pub rolled: u32,
    /// Rolled-over visits used.
    pub rolled_used: u32,
}

/// Which visits a check-in used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Used {
    /// One rolled over from last period.
    Rolled,
    /// One of this period's.
    Included,
}

/// Why a check-in found no visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no visits left this period: {used} of {included} used (rolled over: {rolled})")]
pub struct NoVisitsLeft {
    /// Included visits.
    pub included: u32,
    /// All used.
    pub used: u32,
    /// Rolled over, all used.
    pub rolled: u32,
}

impl Allowance {
    /// A period on a plan of `visits`, with `rolled` carried in.
    pub fn new(visits: Visits, rolled: u32) -> Self {
        Self {
            included: visits,
            used: 0,
            rolled,
            rolled_used: 0,
        }
    }

    /// A paused period: nothing included, nothing carried.
    pub fn paused() -> Self {
        Self::new(Visits::Limited(0), 0)
    }

    /// Visits left (`None`: unlimited).
    pub fn left(&self) -> Option<u32> {
        match self.included {
            Visits::Unlimited => None,
            Visits::Limited(n) => Some(n.saturating_sub(self.used) + self.rolled_left()),
        }
    }

    /// Rolled-over visits left.
    pub fn rolled_left(&self) -> u32 {
        self.rolled.saturating_sub(self.rolled_used)
    }

    /// Uses one visit: a rolled-over one first.
    pub fn check_in(&mut self) -> Result<Used, NoVisitsLeft> {
        if self.rolled_left() > 0 {
            self.rolled_used += 1;
            return Ok(Used::Rolled);
        }
        match self.included {
            Visits::Unlimited => {
                self.used = self.used.saturating_add(1);
                Ok(Used::Included)
            }
            Visits::Limited(n) if self.used < n => {
                self.used += 1;
                Ok(Used::Included)
            }
            Visits::Limited(n) => Err(NoVisitsLeft {
                included: n,
                used: self.used,
                rolled: self.rolled,
            }),
        }
    }

    /// An upgrade mid-period raises the allowance to the new plan's (visits already used
    /// stay used); a smaller plan changes nothing until the next period.
    pub fn raise_to(&mut self, visits: Visits) {
        self.included = match (self.included, visits) {
            (_, Visits::Unlimited) | (Visits::Unlimited, _) => Visits::Unlimited,
            (Visits::Limited(a), Visits::Limited(b)) => Visits::Limited(a.max(b)),
        };
    }

    /// What the next period carries in: this period's unused included visits (rolled
    /// ones expire now; an unlimited plan carries nothing).
    pub fn carry(&self) -> u32 {
        match self.included {
            Visits::Unlimited => 0,
            Visits::Limited(n) => n.saturating_sub(self.used),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn rolled_visits_go_first_and_expire_after_one_month() {
        // Plus: 4 a month. One used in November: 3 roll into December.
        let mut nov = Allowance::new(Visits::Limited(4), 0);
        nov.check_in().unwrap();
        let mut dec = Allowance::new(Visits::Limited(4), nov.carry());
        assert_eq!(dec.left(), Some(7));
        assert_eq!(dec.check_in(), Ok(Used::Rolled));
        assert_eq!(dec.check_in(), Ok(Used::Rolled));
        // December uses 2 rolled visits and none of its own: January gets December's 4,
        // not the third November visit.
        assert_eq!(dec.carry(), 4);
        let mut jan = Allowance::new(Visits::Limited(4), dec.carry());
        for _ in 0..8 {
            jan.check_in().unwrap();
        }
        assert_eq!(jan.left(), Some(0));
        assert_eq!(
            jan.check_in(),
            Err(NoVisitsLeft {
                included: 4,
                used: 4,
                rolled: 4
            })
        );
        assert_eq!(jan.carry(), 0);
    }

    #[test]
    fn upgrades_raise_and_pauses_refuse() {
        let mut a = Allowance::new(Visits::Limited(2), 0);
        a.check_in().unwrap();
        a.check_in().unwrap();
        assert!(a.check_in().is_err());
        a.raise_to(Visits::Limited(4));
        assert_eq!(a.left(), Some(2));
        a.raise_to(Visits::Limited(2));
        assert_eq!(a.left(), Some(2), "a downgrade waits for the next period");
        a.raise_to(Visits::Unlimited);
        assert_eq!(a.left(), None);
        assert_eq!(a.carry(), 0, "unlimited rolls nothing");
        let mut p = Allowance::paused();
        assert!(p.check_in().is_err());
    }

    #[derive(Debug, Clone)]
    enum Step {
        CheckIn,
        Raise(Visits),
        NextPeriod(Visits),
        Pause,
    }

    fn visits() -> impl Strategy<Value = Visits> {
        prop_oneof![(0u32..6).prop_map(Visits::Limited), Just(Visits::Unlimited)]
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            6 => Just(Step::CheckIn),
            1 => visits().prop_map(Step::Raise),
            2 => visits().prop_map(Step::NextPeriod),
            1 => Just(Step::Pause),
        ]
    }

    proptest! {
        /// Over random lifecycles a period never grants more visits than it includes plus
        /// what it carried in, and never carries more than one period's.
        #[test]
        fn visits_are_never_overspent(start in visits(), steps in prop::collection::vec(step(), 0..80)) {
            let mut a = Allowance::new(start, 0);
            let mut granted = 0u32;
            for s in steps {
                match s {
                    Step::CheckIn => {
                        let before = a.left();
                        match a.check_in() {
                            Ok(_) => {
                                granted += 1;
                                if let Some(n) = before { prop_assert!(n > 0); }
                            }
                            Err(_) => prop_assert_eq!(before, Some(0)),
                        }
                    }
                    Step::Raise(v) => a.raise_to(v),
                    Step::NextPeriod(v) => {
                        if let Visits::Limited(n) = a.included {
                            prop_assert!(granted <= n + a.rolled);
                        }
                        prop_assert!(a.rolled_used <= a.rolled);
                        let carry = a.carry();
                        if let Visits::Limited(n) = a.included { prop_assert!(carry <= n); }
                        a = Allowance::new(v, carry);
                        granted = 0;
                    }
                    Step::Pause => { a = Allowance::paused(); granted = 0; }
                }
            }
        }
    }
}
