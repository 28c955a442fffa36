-- Members sign in to their page (/m/{code}) by emailed one-time link, as partners sign
-- in to the portal (issue 20): `subject` may now be 'member' (members.id). SQLite cannot
-- change a CHECK, so both tables are rebuilt with their rows.
CREATE TABLE sign_in_links_new (
    token_hash  TEXT    PRIMARY KEY,
    subject     TEXT    NOT NULL CHECK (subject IN ('admin', 'partner', 'member')),
    subject_id  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    created_at  INTEGER NOT NULL
);
INSERT INTO sign_in_links_new SELECT token_hash, subject, subject_id, expires_at, used_at, created_at FROM sign_in_links;
DROP TABLE sign_in_links;
ALTER TABLE sign_in_links_new RENAME TO sign_in_links;
CREATE INDEX sign_in_links_subject ON sign_in_links (subject, subject_id, created_at);

CREATE TABLE web_sessions_new (
    id_hash     TEXT    PRIMARY KEY,
    subject     TEXT    NOT NULL CHECK (subject IN ('admin', 'partner', 'member')),
    subject_id  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
INSERT INTO web_sessions_new SELECT id_hash, subject, subject_id, created_at, expires_at FROM web_sessions;
DROP TABLE web_sessions;
ALTER TABLE web_sessions_new RENAME TO web_sessions;
