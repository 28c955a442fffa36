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
ALTER TABLE affiliates ADD COLUMN customer_id TEXT,
    ADD COLUMN email_sha256 TEXT,
    ADD COLUMN phone_sha256 TEXT;

-- A booking (or lead, or purchase) of the booking system. Its first event stamps the
-- attribution; the row can never change afterwards.
CREATE TABLE bookings (
    id             BIGSERIAL PRIMARY KEY,
    program_id     BIGINT NOT NULL REFERENCES programs (id),
    booking_id     TEXT    NOT NULL CHECK (char_length(booking_id) BETWEEN 1 AND 200),
    attribution    TEXT    NOT NULL CHECK (attribution IN ('attributed', 'none')),
    reason         TEXT,
    click_id       BIGINT REFERENCES clicks (id),
    affiliate_id   BIGINT REFERENCES affiliates (id),
    channel        TEXT,
    click_at       BIGINT,
    click_ip_hash  TEXT,
    customer_id    TEXT,
    stamped_at     BIGINT NOT NULL,
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
    id            BIGSERIAL PRIMARY KEY,
    program_id    BIGINT NOT NULL REFERENCES programs (id),
    event_id      TEXT    NOT NULL CHECK (char_length(event_id) BETWEEN 1 AND 200),
    kind          TEXT    NOT NULL CHECK (kind IN ('lead', 'booking_paid', 'booking_serviced', 'booking_refunded', 'purchase')),
    action        TEXT,
    booking_ref   BIGINT NOT NULL REFERENCES bookings (id),
    occurred_at   BIGINT NOT NULL,
    received_at   BIGINT NOT NULL,
    amount_minor  BIGINT CHECK (amount_minor >= 0),
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
    id            BIGSERIAL PRIMARY KEY,
    program_id    BIGINT NOT NULL REFERENCES programs (id),
    period        TEXT    NOT NULL CHECK (period ~ '^[0-9]{4}-[01][0-9]$'),
    kind          TEXT    NOT NULL CHECK (kind IN ('accrual', 'reversal', 'payout', 'settlement')),
    affiliate_id  BIGINT REFERENCES affiliates (id),
    booking_ref   BIGINT REFERENCES bookings (id),
    memo          TEXT    NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX ledger_transactions_period ON ledger_transactions (program_id, period);

CREATE TABLE ledger_postings (
    id              BIGSERIAL PRIMARY KEY,
    transaction_id  BIGINT NOT NULL REFERENCES ledger_transactions (id) DEFERRABLE INITIALLY DEFERRED,
    account         TEXT    NOT NULL,
    affiliate_id    BIGINT REFERENCES affiliates (id),
    unit            TEXT    NOT NULL,
    amount_minor    BIGINT NOT NULL CHECK (amount_minor <> 0)
);
CREATE INDEX ledger_postings_transaction ON ledger_postings (transaction_id);
CREATE INDEX ledger_postings_affiliate ON ledger_postings (affiliate_id, account);

-- A closed month. Once the row exists, no transaction can land in that period.
CREATE TABLE ledger_periods (
    program_id  BIGINT NOT NULL REFERENCES programs (id),
    period      TEXT    NOT NULL,
    closed_at   BIGINT NOT NULL,
    PRIMARY KEY (program_id, period)
);

-- The commission log: each status change of a booking's commission is a new line
-- (pending → earned → reversed, held → approved/rejected ...). The latest line is the
-- current status; earned and reversed lines carry their ledger transaction.
CREATE TABLE commissions (
    id              BIGSERIAL PRIMARY KEY,
    program_id      BIGINT NOT NULL REFERENCES programs (id),
    booking_ref     BIGINT NOT NULL REFERENCES bookings (id),
    event_ref       BIGINT REFERENCES conversion_events (id),
    affiliate_id    BIGINT NOT NULL REFERENCES affiliates (id),
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'held', 'earned', 'reversed', 'refused')),
    unit            TEXT    NOT NULL,
    amount_minor    BIGINT NOT NULL,
    basis_minor     BIGINT,
    tier            TEXT,
    rule            TEXT,
    month           TEXT    NOT NULL,
    payable_at      BIGINT,
    transaction_id  BIGINT REFERENCES ledger_transactions (id),
    reason          TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX commissions_booking ON commissions (booking_ref, id);
