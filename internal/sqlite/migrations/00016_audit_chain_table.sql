-- The audit chain moves out of events into a narrow table of its own,
-- audit_chain: one row per chained event, its position, the hash of the
-- row before it and its own hash, exactly as 00015 stored them in events
-- (so the chain, and every hash an export recorded, stays the same). On
-- PostgreSQL this makes chaining a small INSERT instead of an UPDATE of
-- the wide events row and every index of it; SQLite follows so that one
-- SQL core serves both.
--
-- audit_head.chained_upto is the highest event id the chain has taken in
-- (SQLite chains each row in the transaction that writes it, so it is the
-- last id written by tokend). An event with a higher id, or with a lower
-- one that is neither in the chain nor in audit_backlog, was not written
-- by tokend. audit_backlog holds the ids of the rows 00015 left for the
-- first start to chain (those written before it, id <= legacy_upto),
-- which chains them in id order; legacy_upto is no longer read.

-- +goose Up
CREATE TABLE audit_chain (
    pos       INTEGER PRIMARY KEY,
    event_id  INTEGER NOT NULL UNIQUE,
    prev_hash BLOB    NOT NULL,
    hash      BLOB    NOT NULL
) STRICT;
INSERT INTO audit_chain (pos, event_id, prev_hash, hash)
SELECT pos, id, prev_hash, hash FROM events WHERE pos IS NOT NULL;

CREATE TABLE audit_backlog (
    event_id INTEGER PRIMARY KEY
) STRICT;
INSERT INTO audit_backlog (event_id)
SELECT id FROM events WHERE pos IS NULL AND id <= (SELECT legacy_upto FROM audit_head);

ALTER TABLE audit_head ADD COLUMN chained_upto INTEGER NOT NULL DEFAULT 0;
UPDATE audit_head SET chained_upto = (SELECT coalesce(max(id), 0) FROM events);

DROP INDEX events_unchained;
DROP INDEX events_pos;
ALTER TABLE events DROP COLUMN hash;
ALTER TABLE events DROP COLUMN prev_hash;
ALTER TABLE events DROP COLUMN pos;

-- +goose Down
ALTER TABLE events ADD COLUMN pos INTEGER;
ALTER TABLE events ADD COLUMN prev_hash BLOB;
ALTER TABLE events ADD COLUMN hash BLOB;
UPDATE events SET
    pos       = (SELECT c.pos FROM audit_chain c WHERE c.event_id = events.id),
    prev_hash = (SELECT c.prev_hash FROM audit_chain c WHERE c.event_id = events.id),
    hash      = (SELECT c.hash FROM audit_chain c WHERE c.event_id = events.id);
CREATE UNIQUE INDEX events_pos ON events (pos);
CREATE INDEX events_unchained ON events (id) WHERE pos IS NULL;
ALTER TABLE audit_head DROP COLUMN chained_upto;
DROP TABLE audit_backlog;
DROP TABLE audit_chain;
