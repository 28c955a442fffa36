-- The money side: conversion webhooks (de-duplicated), bookings with their attribution
-- stamped once, the commission log, a double-entry ledger, month periods and payouts,
-- and the fraud review queue. Amounts are integers in minor units of a unit ("USD",
-- "credit:USD", "voucher:free-basic-service"). Times are Unix milliseconds.
--
-- History is never edited: every table below is append-only (triggers refuse UPDATE
-- and DELETE); a correction is a new row. The database itself refuses an unbalanced
-- ledger transaction and a posting into a closed period.

-- Who the affiliate is as a customer, to refuse self-referrals: the booking system's
-- customer id and SHA-256 hex of the normalised email / phone (never the raw values).
ALTER TABLE affiliates ADD COLUMN customer_id TEXT;
ALTER TABLE affiliates ADD COLUMN email_sha256 TEXT;
ALTER TABLE affiliates ADD COLUMN phone_sha256 TEXT;

-- A booking (or lead, or purchase) of the booking system. Its first event stamps the
-- attribution; the row can never change afterwards.
CREATE TABLE bookings (
    id             INTEGER PRIMARY KEY,
    program_id     INTEGER NOT NULL REFERENCES programs (id),
    booking_id     TEXT    NOT NULL CHECK (length(booking_id) BETWEEN 1 AND 200),
    attribution    TEXT    NOT NULL CHECK (attribution IN ('attributed', 'none')),
    reason         TEXT,
    click_id       INTEGER REFERENCES clicks (id),
    affiliate_id   INTEGER REFERENCES affiliates (id),
    channel        TEXT,
    click_at       INTEGER,
    click_ip_hash  TEXT,
    customer_id    TEXT,
    stamped_at     INTEGER NOT NULL,
    UNIQUE (program_id, booking_id),
    CHECK ((attribution = 'attributed') = (affiliate_id IS NOT NULL AND click_id IS NOT NULL))
);
CREATE INDEX bookings_affiliate ON bookings (affiliate_id);
-- First-booking rules look up the customer's other bookings.
CREATE INDEX bookings_customer ON bookings (program_id, customer_id);
-- Fraud rule: bursts of bookings from one hashed IP.
CREATE INDEX bookings_click_ip ON bookings (program_id, click_ip_hash, stamped_at);

-- Every accepted webhook delivery; event_id is the de-duplication key, and one booking
-- takes each kind (and lead action) once.
CREATE TABLE conversion_events (
    id            INTEGER PRIMARY KEY,
    program_id    INTEGER NOT NULL REFERENCES programs (id),
    event_id      TEXT    NOT NULL CHECK (length(event_id) BETWEEN 1 AND 200),
    kind          TEXT    NOT NULL CHECK (kind IN ('lead', 'booking_paid', 'booking_serviced', 'booking_refunded', 'purchase')),
    action        TEXT,
    booking_ref   INTEGER NOT NULL REFERENCES bookings (id),
    occurred_at   INTEGER NOT NULL,
    received_at   INTEGER NOT NULL,
    amount_minor  INTEGER CHECK (amount_minor >= 0),
    currency      TEXT,
    customer_id   TEXT,
    email_domain  TEXT,
    outcome       TEXT    NOT NULL,
    reason        TEXT,
    UNIQUE (program_id, event_id)
);
CREATE UNIQUE INDEX conversion_events_once_per_booking
    ON conversion_events (booking_ref, kind, COALESCE(action, ''));
CREATE INDEX conversion_events_received ON conversion_events (program_id, received_at);

