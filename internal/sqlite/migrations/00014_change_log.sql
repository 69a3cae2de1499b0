-- The change log (issue 16), kept in both dialects for one schema. Only
-- PostgreSQL writes it: instances of one deployment poll it to learn of
-- each other's changes, and a SQLite database has one process.

-- +goose Up
CREATE TABLE change_log (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    id   TEXT NOT NULL,
    at   INTEGER NOT NULL
);
CREATE INDEX change_log_at ON change_log (at);
CREATE TABLE change_log_pruned (
    one  INTEGER PRIMARY KEY DEFAULT 1 CHECK (one = 1),
    upto INTEGER NOT NULL
);
INSERT INTO change_log_pruned (upto) VALUES (0);

-- +goose Down
DROP TABLE change_log_pruned;
DROP TABLE change_log;
