-- The first schema of tokend on SQLite.
--
-- Times are INTEGER unix nanoseconds in UTC: they sort as numbers and
-- round-trip a time.Time exactly. Lists and objects (permissions, allowed IPs
-- and origins, metadata, event details) are JSON text, where the JSON literal
-- null keeps a nil Go slice or map apart from an empty one. Durations are
-- INTEGER nanoseconds.

-- +goose Up
CREATE TABLE apps (
    id                 TEXT    PRIMARY KEY,
    name               TEXT    NOT NULL,
    token_prefix       TEXT    NOT NULL,
    permissions        TEXT    NOT NULL,
    max_token_lifetime INTEGER,
    system             INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    version            INTEGER NOT NULL
) STRICT;

-- Apps are listed oldest first.
CREATE INDEX apps_created ON apps (created_at, id);

CREATE TABLE tokens (
    id                         TEXT    PRIMARY KEY,
    app_id                     TEXT    NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    name                       TEXT    NOT NULL,
    description                TEXT    NOT NULL,
    type                       TEXT    NOT NULL,
    access                     TEXT    NOT NULL,
    permissions                TEXT    NOT NULL,
    expires_at                 INTEGER,
    allowed_ips                TEXT    NOT NULL,
    allowed_origins            TEXT    NOT NULL,
    rate_limit                 INTEGER,
    rate_window                INTEGER,
    max_uses                   INTEGER,
    use_count                  INTEGER NOT NULL DEFAULT 0,
    metadata                   TEXT    NOT NULL,
    -- 'expired' is derived from expires_at and never stored.
    status                     TEXT    NOT NULL CHECK (status IN ('active', 'disabled', 'revoked')),
    masked                     TEXT    NOT NULL,
    created_at                 INTEGER NOT NULL,
    created_by                 TEXT    NOT NULL,
    updated_at                 INTEGER NOT NULL,
    last_used_at               INTEGER,
    last_used_ip               TEXT    NOT NULL DEFAULT '',
    revoked_at                 INTEGER,
    previous_secret_expires_at INTEGER,
    version                    INTEGER NOT NULL,
    -- HMAC-SHA256(pepper, secret); the secret itself never reaches the store.
    secret_hash                BLOB    NOT NULL
) STRICT;

-- Verification finds a token by the hash of the presented secret.
CREATE UNIQUE INDEX tokens_secret_hash ON tokens (secret_hash);

-- A name is unique among the live tokens of an app; revoked tokens are kept
-- for audit and must not block reusing their name.
CREATE UNIQUE INDEX tokens_live_name ON tokens (app_id, name) WHERE status <> 'revoked';

-- Tokens are listed newest first, across apps or within one.
CREATE INDEX tokens_created ON tokens (created_at DESC, id DESC);
CREATE INDEX tokens_app_created ON tokens (app_id, created_at DESC, id DESC);

-- Secrets replaced by rotation, kept so that a late use of one can be told
-- apart from an unknown secret (and accepted during its grace period).
CREATE TABLE retired_secrets (
    hash        BLOB    PRIMARY KEY,
    token_id    TEXT    NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    retired_at  INTEGER NOT NULL,
    grace_until INTEGER NOT NULL
) STRICT;

CREATE INDEX retired_secrets_token ON retired_secrets (token_id);

-- The audit log. No foreign keys: events outlive the tokens and apps they
-- are about. AUTOINCREMENT never reuses an id, so id cursors stay stable.
CREATE TABLE events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    time       INTEGER NOT NULL,
    actor      TEXT    NOT NULL,
    actor_name TEXT    NOT NULL,
    ip         TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    app_id     TEXT    NOT NULL,
    token_id   TEXT    NOT NULL,
    details    TEXT    NOT NULL
) STRICT;

CREATE INDEX events_token ON events (token_id, id);
CREATE INDEX events_app ON events (app_id, id);
CREATE INDEX events_action ON events (action, id);
CREATE INDEX events_time ON events (time, id);

-- Verifications per token, hour (unix nanoseconds of its start) and outcome.
CREATE TABLE usage (
    token_id TEXT    NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    hour     INTEGER NOT NULL,
    code     TEXT    NOT NULL,
    count    INTEGER NOT NULL,
    PRIMARY KEY (token_id, hour, code)
) STRICT, WITHOUT ROWID;

-- +goose Down
DROP TABLE usage;
DROP TABLE events;
DROP TABLE retired_secrets;
DROP TABLE tokens;
DROP TABLE apps;
