-- Click ids are handed out in blocks to the click writer (one UPDATE per few thousand
-- clicks), so a batch of clicks is one multi-row INSERT with known ids, and several
-- replicas never collide.
CREATE TABLE id_blocks (
    name     TEXT    PRIMARY KEY,
    next_id  BIGINT  NOT NULL
);
INSERT INTO id_blocks (name, next_id) SELECT 'clicks', COALESCE(MAX(id), 0) + 1 FROM clicks;

-- Bumped by every change the /r/ hop caches (affiliates, kill-switches); each replica
-- polls it and reloads its in-memory directory when it moves.
CREATE TABLE change_epoch (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    n   BIGINT  NOT NULL
);
INSERT INTO change_epoch (id, n) VALUES (1, 0);