CREATE INDEX commissions_affiliate_month ON commissions (affiliate_id, month, status);

-- What a month close computed per affiliate and unit (the payout report's lines).
CREATE TABLE payouts (
    id               BIGSERIAL PRIMARY KEY,
    program_id       BIGINT NOT NULL REFERENCES programs (id),
    period           TEXT    NOT NULL,
    affiliate_id     BIGINT NOT NULL REFERENCES affiliates (id),
    unit             TEXT    NOT NULL,
    opening_minor    BIGINT NOT NULL,
    earned_minor     BIGINT NOT NULL,
    reversed_minor   BIGINT NOT NULL,
    held_minor       BIGINT NOT NULL,
    payout_minor     BIGINT NOT NULL CHECK (payout_minor >= 0),
    carried_minor    BIGINT NOT NULL,
    transaction_id   BIGINT REFERENCES ledger_transactions (id),
    UNIQUE (program_id, period, affiliate_id, unit)
);

-- A payout marked paid (money left, or credit / vouchers issued).
CREATE TABLE payout_payments (
    payout_id       BIGINT PRIMARY KEY REFERENCES payouts (id),
    paid_at         BIGINT NOT NULL,
    reference       TEXT,
    transaction_id  BIGINT NOT NULL REFERENCES ledger_transactions (id)
);

-- The fraud review queue: a held booking waits for one decision.
CREATE TABLE reviews (
    id           BIGSERIAL PRIMARY KEY,
    program_id   BIGINT NOT NULL REFERENCES programs (id),
    booking_ref  BIGINT NOT NULL UNIQUE REFERENCES bookings (id),
    reason       TEXT    NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE TABLE review_decisions (
    review_id   BIGINT PRIMARY KEY REFERENCES reviews (id),
    decision    TEXT    NOT NULL CHECK (decision IN ('approved', 'rejected')),
    note        TEXT,
    decided_at  BIGINT NOT NULL
);

-- Running counters of the money side (the every-Nth review sample), updated under the
-- money lock.
CREATE TABLE money_counters (
    program_id  BIGINT NOT NULL REFERENCES programs (id),
    name        TEXT    NOT NULL,
    n           BIGINT NOT NULL,
    PRIMARY KEY (program_id, name)
);

-- Hashed IPs seen as the affiliate's own activity (its self-referrals; portal sign-ins).
CREATE TABLE affiliate_ips (
    affiliate_id  BIGINT NOT NULL REFERENCES affiliates (id),
    ip_hash       TEXT    NOT NULL,
    seen_at       BIGINT NOT NULL,
    PRIMARY KEY (affiliate_id, ip_hash)
);

CREATE FUNCTION tapkit_ledger_posting_unsealed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM ledger_transactions WHERE id = NEW.transaction_id) THEN
        RAISE EXCEPTION 'ledger transaction already sealed: postings cannot be added';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER ledger_postings_sealed BEFORE INSERT ON ledger_postings
    FOR EACH ROW EXECUTE FUNCTION tapkit_ledger_posting_unsealed();

CREATE FUNCTION tapkit_ledger_transaction_valid() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT COUNT(*) FROM ledger_postings WHERE transaction_id = NEW.id) < 2
       OR EXISTS (SELECT 1 FROM ledger_postings WHERE transaction_id = NEW.id
                  GROUP BY unit HAVING SUM(amount_minor) <> 0) THEN
        RAISE EXCEPTION 'unbalanced ledger transaction: postings must sum to zero per unit';
    END IF;
    IF EXISTS (SELECT 1 FROM ledger_periods WHERE program_id = NEW.program_id AND period = NEW.period) THEN
        RAISE EXCEPTION 'ledger period is closed: corrections go to the next open period';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER ledger_transactions_valid BEFORE INSERT ON ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION tapkit_ledger_transaction_valid();

