//! What a failed charge does to a member. The first failure makes the member
//! `past_due` and schedules retries on the configured days after it (default 3, 7 and
//! 14); a successful charge, first or retried, makes them `active` again for the same
//! period; when the last retry fails they lapse with the reason `payment_failed`. A
//! past-due member may check in for `grace_days` after the first failure.
//!
//! Retries are due from their day on, so a renewal run that was down catches up: a retry
//! whose day has passed is due at once (one at a time: the next is scheduled from the
//! configured day, not from when the late one ran).

use super::plans::MembershipConfig;

/// Where a member stands with their payments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Paid up.
    Active,
    /// A charge failed on `failed_on` (day number); `retries` retries have failed since.
    PastDue {
        /// Day of the first failure.
        failed_on: i64,
        /// Failed retries so far.
        retries: usize,
    },
    /// The last retry failed.
    Lapsed,
}

/// The outcome of one charge attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge {
    /// Paid.
    Succeeded,
    /// Refused (declined, expired card, …).
    Failed,
}

impl Standing {
    /// The standing after a charge attempt on `day`.
    pub fn after(self, charge: Charge, day: i64, cfg: &MembershipConfig) -> Self {
        match (self, charge) {
            (Standing::Lapsed, _) => Standing::Lapsed,
            (_, Charge::Succeeded) => Standing::Active,
            (Standing::Active, Charge::Failed) => Standing::PastDue {
                failed_on: day,
                retries: 0,
            },
            (Standing::PastDue { failed_on, retries }, Charge::Failed) => {
                if retries + 1 >= cfg.retry_days.len() {
                    Standing::Lapsed
                } else {
                    Standing::PastDue {
                        failed_on,
                        retries: retries + 1,
                    }
                }
            }
        }
    }

    /// The day the next retry is due, if one is.
    pub fn next_retry(self, cfg: &MembershipConfig) -> Option<i64> {
        match self {
            Standing::PastDue { failed_on, retries } => cfg
                .retry_days
                .get(retries)
                .map(|d| failed_on + i64::from(*d)),
            _ => None,
        }
    }

    /// Whether a retry is due on `day` (its day has come, or passed while the run was
    /// down).
    pub fn retry_due(self, day: i64, cfg: &MembershipConfig) -> bool {
        self.next_retry(cfg).is_some_and(|d| day >= d)
    }

    /// Whether the member may check in on `day`, as far as payments go (`grace_days`:
    /// `[program.membership] grace_days`).
    pub fn may_check_in(self, day: i64, grace_days: u32) -> bool {
        match self {
            Standing::Active => true,
            Standing::PastDue { failed_on, .. } => day < failed_on + i64::from(grace_days),
            Standing::Lapsed => false,
        }
    }

    /// Its name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Active => "active",
            Standing::PastDue { .. } => "past_due",
            Standing::Lapsed => "lapsed",
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn recovers_on_the_second_retry_or_lapses_after_fourteen_days() {
        let cfg = MembershipConfig::default();
        // Renewal on day 100 declines.
        let s = Standing::Active.after(Charge::Failed, 100, &cfg);
        assert_eq!(s.as_str(), "past_due");
        assert_eq!(s.next_retry(&cfg), Some(103));
        assert!(!s.retry_due(102, &cfg) && s.retry_due(103, &cfg));
        assert!(s.may_check_in(106, cfg.grace_days), "grace: 7 days");
        assert!(!s.may_check_in(107, cfg.grace_days));
        // First retry fails, second succeeds: active again.
        let s = s.after(Charge::Failed, 103, &cfg);
        assert_eq!(s.next_retry(&cfg), Some(107));
        assert_eq!(s.after(Charge::Succeeded, 107, &cfg), Standing::Active);
        // Or every retry fails: lapsed on day 114, for good.
        let s = s.after(Charge::Failed, 107, &cfg);
        assert_eq!(s.next_retry(&cfg), Some(114));
        let s = s.after(Charge::Failed, 114, &cfg);
        assert_eq!(s, Standing::Lapsed);
        assert_eq!(s.next_retry(&cfg), None);
        assert!(!s.may_check_in(114, cfg.grace_days));
        assert_eq!(s.after(Charge::Succeeded, 120, &cfg), Standing::Lapsed);
    }

    #[test]
    fn a_run_that_was_down_catches_up_one_retry_at_a_time() {
        let cfg = MembershipConfig::default();
        let s = Standing::Active.after(Charge::Failed, 100, &cfg);
        // The run comes back on day 110: the day-3 retry is due at once…
        assert!(s.retry_due(110, &cfg));
        let s = s.after(Charge::Failed, 110, &cfg);
        // …and so is the day-7 one (its day has passed too), but not the day-14 one yet.
        assert!(s.retry_due(110, &cfg));
        let s = s.after(Charge::Failed, 110, &cfg);
        assert!(!s.retry_due(110, &cfg) && s.retry_due(114, &cfg));
    }

    proptest! {
        /// However charges go, a member lapses only after exactly as many failures as the
        /// schedule has retries plus one, and never before the last retry day.
        #[test]
        fn lapsing_takes_the_whole_schedule(outcomes in prop::collection::vec(any::<bool>(), 1..20)) {
            let cfg = MembershipConfig::default();
            let mut s = Standing::Active;
            let mut failures_in_a_row = 0;
            let mut day = 0;
            let mut first_failure = None;
            for ok in outcomes {
                if s == Standing::Lapsed { break; }
                day = s.next_retry(&cfg).unwrap_or(day + 30);
                let charge = if ok { Charge::Succeeded } else { Charge::Failed };
                s = s.after(charge, day, &cfg);
                if ok { failures_in_a_row = 0; first_failure = None; } else {
                    failures_in_a_row += 1;
                    first_failure.get_or_insert(day);
                }
                if s == Standing::Lapsed {
                    prop_assert_eq!(failures_in_a_row, cfg.retry_days.len() + 1);
                    prop_assert_eq!(Some(day - 14), first_failure);
                } else {
                    prop_assert!(failures_in_a_row <= cfg.retry_days.len());
                }
            }
        }
    }
}
