-- Programs (a brand's referral program), affiliates, their NFC cards, clicks,
-- channel kill-switches and hashed admin API tokens. Times are Unix milliseconds.
CREATE TABLE programs (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL,
    domain       TEXT    NOT NULL,
    booking_url  TEXT    NOT NULL,
    cookie_days  INTEGER NOT NULL DEFAULT 30 CHECK (cookie_days BETWEEN 1 AND 400),
    last_touch   INTEGER NOT NULL DEFAULT 0 CHECK (last_touch IN (0, 1))
);

CREATE TABLE affiliates (
    id          INTEGER PRIMARY KEY,
    program_id  INTEGER NOT NULL REFERENCES programs (id),
    name        TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind        TEXT    NOT NULL CHECK (kind IN ('business', 'influencer', 'customer')),
    status      TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    code        TEXT    NOT NULL UNIQUE,
    tier        TEXT,
    contact     TEXT,
    created_at  INTEGER NOT NULL
);

CREATE TABLE cards (
    id              INTEGER PRIMARY KEY,
    uid             TEXT    NOT NULL,
    affiliate_id    INTEGER NOT NULL REFERENCES affiliates (id),
    status          TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'lost', 'retired')),
    provisioned_at  INTEGER NOT NULL,
    ended_at        INTEGER,
    last_counter    INTEGER
);
-- A card UID belongs to one affiliate at a time; re-binding needs a retire first.
CREATE UNIQUE INDEX cards_one_active_binding ON cards (uid) WHERE status = 'active';

CREATE TABLE clicks (
    id            INTEGER PRIMARY KEY,
    at            INTEGER NOT NULL,
    code          TEXT    NOT NULL,
    affiliate_id  INTEGER REFERENCES affiliates (id),
    channel       TEXT    NOT NULL,
    card_id       INTEGER REFERENCES cards (id),
    counter       INTEGER,
    user_agent    TEXT,
    referer       TEXT,
    ip_hash       TEXT    NOT NULL,
    outcome       TEXT    NOT NULL,
    reason        TEXT
);
CREATE INDEX clicks_affiliate_at ON clicks (affiliate_id, at);

CREATE TABLE kill_switches (
    id            INTEGER PRIMARY KEY,
    program_id    INTEGER NOT NULL REFERENCES programs (id),
    affiliate_id  INTEGER REFERENCES affiliates (id),
    channel       TEXT    NOT NULL CHECK (channel IN ('nfc', 'qr', 'kiosk', 'link')),
    created_at    INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL,
    token_hash  TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);
