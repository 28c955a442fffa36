-- Self-service referral links (issue 21). A referrer is an affiliate of kind `customer`
-- (a customer with a serviced booking, or a partner's owner) on the same /r/{code}
-- route. Its link may expire: after `expires_at` (Unix ms; NULL: never) a tap still
-- redirects to the booking site but earns nothing, and is counted apart
-- (reason `link_expired`). Deactivating a link is suspending the affiliate.
ALTER TABLE affiliates ADD COLUMN expires_at BIGINT;

-- The campaign a link was shared with (`?utm_source=…&utm_medium=…&utm_campaign=…`),
-- percent-decoded, without control characters, at most 100 characters each; shown in
-- analytics and exports.
ALTER TABLE clicks ADD COLUMN utm_source TEXT;
ALTER TABLE clicks ADD COLUMN utm_medium TEXT;
ALTER TABLE clicks ADD COLUMN utm_campaign TEXT;
