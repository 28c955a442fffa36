-- Programs (a brand's referral program), affiliates, their NFC cards, clicks,
-- channel kill-switches and hashed admin API tokens. Times are Unix milliseconds.
CREATE TABLE programs (
    id           BIGSERIAL PRIMARY KEY,
    name         TEXT    NOT NULL,
    domain       TEXT    NOT NULL,
    booking_url  TEXT    NOT NULL,
    cookie_days  BIGINT  NOT NULL DEFAULT 30 CHECK (cookie_days BETWEEN 1 AND 400),
    last_touch   BIGINT  NOT NULL DEFAULT 0 CHECK (last_touch IN (0, 1))
);

CREATE TABLE affiliates (
    id          BIGSERIAL PRIMARY KEY,
    program_id  BIGINT  NOT NULL REFERENCES programs (id),
    name        TEXT    NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    kind        TEXT    NOT NULL CHECK (kind IN ('business', 'influencer', 'customer')),
    status      TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    code        TEXT    NOT NULL UNIQUE,
    tier        TEXT,
    contact     TEXT,
    created_at  BIGINT  NOT NULL
);

CREATE TABLE cards (
    id              BIGSERIAL PRIMARY KEY,
    uid             TEXT    NOT NULL,
    affiliate_id    BIGINT  NOT NULL REFERENCES affiliates (id),
    status          TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'lost', 'retired')),
    provisioned_at  BIGINT  NOT NULL,
    ended_at        BIGINT,
    last_counter    BIGINT
);
-- A card UID belongs to one affiliate at a time; re-binding needs a retire first.
CREATE UNIQUE INDEX cards_one_active_binding ON cards (uid) WHERE status = 'active';

CREATE TABLE clicks (
    id            BIGSERIAL PRIMARY KEY,
    at            BIGINT  NOT NULL,
    code          TEXT    NOT NULL,
    affiliate_id  BIGINT  REFERENCES affiliates (id),
    channel       TEXT    NOT NULL,
    card_id       BIGINT  REFERENCES cards (id),
    counter       BIGINT,
    user_agent    TEXT,
    referer       TEXT,
    ip_hash       TEXT    NOT NULL,
    outcome       TEXT    NOT NULL,
    reason        TEXT
);
CREATE INDEX clicks_affiliate_at ON clicks (affiliate_id, at);

CREATE TABLE kill_switches (
    id            BIGSERIAL PRIMARY KEY,
    program_id    BIGINT  NOT NULL REFERENCES programs (id),
    affiliate_id  BIGINT  REFERENCES affiliates (id),
    channel       TEXT    NOT NULL CHECK (channel IN ('nfc', 'qr', 'kiosk', 'link')),
    created_at    BIGINT  NOT NULL
);

CREATE TABLE api_tokens (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT    NOT NULL,
    token_hash  TEXT    NOT NULL UNIQUE,
    created_at  BIGINT  NOT NULL
);
