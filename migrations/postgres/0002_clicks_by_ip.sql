-- The per-IP rate limit counts a hashed IP's clicks in the last hour; every replica
-- asks the same database, so the limit holds across replicas.
CREATE INDEX clicks_ip_at ON clicks (ip_hash, at);
