-- The audit log becomes a hash chain (package auditchain): each row gets
-- its position in the chain (pos), the hash of the row before it
-- (prev_hash) and its own hash, SHA-256(prev_hash || canonical content).
-- audit_head is the chain's last position and hash; a row is chained in
-- the transaction that writes it, after reading and before updating the
-- head. The rows written before this migration (id <= legacy_upto) are
-- chained, in id order, by the first start after it (sqlite.Open), since
-- SQLite has no SHA-256 of its own. A row with pos NULL and a higher id
-- was not written by tokend.
--
-- audit_checkpoints records each retention cut: the position, hash and
-- time of the last row deleted, where the chain now starts, and an HMAC
-- of them keyed from the pepper (never stored here).

-- +goose Up
ALTER TABLE events ADD COLUMN pos INTEGER;
ALTER TABLE events ADD COLUMN prev_hash BLOB;
ALTER TABLE events ADD COLUMN hash BLOB;
CREATE UNIQUE INDEX events_pos ON events (pos);
CREATE INDEX events_unchained ON events (id) WHERE pos IS NULL;

CREATE TABLE audit_head (
    one         INTEGER PRIMARY KEY CHECK (one = 1),
    pos         INTEGER NOT NULL,
    hash        BLOB    NOT NULL,
    legacy_upto INTEGER NOT NULL
) STRICT;
INSERT INTO audit_head (one, pos, hash, legacy_upto)
SELECT 1, 0, zeroblob(32), coalesce(max(id), 0) FROM events;

CREATE TABLE audit_checkpoints (
    pos    INTEGER PRIMARY KEY,
    hash   BLOB    NOT NULL,
    time   INTEGER NOT NULL,
    cut_at INTEGER NOT NULL,
    mac    BLOB    NOT NULL
) STRICT;

-- +goose Down
DROP TABLE audit_checkpoints;
DROP TABLE audit_head;
DROP INDEX events_unchained;
DROP INDEX events_pos;
ALTER TABLE events DROP COLUMN hash;
ALTER TABLE events DROP COLUMN prev_hash;
ALTER TABLE events DROP COLUMN pos;