CREATE FUNCTION tapkit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: history is never edited', TG_TABLE_NAME;
END $$;
CREATE TRIGGER bookings_append_only BEFORE UPDATE OR DELETE ON bookings
    FOR EACH ROW EXECUTE FUNCTION tapkit_append_only();
CREATE TRIGGER bookings_no_truncate BEFORE TRUNCATE ON bookings
    FOR EACH STATEMENT EXECUTE FUNCTION tapkit_append_only();
CREATE TRIGGER conversion_events_append_only BEFORE UPDATE OR DELETE ON conversion_events
    FOR EACH ROW EXECUTE FUNCTION tapkit_append_only();
CREATE TRIGGER conversion_events_no_truncate BEFORE TRUNCATE ON conversion_events
    FOR EACH STATEMENT EXECUTE FUNCTION tapkit_append_only();
CREATE TRIGGER ledger_transactions_append_only BEFORE UPDATE OR DELETE ON ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION tapkit_append_only();
CREATE TRIGGER ledger_transactions_no_truncate BEFORE TRUNCATE ON ledger_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION tapkit_append_only();
CREATE TRIGGER ledger_postings_append_only BEFORE UPDATE OR DELETE ON ledger_postings
    FOR EACH ROW EXECUTE FUNCTION tapkit_append_only();
CREATE TRIGGER ledger_postings_no_truncate BEFORE TRUNCATE ON ledger_postings
    FOR EACH STATEMENT EXECUTE FUNCTION tapkit_append_only();
CREATE TRIGGER ledger_periods_append_only BEFORE UPDATE OR DELETE ON ledger_periods
    FOR EACH ROW EXECUTE FUNCTION tapkit_append_only();
CREATE TRIGGER ledger_periods_no_truncate BEFORE TRUNCATE ON ledger_periods
    FOR EACH STATEMENT EXECUTE FUNCTION tapkit_append_only();
CREATE TRIGGER commissions_append_only BEFORE UPDATE OR DELETE ON commissions
    FOR EACH ROW EXECUTE FUNCTION tapkit_append_only();
CREATE TRIGGER commissions_no_truncate BEFORE TRUNCATE ON commissions
    FOR EACH STATEMENT EXECUTE FUNCTION tapkit_append_only();
CREATE TRIGGER payouts_append_only BEFORE UPDATE OR DELETE ON payouts
    FOR EACH ROW EXECUTE FUNCTION tapkit_append_only();
CREATE TRIGGER payouts_no_truncate BEFORE TRUNCATE ON payouts
    FOR EACH STATEMENT EXECUTE FUNCTION tapkit_append_only();
CREATE TRIGGER payout_payments_append_only BEFORE UPDATE OR DELETE ON payout_payments
    FOR EACH ROW EXECUTE FUNCTION tapkit_append_only();
CREATE TRIGGER payout_payments_no_truncate BEFORE TRUNCATE ON payout_payments
    FOR EACH STATEMENT EXECUTE FUNCTION tapkit_append_only();
CREATE TRIGGER reviews_append_only BEFORE UPDATE OR DELETE ON reviews
    FOR EACH ROW EXECUTE FUNCTION tapkit_append_only();
CREATE TRIGGER reviews_no_truncate BEFORE TRUNCATE ON reviews
    FOR EACH STATEMENT EXECUTE FUNCTION tapkit_append_only();
CREATE TRIGGER review_decisions_append_only BEFORE UPDATE OR DELETE ON review_decisions
    FOR EACH ROW EXECUTE FUNCTION tapkit_append_only();
CREATE TRIGGER review_decisions_no_truncate BEFORE TRUNCATE ON review_decisions
    FOR EACH STATEMENT EXECUTE FUNCTION tapkit_append_only();
