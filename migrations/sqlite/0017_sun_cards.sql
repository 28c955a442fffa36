-- NTAG 424 DNA cards (SUN): the key version (1..255) the card was keyed under, from
-- the brand's key file. NULL: an NTAG21x card, whose taps carry the plain ?m= mirror.
-- A 424 card's taps verify only under this version's keys, and an ?m= tap naming its
-- UID is a forgery. last_counter holds its SDMReadCtr, which restarts when a card is
-- re-keyed, so a re-keyed card is a new binding (retire, then register).
ALTER TABLE cards ADD COLUMN key_version INTEGER;
