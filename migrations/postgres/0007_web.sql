-- The admin console and the partner portal (issue 6).
-- Admins sign in with a password (argon2id PHC string; NULL: one-time links only) or a
-- one-time link. Partners sign in with one-time links only.
CREATE TABLE admins (
    id             BIGSERIAL PRIMARY KEY,
    email          TEXT    NOT NULL UNIQUE CHECK (length(email) BETWEEN 3 AND 200),
    password_hash  TEXT,
    created_at     BIGINT  NOT NULL
);

-- One-time sign-in links: only the SHA-256 of the link's secret is kept. `subject` is
-- who signs in: an admin (admins.id) or a partner (affiliates.id).
CREATE TABLE sign_in_links (
    token_hash  TEXT    PRIMARY KEY,
    subject     TEXT    NOT NULL CHECK (subject IN ('admin', 'partner')),
    subject_id  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL,
    used_at     BIGINT,
    created_at  BIGINT  NOT NULL
);
CREATE INDEX sign_in_links_subject ON sign_in_links (subject, subject_id, created_at);

-- Browser sessions: the cookie carries a random id (and a MAC); only its SHA-256 is kept,
-- so a copy of the database signs nobody in. Sign-out deletes the row.
CREATE TABLE web_sessions (
    id_hash     TEXT    PRIMARY KEY,
    subject     TEXT    NOT NULL CHECK (subject IN ('admin', 'partner')),
    subject_id  BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL
);
CREATE INDEX clicks_at ON clicks (at);
