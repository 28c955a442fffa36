//! The words the database stores: statuses, outcomes and reasons as enums, each with the
//! exact text of its column (`as_str`), parsed back on read ([`std::str::FromStr`]) and
//! serialised as that text in JSON. The stored strings are the ones earlier versions
//! wrote, so no data migrates; an unknown word read from a row is a store error, never a
//! silent default.

/// Defines a stored vocabulary: an enum whose variants map one to one to column text.
macro_rules! vocab {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)+];

            /// The text stored in the database and sent in JSON.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownWord;
            fn from_str(s: &str) -> Result<Self, UnknownWord> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(UnknownWord { what: stringify!($name), word: s.to_owned() }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl sqlx::Type<sqlx::Any> for $name {
            fn type_info() -> sqlx::any::AnyTypeInfo {
                <String as sqlx::Type<sqlx::Any>>::type_info()
            }
        }

        /// Read as its column's text; an unknown word is a decode error naming it.
        impl<'r> sqlx::Decode<'r, sqlx::Any> for $name {
            fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                Ok(<String as sqlx::Decode<'r, sqlx::Any>>::decode(value)?.parse::<Self>()?)
            }
        }

        /// Bound as its column's text.
        impl<'q> sqlx::Encode<'q, sqlx::Any> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut <sqlx::Any as sqlx::Database>::ArgumentBuffer<'q>,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<'q, sqlx::Any>>::encode(self.as_str(), buf)
            }
        }
    };
}

/// A stored word this version does not know (a newer version wrote it, or the row was
/// edited by hand).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the database holds {what} {word:?}, which this version of Tapkit does not know")]
pub struct UnknownWord {
    /// Which vocabulary.
    pub what: &'static str,
    /// The word read.
    pub word: String,
}

vocab! {
    /// Where a booking's commission stands (`commissions.status`); the latest line of
    /// each unit is the current state.
    CommissionStatus {
        /// Paid, not serviced yet.
        Pending = "pending",
        /// Waiting for a review decision.
        Held = "held",
        /// Earned: on the ledger.
        Earned = "earned",
        /// Taken back (a refund), or a pending unit closed.
        Reversed = "reversed",
        /// Never earned (self-referral, suspended partner, rejected in review …).
        Refused = "refused",
    }
}

vocab! {
    /// A booking's stamped attribution (`bookings.attribution`).
    BookingAttribution {
        /// To a click of an affiliate.
        Attributed = "attributed",
        /// To nobody (the reason says why).
        None = "none",
    }
}

vocab! {
    /// Why a booking was stamped without attribution (`bookings.reason`).
    UnattributedReason {
        /// The checkout sent no token.
        NoAttributionToken = "no_attribution_token",
        /// The token's signature does not verify.
        ForgedOrDamagedToken = "forged_or_damaged_token",
        /// The token names a click that does not exist.
        UnknownClick = "unknown_click",
        /// The click earned no attribution (a preview, a flagged tap …).
        ClickNotAttributed = "click_not_attributed",
        /// The booking came after the cookie's lifetime.
        AttributionExpired = "attribution_expired",
    }
}

vocab! {
    /// What a conversion event did (`conversion_events.outcome`, the webhook's answer,
    /// and the `tapkit_conversions_total` label).
    ConversionOutcome {
        /// A commission was earned (and posted to the ledger).
        Earned = "earned",
        /// Paid, waiting for the service.
        Pending = "pending",
        /// Held for a review.
        Held = "held",
        /// The commission was refused.
        Refused = "refused",
        /// A refund reversed the commission.
        Reversed = "reversed",
        /// Serviced, waiting for the payment.
        AwaitingPayment = "awaiting_payment",
        /// Recorded; nothing changed in the commission log.
        Recorded = "recorded",
        /// The booking is attributed to nobody.
        Unattributed = "unattributed",
        /// No rule of the program pays for it.
        NoCommission = "no_commission",
        /// A redelivery: nothing changed.
        Duplicate = "duplicate",
    }
}

vocab! {
    /// Why a commission is refused (`commissions.reason` of a refused line).
    RefusalReason {
        /// The paying customer is the affiliate.
        SelfReferral = "self_referral",
        /// The affiliate is suspended.
        AffiliateSuspended = "affiliate_suspended",
        /// The click's channel is switched off.
        ChannelKilled = "channel_killed",
        /// The first event came too soon after the click to be a real customer.
        TooFastAfterClick = "too_fast_after_click",
    }
}

