-- Recent activity: each token's latest verifications (at most 50, pruned in
-- the write that adds to them), written in batches by the verification
-- engine's usage flush. Nothing secret: no token, and the forward-auth path
-- without its query string. at is unix microseconds; seq orders rows of one
-- microsecond.

-- +goose Up
CREATE TABLE activity (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    token_id TEXT    NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    at       INTEGER NOT NULL,
    ip       TEXT    NOT NULL,
    code     TEXT    NOT NULL,
    method   TEXT    NOT NULL,
    path     TEXT    NOT NULL
) STRICT;

CREATE INDEX activity_token ON activity (token_id, at DESC, seq DESC);

-- +goose Down
DROP TABLE activity;
