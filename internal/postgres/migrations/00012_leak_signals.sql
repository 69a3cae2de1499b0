-- The signals of a stolen token (issue 15): decoy tokens, each app's policy
-- for a rotated-out secret presented again, the networks a token is used
-- from, and an index to forget rotated-out secrets after their retention.

-- +goose Up
-- A decoy looks like a token of its app and never verifies: its use raises
-- token.decoy_used. Fixed at creation.
ALTER TABLE tokens ADD COLUMN decoy boolean NOT NULL DEFAULT false;

-- What the use of a secret replaced by rotation, after its grace, does
-- besides answering ROTATED and raising token.rotated_secret_used: notify
-- (nothing more, the default) or disable the token.
ALTER TABLE apps ADD COLUMN rotated_secret_policy text NOT NULL DEFAULT 'notify'
    CHECK (rotated_secret_policy IN ('notify', 'disable'));

-- The networks (IPv4 /24, IPv6 /48, in CIDR form) each token was used from,
-- at most the 10 most recently seen, written in batches by the verification
-- engine's usage flush.
CREATE TABLE token_networks (
    token_id   text COLLATE "C" NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    network    text        NOT NULL,
    first_seen timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL,
    PRIMARY KEY (token_id, network)
);

CREATE INDEX token_networks_seen ON token_networks (token_id, last_seen DESC);

-- Rotated-out secrets are forgotten some time (90 days by default) after
-- their grace ends.
CREATE INDEX retired_secrets_grace ON retired_secrets (grace_until);

-- +goose Down
DROP INDEX retired_secrets_grace;
DROP TABLE token_networks;
ALTER TABLE apps DROP COLUMN rotated_secret_policy;
ALTER TABLE tokens DROP COLUMN decoy;