-- The double-entry ledger. A transaction's postings are inserted first and its header
-- last: the header's trigger checks that they sum to zero per unit, and a posting can
-- never be added to a sealed transaction. Postings reference the header through a
-- deferred foreign key, so postings without a header cannot be committed either.
CREATE TABLE ledger_transactions (
    id            INTEGER PRIMARY KEY,
    program_id    INTEGER NOT NULL REFERENCES programs (id),
    period        TEXT    NOT NULL CHECK (period GLOB '[0-9][0-9][0-9][0-9]-[01][0-9]'),
    kind          TEXT    NOT NULL CHECK (kind IN ('accrual', 'reversal', 'payout', 'settlement')),
    affiliate_id  INTEGER REFERENCES affiliates (id),
    booking_ref   INTEGER REFERENCES bookings (id),
    memo          TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX ledger_transactions_period ON ledger_transactions (program_id, period);

CREATE TABLE ledger_postings (
    id              INTEGER PRIMARY KEY,
    transaction_id  INTEGER NOT NULL REFERENCES ledger_transactions (id) DEFERRABLE INITIALLY DEFERRED,
    account         TEXT    NOT NULL,
    affiliate_id    INTEGER REFERENCES affiliates (id),
    unit            TEXT    NOT NULL,
    amount_minor    INTEGER NOT NULL CHECK (amount_minor <> 0)
);
CREATE INDEX ledger_postings_transaction ON ledger_postings (transaction_id);
CREATE INDEX ledger_postings_affiliate ON ledger_postings (affiliate_id, account);

-- A closed month. Once the row exists, no transaction can land in that period.
CREATE TABLE ledger_periods (
    program_id  INTEGER NOT NULL REFERENCES programs (id),
    period      TEXT    NOT NULL,
    closed_at   INTEGER NOT NULL,
    PRIMARY KEY (program_id, period)
);

-- The commission log: each status change of a booking's commission is a new line
-- (pending → earned → reversed, held → approved/rejected ...). The latest line is the
-- current status; earned and reversed lines carry their ledger transaction.
CREATE TABLE commissions (
    id              INTEGER PRIMARY KEY,
    program_id      INTEGER NOT NULL REFERENCES programs (id),
    booking_ref     INTEGER NOT NULL REFERENCES bookings (id),
    event_ref       INTEGER REFERENCES conversion_events (id),
    affiliate_id    INTEGER NOT NULL REFERENCES affiliates (id),
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'held', 'earned', 'reversed', 'refused')),
    unit            TEXT    NOT NULL,
    amount_minor    INTEGER NOT NULL,
    basis_minor     INTEGER,
    tier            TEXT,
    rule            TEXT,
    month           TEXT    NOT NULL,
    payable_at      INTEGER,
    transaction_id  INTEGER REFERENCES ledger_transactions (id),
    reason          TEXT,
    created_at      INTEGER NOT NULL
);
CREATE INDEX commissions_booking ON commissions (booking_ref, id);
CREATE INDEX commissions_affiliate_month ON commissions (affiliate_id, month, status);

