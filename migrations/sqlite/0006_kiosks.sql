-- Counter displays (display-kiosk). A kiosk belongs to one affiliate. Its secret is never
-- stored: the server derives it from its own secret, the kiosk id and `generation`
-- (a new enrolment bumps the generation, so a lost or replaced box's secret dies).
-- The one-time enrolment code is stored as its SHA-256; `enrollment_used` marks it used
-- (kept, so a second try is told "already used" rather than "unknown").
-- `display` holds the admin's JSON overrides of the display config; every change bumps
-- `config_version`, which the kiosk learns from its heartbeat. The last heartbeat's
-- report is kept in the last_* columns; online/offline is derived from last_seen.
CREATE TABLE kiosks (
    id                     INTEGER PRIMARY KEY,
    program_id             INTEGER NOT NULL REFERENCES programs (id),
    affiliate_id           INTEGER NOT NULL REFERENCES affiliates (id),
    name                   TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    status                 TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'retired')),
    generation             INTEGER NOT NULL DEFAULT 0,
    enrollment_code_hash   TEXT    UNIQUE,
    enrollment_expires_at  INTEGER,
    enrollment_used        INTEGER NOT NULL DEFAULT 0,
    enrolled_at            INTEGER,
    display                TEXT    NOT NULL DEFAULT '{}',
    config_version         INTEGER NOT NULL DEFAULT 1,
    last_seen              INTEGER,
    last_version           TEXT,
    last_uptime_secs       INTEGER,
    last_config_version    TEXT,
    last_error             TEXT,
    clock_skew_ms          INTEGER,
    created_at             INTEGER NOT NULL
);
CREATE INDEX kiosks_affiliate ON kiosks (affiliate_id);
