-- Leak reports (POST /v1/leaks): each app's leak policy, what a reported
-- leak of one of its tokens' secrets does: revoke (the default), disable,
-- or notify (token.leaked only).

-- +goose Up
ALTER TABLE apps ADD COLUMN leak_policy TEXT NOT NULL DEFAULT 'revoke'
    CHECK (leak_policy IN ('revoke', 'disable', 'notify'));

-- +goose Down
ALTER TABLE apps DROP COLUMN leak_policy;
