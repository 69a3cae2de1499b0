-- Small facts about the database itself, one value per key. The first is
-- pepper_fingerprint: HMAC-SHA256(pepper, a fixed label) of the pepper the
-- stored secret hashes were made with, so that a start with another pepper
-- (or without the pepper file) is refused instead of answering NOT_FOUND for
-- every token. It tells nothing about the pepper beyond whether a guess is
-- right.

-- +goose Up
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT, WITHOUT ROWID;

-- +goose Down
DROP TABLE settings;
