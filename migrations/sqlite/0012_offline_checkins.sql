-- Offline check-ins (issue 20). A kiosk that cannot reach the server checks members in
-- from its signed roster and queues the check-ins on disk; when the server is back it
-- submits them, and the visit was already given at the desk. `offline_at` is when the
-- kiosk granted it (Unix ms, the kiosk's clock). A visit the server would have refused
-- (none left, paused, past due beyond grace, lapsed, cancelled, a revoked card) is
-- recorded as accepted with `overdraft` naming why, for the admin to see: nothing the
-- desk gave is dropped. A second accepted check-in of one tap is still impossible (the
-- unique index of 0011).
ALTER TABLE checkins ADD COLUMN offline_at BIGINT;
ALTER TABLE checkins ADD COLUMN overdraft TEXT;
CREATE INDEX checkins_overdraft ON checkins (program_id, at) WHERE overdraft IS NOT NULL;