-- What a month close computed per affiliate and unit (the payout report's lines).
CREATE TABLE payouts (
    id               INTEGER PRIMARY KEY,
    program_id       INTEGER NOT NULL REFERENCES programs (id),
    period           TEXT    NOT NULL,
    affiliate_id     INTEGER NOT NULL REFERENCES affiliates (id),
    unit             TEXT    NOT NULL,
    opening_minor    INTEGER NOT NULL,
    earned_minor     INTEGER NOT NULL,
    reversed_minor   INTEGER NOT NULL,
    held_minor       INTEGER NOT NULL,
    payout_minor     INTEGER NOT NULL CHECK (payout_minor >= 0),
    carried_minor    INTEGER NOT NULL,
    transaction_id   INTEGER REFERENCES ledger_transactions (id),
    UNIQUE (program_id, period, affiliate_id, unit)
);

-- A payout marked paid (money left, or credit / vouchers issued).
CREATE TABLE payout_payments (
    payout_id       INTEGER PRIMARY KEY REFERENCES payouts (id),
    paid_at         INTEGER NOT NULL,
    reference       TEXT,
    transaction_id  INTEGER NOT NULL REFERENCES ledger_transactions (id)
);

-- The fraud review queue: a held booking waits for one decision.
CREATE TABLE reviews (
    id           INTEGER PRIMARY KEY,
    program_id   INTEGER NOT NULL REFERENCES programs (id),
    booking_ref  INTEGER NOT NULL UNIQUE REFERENCES bookings (id),
    reason       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE TABLE review_decisions (
    review_id   INTEGER PRIMARY KEY REFERENCES reviews (id),
    decision    TEXT    NOT NULL CHECK (decision IN ('approved', 'rejected')),
    note        TEXT,
    decided_at  INTEGER NOT NULL
);

-- Running counters of the money side (the every-Nth review sample), updated under the
-- money lock.
CREATE TABLE money_counters (
    program_id  INTEGER NOT NULL REFERENCES programs (id),
    name        TEXT    NOT NULL,
    n           INTEGER NOT NULL,
    PRIMARY KEY (program_id, name)
);

-- Hashed IPs seen as the affiliate's own activity (its self-referrals; portal sign-ins).
CREATE TABLE affiliate_ips (
    affiliate_id  INTEGER NOT NULL REFERENCES affiliates (id),
    ip_hash       TEXT    NOT NULL,
    seen_at       INTEGER NOT NULL,
    PRIMARY KEY (affiliate_id, ip_hash)
);

CREATE TRIGGER ledger_postings_sealed BEFORE INSERT ON ledger_postings
WHEN EXISTS (SELECT 1 FROM ledger_transactions WHERE id = NEW.transaction_id)
BEGIN SELECT RAISE(ABORT, 'ledger transaction already sealed: postings cannot be added'); END;

CREATE TRIGGER ledger_transactions_balanced BEFORE INSERT ON ledger_transactions
WHEN (SELECT COUNT(*) FROM ledger_postings WHERE transaction_id = NEW.id) < 2
  OR EXISTS (SELECT 1 FROM ledger_postings WHERE transaction_id = NEW.id
             GROUP BY unit HAVING SUM(amount_minor) <> 0)
BEGIN SELECT RAISE(ABORT, 'unbalanced ledger transaction: postings must sum to zero per unit'); END;

CREATE TRIGGER ledger_transactions_open_period BEFORE INSERT ON ledger_transactions
WHEN EXISTS (SELECT 1 FROM ledger_periods WHERE program_id = NEW.program_id AND period = NEW.period)
BEGIN SELECT RAISE(ABORT, 'ledger period is closed: corrections go to the next open period'); END;

CREATE TRIGGER bookings_no_update BEFORE UPDATE ON bookings
BEGIN SELECT RAISE(ABORT, 'bookings is append-only: history is never edited'); END;
CREATE TRIGGER bookings_no_delete BEFORE DELETE ON bookings
BEGIN SELECT RAISE(ABORT, 'bookings is append-only: history is never edited'); END;

CREATE TRIGGER conversion_events_no_update BEFORE UPDATE ON conversion_events
BEGIN SELECT RAISE(ABORT, 'conversion_events is append-only: history is never edited'); END;
CREATE TRIGGER conversion_events_no_delete BEFORE DELETE ON conversion_events
BEGIN SELECT RAISE(ABORT, 'conversion_events is append-only: history is never edited'); END;

CREATE TRIGGER ledger_transactions_no_update BEFORE UPDATE ON ledger_transactions
BEGIN SELECT RAISE(ABORT, 'ledger_transactions is append-only: history is never edited'); END;
CREATE TRIGGER ledger_transactions_no_delete BEFORE DELETE ON ledger_transactions
BEGIN SELECT RAISE(ABORT, 'ledger_transactions is append-only: history is never edited'); END;

CREATE TRIGGER ledger_postings_no_update BEFORE UPDATE ON ledger_postings
BEGIN SELECT RAISE(ABORT, 'ledger_postings is append-only: history is never edited'); END;
CREATE TRIGGER ledger_postings_no_delete BEFORE DELETE ON ledger_postings
BEGIN SELECT RAISE(ABORT, 'ledger_postings is append-only: history is never edited'); END;

CREATE TRIGGER ledger_periods_no_update BEFORE UPDATE ON ledger_periods
BEGIN SELECT RAISE(ABORT, 'ledger_periods is append-only: history is never edited'); END;
CREATE TRIGGER ledger_periods_no_delete BEFORE DELETE ON ledger_periods
BEGIN SELECT RAISE(ABORT, 'ledger_periods is append-only: history is never edited'); END;

CREATE TRIGGER commissions_no_update BEFORE UPDATE ON commissions
BEGIN SELECT RAISE(ABORT, 'commissions is append-only: history is never edited'); END;
CREATE TRIGGER commissions_no_delete BEFORE DELETE ON commissions
BEGIN SELECT RAISE(ABORT, 'commissions is append-only: history is never edited'); END;

CREATE TRIGGER payouts_no_update BEFORE UPDATE ON payouts
BEGIN SELECT RAISE(ABORT, 'payouts is append-only: history is never edited'); END;
CREATE TRIGGER payouts_no_delete BEFORE DELETE ON payouts
BEGIN SELECT RAISE(ABORT, 'payouts is append-only: history is never edited'); END;

CREATE TRIGGER payout_payments_no_update BEFORE UPDATE ON payout_payments
BEGIN SELECT RAISE(ABORT, 'payout_payments is append-only: history is never edited'); END;
CREATE TRIGGER payout_payments_no_delete BEFORE DELETE ON payout_payments
BEGIN SELECT RAISE(ABORT, 'payout_payments is append-only: history is never edited'); END;

CREATE TRIGGER reviews_no_update BEFORE UPDATE ON reviews
BEGIN SELECT RAISE(ABORT, 'reviews is append-only: history is never edited'); END;
CREATE TRIGGER reviews_no_delete BEFORE DELETE ON reviews
BEGIN SELECT RAISE(ABORT, 'reviews is append-only: history is never edited'); END;

CREATE TRIGGER review_decisions_no_update BEFORE UPDATE ON review_decisions
BEGIN SELECT RAISE(ABORT, 'review_decisions is append-only: history is never edited'); END;
CREATE TRIGGER review_decisions_no_delete BEFORE DELETE ON review_decisions
BEGIN SELECT RAISE(ABORT, 'review_decisions is append-only: history is never edited'); END;
