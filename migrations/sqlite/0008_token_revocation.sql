-- Admin API tokens are revoked by stamping them, not deleted: a revoked id is never
-- reused by a later token (SQLite reuses the highest rowid), and the audit trail stays.
ALTER TABLE api_tokens ADD COLUMN revoked_at INTEGER;
