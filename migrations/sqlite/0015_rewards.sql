-- Rewards held by referrers and referred friends, redeemed at the brand's checkout
-- (issue 21; POST /api/rewards/lookup and /redeem).
--
-- A referrer's reward is written when its commission is earned: each credit reward is
-- one row with a balance in minor units, each voucher one row with a balance of 1. Its
-- ledger transaction (a settlement) moves the commission out of partner_payable into
-- rewards_outstanding, so month close pays nothing twice. A friend's first-visit offer
-- is written when the checkout first redeems it, once per attributed click.
--
-- The balance only moves inside a money transaction (one at a time per program, across
-- replicas), by an UPDATE that names the balance it read, and never below zero.
CREATE TABLE rewards (
    id             INTEGER PRIMARY KEY,
    program_id     INTEGER NOT NULL REFERENCES programs (id),
    code           TEXT    NOT NULL UNIQUE CHECK (length(code) BETWEEN 8 AND 200),
    affiliate_id   INTEGER REFERENCES affiliates (id),
    booking_ref    INTEGER REFERENCES bookings (id),
    click_id       INTEGER UNIQUE,
    unit           TEXT    NOT NULL,
    kind           TEXT    NOT NULL CHECK (kind IN ('credit', 'fixed', 'percent', 'free')),
    applies_to     TEXT    NOT NULL,
    value_minor    INTEGER CHECK (value_minor > 0),
    percent_bp     INTEGER CHECK (percent_bp BETWEEN 1 AND 10000),
    cap_minor      INTEGER CHECK (cap_minor > 0),
    issued_minor   INTEGER NOT NULL CHECK (issued_minor > 0),
    balance        INTEGER NOT NULL CHECK (balance >= 0 AND balance <= issued_minor),
    issued_at      INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    closed_at      INTEGER,
    closed_reason  TEXT    CHECK (closed_reason IN ('expired', 'refunded')),
    transaction_id INTEGER REFERENCES ledger_transactions (id),
    CHECK ((affiliate_id IS NULL) = (click_id IS NOT NULL)),
    CHECK ((closed_at IS NULL) = (closed_reason IS NULL))
);
CREATE INDEX rewards_holder ON rewards (affiliate_id);
CREATE INDEX rewards_booking ON rewards (booking_ref);
CREATE INDEX rewards_open ON rewards (program_id, expires_at) WHERE closed_at IS NULL;

-- One use of a reward at the checkout. A booking uses a reward at most once, so a
-- retried redemption answers the first. A refund of the booking reverses it.
CREATE TABLE reward_redemptions (
    id                      INTEGER PRIMARY KEY,
    reward_id               INTEGER NOT NULL REFERENCES rewards (id),
    booking_id              TEXT    NOT NULL CHECK (length(booking_id) BETWEEN 1 AND 200),
    amount_minor            INTEGER NOT NULL CHECK (amount_minor > 0),
    discount_minor          INTEGER NOT NULL CHECK (discount_minor > 0),
    units                   INTEGER NOT NULL CHECK (units > 0),
    redeemed_at             INTEGER NOT NULL,
    transaction_id          INTEGER NOT NULL REFERENCES ledger_transactions (id),
    reversed_at             INTEGER,
    reversal_transaction_id INTEGER REFERENCES ledger_transactions (id),
    UNIQUE (reward_id, booking_id)
);
CREATE INDEX reward_redemptions_booking ON reward_redemptions (booking_id);

-- Month close now also counts what left partner_payable as issued rewards.
ALTER TABLE payouts ADD COLUMN issued_minor INTEGER NOT NULL DEFAULT 0;
