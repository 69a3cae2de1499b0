-- Small facts about the database itself, one value per key: the same table
-- as on SQLite (see its migration for pepper_fingerprint).

-- +goose Up
CREATE TABLE settings (
    key   text COLLATE "C" PRIMARY KEY,
    value text NOT NULL
);

-- +goose Down
DROP TABLE settings;
