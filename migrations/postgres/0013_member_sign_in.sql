-- Members sign in to their page (/m/{code}) by emailed one-time link, as partners sign
-- in to the portal (issue 20): `subject` may now be 'member' (members.id).
ALTER TABLE sign_in_links DROP CONSTRAINT sign_in_links_subject_check;
ALTER TABLE sign_in_links ADD CONSTRAINT sign_in_links_subject_check CHECK (subject IN ('admin', 'partner', 'member'));
ALTER TABLE web_sessions DROP CONSTRAINT web_sessions_subject_check;
ALTER TABLE web_sessions ADD CONSTRAINT web_sessions_subject_check CHECK (subject IN ('admin', 'partner', 'member'));
