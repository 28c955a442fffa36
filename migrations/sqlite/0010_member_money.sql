-- Membership money (issue 19): paid invoices and refunds in the double-entry ledger, and
-- the commissions partners earn on the members they brought.
--
-- A ledger transaction of a member's invoice names it in `invoice_ref` (a paid invoice
-- is a `settlement`: cash in, membership revenue; a refund a `reversal` of it). A
-- membership commission is an `accrual` from commission_expense (or the credit /
-- voucher pool) to the partner's `partner_payable`, so month close pays it out with
-- the booking commissions; its clawback on a refund is a `reversal`.
ALTER TABLE ledger_transactions ADD COLUMN invoice_ref INTEGER REFERENCES invoices (id);
CREATE INDEX ledger_transactions_invoice ON ledger_transactions (invoice_ref);

-- The signed `membership_started` event a member came from: once per program, so a
-- redelivered event cannot create a second member.
ALTER TABLE members ADD COLUMN event_id TEXT;
CREATE UNIQUE INDEX members_event ON members (program_id, event_id) WHERE event_id IS NOT NULL;

ALTER TABLE invoices ADD COLUMN refunded_at INTEGER;
ALTER TABLE invoices ADD COLUMN reference TEXT;
-- Charges through the brand's payment system (`program.payments.charge_url`): how many
-- attempts were answered "failed" (the next attempt's idempotency key counts on from
-- it), when the last answer came, and why it failed.
ALTER TABLE invoices ADD COLUMN charge_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE invoices ADD COLUMN last_charge_at INTEGER;
ALTER TABLE invoices ADD COLUMN failure TEXT;

-- The commission log of memberships: an `earned` line per paid invoice that a rule
-- with on = "membership" pays, and a `reversed` line when that invoice is refunded.
-- Each invoice earns (and loses) each unit at most once: the unique index, which holds
-- against retries and a second replica alike. Append-only, like `commissions`.
CREATE TABLE member_commissions (
    id              INTEGER PRIMARY KEY,
    program_id      INTEGER NOT NULL REFERENCES programs (id),
    member_id       INTEGER NOT NULL REFERENCES members (id),
    invoice_id      INTEGER NOT NULL REFERENCES invoices (id),
    affiliate_id    INTEGER NOT NULL REFERENCES affiliates (id),
    status          TEXT    NOT NULL CHECK (status IN ('earned', 'reversed')),
    unit            TEXT    NOT NULL,
    amount_minor    INTEGER NOT NULL,
    basis_minor     INTEGER NOT NULL,
    rule            TEXT    NOT NULL,
    month           TEXT    NOT NULL,
    transaction_id  INTEGER NOT NULL REFERENCES ledger_transactions (id),
    created_at      INTEGER NOT NULL,
    UNIQUE (invoice_id, unit, status)
);
CREATE INDEX member_commissions_member ON member_commissions (member_id, status);
CREATE INDEX member_commissions_affiliate ON member_commissions (affiliate_id, month);

CREATE TRIGGER member_commissions_no_update BEFORE UPDATE ON member_commissions
BEGIN SELECT RAISE(ABORT, 'member_commissions is append-only: history is never edited'); END;
CREATE TRIGGER member_commissions_no_delete BEFORE DELETE ON member_commissions
BEGIN SELECT RAISE(ABORT, 'member_commissions is append-only: history is never edited'); END;
