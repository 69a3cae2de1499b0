-- The change log (issue 16): every write that changes a verification
-- answer inserts (kind, id) here in its own transaction, beside its
-- pg_notify, so that instances which cannot LISTEN (tokend serve
-- --invalidation poll, or an engine without LISTEN/NOTIFY) learn of it by
-- polling. Instances read it in seq order and remember the gaps that
-- transactions committing out of order leave (see postgres/poll.go).
-- Rows are pruned an hour after they are written; change_log_pruned keeps
-- the highest seq pruned, so that an instance that was cut off for longer
-- knows it missed changes.

-- +goose Up
-- The sequence must hand out values in the order they are asked for
-- (CACHE 1, the default): the poller relies on it.
CREATE TABLE change_log (
    seq  bigserial PRIMARY KEY,
    kind text NOT NULL,
    id   text NOT NULL,
    at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX change_log_at ON change_log (at);
CREATE TABLE change_log_pruned (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    upto bigint NOT NULL
);
INSERT INTO change_log_pruned (upto) VALUES (0);

-- +goose Down
DROP TABLE change_log_pruned;
DROP TABLE change_log;
