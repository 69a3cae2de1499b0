-- The dashboard's shown-once secrets: the same table as on SQLite. Only the
-- random id of a hand-over is kept (never the secret), until the cookie's
-- own end has passed; the dashboard's periodic sweep then deletes the row.

-- +goose Up
CREATE TABLE reveals_used (
    id         bytea       PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

CREATE INDEX reveals_used_expires ON reveals_used (expires_at);

-- +goose Down
DROP TABLE reveals_used;
