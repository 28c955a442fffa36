-- Admin API tokens are revoked by stamping them, not deleted (ids are never reused and
-- the audit trail stays).
ALTER TABLE api_tokens ADD COLUMN revoked_at BIGINT;
