-- Recent activity: the same table as on SQLite. Each token's latest
-- verifications (at most 50, pruned in the write that adds to them), written
-- in batches by the verification engine's usage flush. Nothing secret: no
-- token, and the forward-auth path without its query string.

-- +goose Up
CREATE TABLE activity (
    seq      bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_id text        NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    at       timestamptz NOT NULL,
    ip       text        NOT NULL,
    code     text        NOT NULL,
    method   text        NOT NULL,
    path     text        NOT NULL
);

CREATE INDEX activity_token ON activity (token_id, at DESC, seq DESC);

-- +goose Down
DROP TABLE activity;
