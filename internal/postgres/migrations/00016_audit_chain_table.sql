-- The audit chain moves out of events into a narrow table of its own,
-- audit_chain: one row per chained event, its position, the hash of the
-- row before it and its own hash, exactly as 00015 stored them in events
-- (so the chain, and every hash an export recorded, stays the same).
-- Chaining a batch becomes a few small INSERTs; it was an UPDATE of each
-- wide events row, which could not be HOT (pos was indexed) and so wrote
-- a new entry in every index of events.
--
-- audit_head.chained_upto is the highest event id the chain has taken in:
-- ChainAudit chains, in id order, the events above it, up to an id below
-- which every writer has committed or rolled back (it learns one by
-- taking the events lock of postgres/events.go for a moment), and moves it
-- on. An event at or below it that is neither in the chain nor in
-- audit_backlog was not written by tokend. audit_backlog holds the ids of
-- the rows 00015 left unchained (written before it, or not chained yet
-- when tokend stopped), which the next ChainAudit chains first, in id
-- order; legacy_upto is no longer read.

-- +goose Up
-- No writer of the old schema may slip a row in while the rows move.
LOCK TABLE events IN EXCLUSIVE MODE;

CREATE TABLE audit_chain (
    pos       bigint PRIMARY KEY,
    event_id  bigint NOT NULL UNIQUE,
    prev_hash bytea  NOT NULL,
    hash      bytea  NOT NULL
);
INSERT INTO audit_chain (pos, event_id, prev_hash, hash)
SELECT pos, id, prev_hash, hash FROM events WHERE pos IS NOT NULL;

CREATE TABLE audit_backlog (
    event_id bigint PRIMARY KEY
);
INSERT INTO audit_backlog (event_id) SELECT id FROM events WHERE pos IS NULL;

ALTER TABLE audit_head ADD COLUMN chained_upto bigint NOT NULL DEFAULT 0;
UPDATE audit_head SET chained_upto = (SELECT coalesce(max(id), 0) FROM events);

ALTER TABLE events DROP COLUMN pos, DROP COLUMN prev_hash, DROP COLUMN hash;

-- +goose Down
ALTER TABLE events ADD COLUMN pos bigint, ADD COLUMN prev_hash bytea, ADD COLUMN hash bytea;
UPDATE events e SET pos = c.pos, prev_hash = c.prev_hash, hash = c.hash
FROM audit_chain c WHERE c.event_id = e.id;
CREATE UNIQUE INDEX events_pos ON events (pos);
CREATE INDEX events_unchained ON events (id) WHERE pos IS NULL;
ALTER TABLE audit_head DROP COLUMN chained_upto;
DROP TABLE audit_backlog;
DROP TABLE audit_chain;
