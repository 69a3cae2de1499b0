-- The dashboard's shown-once secrets: a new secret travels to the page that
-- shows it in a sealed cookie carrying a random id, and the page shows it
-- only if it is the first to record that id here. Every instance sharing
-- the database sees the record, so a replayed cookie shows nothing on any
-- of them. Only the id is kept (never the secret), until the cookie's own
-- end has passed; the dashboard's periodic sweep then deletes the row.

-- +goose Up
CREATE TABLE reveals_used (
    id         BLOB    PRIMARY KEY,
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX reveals_used_expires ON reveals_used (expires_at);

-- +goose Down
DROP TABLE reveals_used;
