-- Dashboard users and their sessions.
--
-- Times are INTEGER unix microseconds in UTC, as in the first schema.

-- +goose Up
CREATE TABLE users (
    id            TEXT    PRIMARY KEY,
    -- Stored lower-cased by the service; the index makes any two spellings
    -- that lower() folds together one address.
    email         TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('owner', 'admin', 'viewer')),
    -- argon2id in PHC string format; never the password.
    password_hash TEXT    NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    last_login_at INTEGER,
    version       INTEGER NOT NULL
) STRICT;

CREATE UNIQUE INDEX users_email ON users (lower(email));

-- Users are listed oldest first.
CREATE INDEX users_created ON users (created_at, id);

-- A session is found by the SHA-256 of the id in the user's cookie; the id
-- itself is never stored.
CREATE TABLE sessions (
    id_hash      BLOB    PRIMARY KEY,
    user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf         TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    ip           TEXT    NOT NULL,
    user_agent   TEXT    NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX sessions_user ON sessions (user_id);

-- The sweep of expired sessions reads these two.
CREATE INDEX sessions_expires ON sessions (expires_at);
CREATE INDEX sessions_last_seen ON sessions (last_seen_at);

-- +goose Down
DROP TABLE sessions;
DROP TABLE users;
