-- Memberships (issue 19). A member holds one plan of the program's config
-- ([program.membership], plans by id; a plan in use cannot leave the config). Billing
-- periods are calendar months, `period` is the current one as 'YYYY-MM'. The period's
-- visits live on the row so a check-in is one conditional UPDATE: `visits_included` is
-- NULL for an unlimited plan; `visits_rolled` came over from the previous period (used
-- first, expire with this one). `status` is the member's standing: active, past_due
-- (a charge failed on `failed_on`, a day number, and `retries` retries failed since),
-- lapsed, paused (until the period `paused_until`, exclusive) or cancelled.
-- `pending_plan` is a downgrade that waits for the next period; `cancel_at_period_end`
-- a cancellation that does. `affiliate_id` is the partner who brought the member.
-- One membership per customer and program is live at a time (the partial index).
CREATE TABLE members (
    id                    BIGSERIAL PRIMARY KEY,
    program_id            BIGINT  NOT NULL REFERENCES programs (id),
    customer_id           TEXT    NOT NULL CHECK (char_length(customer_id) BETWEEN 1 AND 200),
    email                 TEXT    NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254),
    plan                  TEXT    NOT NULL CHECK (char_length(plan) BETWEEN 1 AND 32),
    pending_plan          TEXT,
    status                TEXT    NOT NULL DEFAULT 'active'
                          CHECK (status IN ('active', 'past_due', 'lapsed', 'paused', 'cancelled')),
    status_reason         TEXT,
    failed_on             BIGINT,
    retries               BIGINT  NOT NULL DEFAULT 0,
    paused_until          TEXT,
    cancel_at_period_end  BIGINT  NOT NULL DEFAULT 0,
    period                TEXT    NOT NULL CHECK (char_length(period) = 7),
    visits_included       BIGINT  CHECK (visits_included >= 0),
    visits_used           BIGINT  NOT NULL DEFAULT 0 CHECK (visits_used >= 0),
    visits_rolled         BIGINT  NOT NULL DEFAULT 0 CHECK (visits_rolled >= 0),
    visits_rolled_used    BIGINT  NOT NULL DEFAULT 0 CHECK (visits_rolled_used BETWEEN 0 AND visits_rolled),
    affiliate_id          BIGINT  REFERENCES affiliates (id),
    created_at            BIGINT  NOT NULL,
    updated_at            BIGINT  NOT NULL
);
CREATE UNIQUE INDEX members_one_live ON members (program_id, customer_id)
    WHERE status IN ('active', 'past_due', 'paused');
CREATE INDEX members_affiliate ON members (affiliate_id);

-- What a member is charged. One `first` or `renewal` invoice per member and period (the
-- renewal run is idempotent across replicas by this index); `upgrade` invoices are the
-- prorated differences of mid-period upgrades. Amounts are integer minor units.
CREATE TABLE invoices (
    id            BIGSERIAL PRIMARY KEY,
    member_id     BIGINT  NOT NULL REFERENCES members (id),
    period        TEXT    NOT NULL CHECK (char_length(period) = 7),
    kind          TEXT    NOT NULL CHECK (kind IN ('first', 'renewal', 'upgrade')),
    plan          TEXT    NOT NULL,
    amount_minor  BIGINT  NOT NULL CHECK (amount_minor >= 0),
    currency      TEXT    NOT NULL,
    status        TEXT    NOT NULL DEFAULT 'open'
                  CHECK (status IN ('open', 'paid', 'failed', 'refunded', 'void')),
    created_at    BIGINT  NOT NULL,
    paid_at       BIGINT
);
CREATE UNIQUE INDEX invoices_one_per_period ON invoices (member_id, period)
    WHERE kind IN ('first', 'renewal');
CREATE INDEX invoices_open ON invoices (status, member_id);
