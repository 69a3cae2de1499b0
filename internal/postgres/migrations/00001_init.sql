-- The first schema of tokend on PostgreSQL: the same tables as on SQLite.
--
-- Times are timestamptz, which keeps microseconds, the precision the store
-- writes on both backends. Lists and objects (permissions, allowed IPs and
-- origins, metadata, event details) are jsonb, where the JSON literal null
-- keeps a nil Go slice or map apart from an empty one. Durations are bigint
-- nanoseconds. Ids sort by byte ("C" collation), as they do on SQLite, so
-- that lists come back in the same order whatever the database's locale.

-- +goose Up
CREATE TABLE apps (
    id                 text COLLATE "C" PRIMARY KEY,
    name               text        NOT NULL,
    token_prefix       text        NOT NULL,
    permissions        jsonb       NOT NULL,
    max_token_lifetime bigint,
    system             boolean     NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    version            bigint      NOT NULL
);

-- Apps are listed oldest first.
CREATE INDEX apps_created ON apps (created_at, id);

CREATE TABLE tokens (
    id                         text COLLATE "C" PRIMARY KEY,
    app_id                     text COLLATE "C" NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    name                       text        NOT NULL,
    description                text        NOT NULL,
    type                       text        NOT NULL,
    access                     text        NOT NULL,
    permissions                jsonb       NOT NULL,
    expires_at                 timestamptz,
    allowed_ips                jsonb       NOT NULL,
    allowed_origins            jsonb       NOT NULL,
    rate_limit                 bigint,
    rate_window                bigint,
    max_uses                   bigint,
    use_count                  bigint      NOT NULL DEFAULT 0,
    metadata                   jsonb       NOT NULL,
    -- 'expired' is derived from expires_at and never stored.
    status                     text        NOT NULL CHECK (status IN ('active', 'disabled', 'revoked')),
    masked                     text        NOT NULL,
    created_at                 timestamptz NOT NULL,
    created_by                 text        NOT NULL,
    updated_at                 timestamptz NOT NULL,
    last_used_at               timestamptz,
    last_used_ip               text        NOT NULL DEFAULT '',
    revoked_at                 timestamptz,
    previous_secret_expires_at timestamptz,
    version                    bigint      NOT NULL,
    -- HMAC-SHA256(pepper, secret); the secret itself never reaches the store.
    secret_hash                bytea       NOT NULL
);

-- Verification finds a token by the hash of the presented secret.
CREATE UNIQUE INDEX tokens_secret_hash ON tokens (secret_hash);

-- A name is unique among the live tokens of an app; revoked tokens are kept
-- for audit and must not block reusing their name. The store recognises a
-- violation of this index by its name and answers a conflict on "name".
CREATE UNIQUE INDEX tokens_live_name ON tokens (app_id, name) WHERE status <> 'revoked';

-- Tokens are listed newest first, across apps or within one.
CREATE INDEX tokens_created ON tokens (created_at DESC, id DESC);
CREATE INDEX tokens_app_created ON tokens (app_id, created_at DESC, id DESC);

-- Secrets replaced by rotation, kept so that a late use of one can be told
-- apart from an unknown secret (and accepted during its grace period).
CREATE TABLE retired_secrets (
    hash        bytea PRIMARY KEY,
    token_id    text COLLATE "C" NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    retired_at  timestamptz NOT NULL,
    grace_until timestamptz NOT NULL
);

CREATE INDEX retired_secrets_token ON retired_secrets (token_id);

-- The audit log. No foreign keys: events outlive the tokens and apps they
-- are about. An identity never hands out an id twice, so id cursors stay
-- stable.
CREATE TABLE events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    "time"     timestamptz NOT NULL,
    actor      text        NOT NULL,
    actor_name text        NOT NULL,
    ip         text        NOT NULL,
    action     text        NOT NULL,
    app_id     text        NOT NULL,
    token_id   text        NOT NULL,
    details    jsonb       NOT NULL
);

CREATE INDEX events_token ON events (token_id, id);
CREATE INDEX events_app ON events (app_id, id);
CREATE INDEX events_action ON events (action, id);
CREATE INDEX events_time ON events ("time", id);

-- Verifications per token, hour (its start) and outcome.
CREATE TABLE usage (
    token_id text COLLATE "C" NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    hour     timestamptz NOT NULL,
    code     text        NOT NULL,
    count    bigint      NOT NULL,
    PRIMARY KEY (token_id, hour, code)
);

-- +goose Down
DROP TABLE usage;
DROP TABLE events;
DROP TABLE retired_secrets;
DROP TABLE tokens;
DROP TABLE apps;
