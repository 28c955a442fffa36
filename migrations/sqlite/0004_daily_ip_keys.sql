-- The key of the keyed IP hash rotates every UTC day: a random key per day, shared by
-- every replica through this table and deleted two days later. Once deleted, the hashes
-- of that day can no longer be tested against candidate IPs, not even with the server
-- secret. Unique visitors are counted within a day, so they are unaffected.
CREATE TABLE ip_keys (
    day      INTEGER PRIMARY KEY,
    key_hex  TEXT    NOT NULL CHECK (length(key_hex) = 64)
);