vocab! {
    /// Why a booking's first commission is held for a review (`reviews.reason`).
    HoldReason {
        /// The click came from an address the affiliate itself used.
        SameIpAsAffiliate = "same_ip_as_affiliate",
        /// Too many attributed bookings from one address in a day.
        IpBurst = "ip_burst",
        /// Too many conversions from one (non-webmail) email domain in a day.
        EmailDomainBulk = "email_domain_bulk",
        /// The every-Nth sample of first decisions.
        ReviewSample = "review_sample",
        /// A referrer who signed up at `/refer` refers before any booking of their own
        /// is known and before any referral of theirs was approved.
        ReferredBeforeBooking = "referred_before_booking",
    }
}

vocab! {
    /// A review's verdict (`review_decisions.decision`).
    Verdict {
        /// Approved: the commission goes ahead.
        Approved = "approved",
        /// Rejected: the commission is refused.
        Rejected = "rejected",
    }
}

vocab! {
    /// What a ledger transaction is (`ledger_transactions.kind`).
    TransactionKind {
        /// A commission earned.
        Accrual = "accrual",
        /// A commission taken back, or a member's payment refunded.
        Reversal = "reversal",
        /// A month's payout computed at close.
        Payout = "payout",
        /// Money that moved: a payout marked paid, or a member's invoice paid.
        Settlement = "settlement",
    }
}

vocab! {
    /// A ledger account (`ledger_postings.account`).
    Account {
        /// The program's commission expense (cash).
        CommissionExpense = "commission_expense",
        /// What credit rewards are drawn from.
        CreditPool = "credit_pool",
        /// What vouchers are drawn from.
        VoucherPool = "voucher_pool",
        /// What the program owes a partner (with its affiliate id).
        PartnerPayable = "partner_payable",
        /// Payouts computed at a month close, not yet marked paid.
        PayoutsDue = "payouts_due",
        /// Cash paid out.
        Cash = "cash",
        /// Credit issued to partners.
        CreditIssued = "credit_issued",
        /// Vouchers issued to partners.
        VouchersIssued = "vouchers_issued",
        /// What members paid for their plans (credited when an invoice is paid, debited
        /// when it is refunded; the money itself goes through `cash`).
        MembershipRevenue = "membership_revenue",
        /// Rewards issued to a referrer and not yet redeemed or expired (with the
        /// referrer's affiliate id): what the brand owes in rewards, a liability.
        RewardsOutstanding = "rewards_outstanding",
        /// Rewards used at the brand's checkout.
        RewardsRedeemed = "rewards_redeemed",
        /// Rewards that expired unused.
        RewardsExpired = "rewards_expired",
        /// What referred friends' first-visit offers cost the brand.
        FriendOffers = "friend_offers",
    }
}

vocab! {
    /// What a reward is worth at the checkout (`rewards.kind`).
    RewardKind {
        /// A credit balance in minor units, usable in part.
        Credit = "credit",
        /// A fixed amount off one booking.
        Fixed = "fixed",
        /// A percentage off one booking.
        Percent = "percent",
        /// A service for free (up to an optional cap).
        Free = "free",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_reads_back_as_itself() {
        fn check<T>(all: &[T])
        where
            T: Copy + PartialEq + std::fmt::Debug + std::str::FromStr<Err = UnknownWord>,
            T: std::fmt::Display,
        {
            for v in all {
                assert_eq!(v.to_string().parse::<T>(), Ok(*v));
            }
        }
        check(CommissionStatus::ALL);
        check(BookingAttribution::ALL);
        check(UnattributedReason::ALL);
        check(ConversionOutcome::ALL);
        check(RefusalReason::ALL);
        check(HoldReason::ALL);
        check(Verdict::ALL);
        check(RewardKind::ALL);
        check(TransactionKind::ALL);
        check(Account::ALL);
    }

    #[test]
    fn stored_text_is_what_earlier_versions_wrote() {
        assert_eq!(CommissionStatus::Earned.as_str(), "earned");
        assert_eq!(
            ConversionOutcome::AwaitingPayment.as_str(),
            "awaiting_payment"
        );
        assert_eq!(
            HoldReason::SameIpAsAffiliate.as_str(),
            "same_ip_as_affiliate"
        );
        assert_eq!(
            serde_json::to_string(&CommissionStatus::Held).unwrap(),
            "\"held\""
        );
        let e = "paid".parse::<CommissionStatus>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "the database holds CommissionStatus \"paid\", which this version of Tapkit does not know"
        );
    }
}
