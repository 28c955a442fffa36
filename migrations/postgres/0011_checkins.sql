-- Check-in at the counter (issue 20). A member card is an NTAG card whose URL is
-- https://{domain}/m/{members.code} with the UID+counter mirror; its UID is bound to one
-- member while active (a lost card is revoked and a new one bound). `last_counter` is
-- the highest mirror counter accepted from it: a tap whose counter does not rise above
-- it is a copy.
ALTER TABLE members ADD COLUMN code TEXT;
ALTER TABLE members ADD COLUMN first_name TEXT;
CREATE UNIQUE INDEX members_code ON members (program_id, code) WHERE code IS NOT NULL;

CREATE TABLE member_cards (
    id            BIGSERIAL PRIMARY KEY,
    program_id    BIGINT  NOT NULL REFERENCES programs (id),
    member_id     BIGINT  NOT NULL REFERENCES members (id),
    uid           TEXT    NOT NULL CHECK (length(uid) = 14),
    status        TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    last_counter  BIGINT  NOT NULL DEFAULT -1,
    created_at    BIGINT  NOT NULL,
    revoked_at    BIGINT
);
CREATE UNIQUE INDEX member_cards_one_active ON member_cards (program_id, uid) WHERE status = 'active';
CREATE INDEX member_cards_member ON member_cards (member_id);

-- Every check-in asked for, accepted or refused, append-only. At most one accepted row
-- per card and counter, whatever the retries or kiosks (the unique index): one tap uses
-- one visit. `idempotency_key` is the kiosk's key for one read of the card, so a retry
-- of the same read gets the same answer, while another read of the same counter is a
-- copy.
-- `visit` is which visit an accepted check-in used: rolled, included or unlimited.
CREATE TABLE checkins (
    id               BIGSERIAL PRIMARY KEY,
    program_id       BIGINT  NOT NULL REFERENCES programs (id),
    member_id        BIGINT  REFERENCES members (id),
    card_id          BIGINT  REFERENCES member_cards (id),
    kiosk_id         BIGINT  NOT NULL REFERENCES kiosks (id),
    counter          BIGINT  NOT NULL,
    accepted         BIGINT  NOT NULL CHECK (accepted IN (0, 1)),
    reason           TEXT,
    visit            TEXT    CHECK (visit IN ('rolled', 'included', 'unlimited')),
    period           TEXT,
    idempotency_key  TEXT,
    at               BIGINT  NOT NULL
);
CREATE UNIQUE INDEX checkins_one_visit_per_tap ON checkins (card_id, counter) WHERE accepted = 1;
CREATE UNIQUE INDEX checkins_kiosk_key ON checkins (kiosk_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX checkins_member ON checkins (member_id, at);

CREATE TRIGGER checkins_append_only BEFORE UPDATE OR DELETE ON checkins
    FOR EACH ROW EXECUTE FUNCTION tapkit_append_only();
CREATE TRIGGER checkins_no_truncate BEFORE TRUNCATE ON checkins
    FOR EACH STATEMENT EXECUTE FUNCTION tapkit_append_only();
