-- Self-service referrers (/refer): the keyed hash of the IP address and user agent a
-- referrer signed up from (HMAC with the server's key; never the address itself), so
-- one device signs up at most a few referrers a day (program.referrer_signups_per_day).
ALTER TABLE affiliates ADD COLUMN signup_key TEXT;
CREATE INDEX affiliates_signup_key ON affiliates (signup_key, created_at);

-- When the referrer turned referral emails off (the one-click unsubscribe link in each
-- "your friend booked" and "your reward is ready" email); NULL: they are on.
ALTER TABLE affiliates ADD COLUMN emails_off_at BIGINT;
