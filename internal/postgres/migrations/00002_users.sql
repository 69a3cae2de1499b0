-- Dashboard users and their sessions: the same tables as on SQLite.

-- +goose Up
CREATE TABLE users (
    id            text COLLATE "C" PRIMARY KEY,
    -- Stored lower-cased by the service; the index makes any two spellings
    -- that lower() folds together one address. The store recognises a
    -- violation of it by its name and answers a conflict on "email".
    email         text        NOT NULL,
    name          text        NOT NULL,
    role          text        NOT NULL CHECK (role IN ('owner', 'admin', 'viewer')),
    -- argon2id in PHC string format; never the password.
    password_hash text        NOT NULL,
    disabled      boolean     NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    last_login_at timestamptz,
    version       bigint      NOT NULL
);

CREATE UNIQUE INDEX users_email ON users (lower(email));

-- Users are listed oldest first.
CREATE INDEX users_created ON users (created_at, id);

-- A session is found by the SHA-256 of the id in the user's cookie; the id
-- itself is never stored.
CREATE TABLE sessions (
    id_hash      bytea PRIMARY KEY,
    user_id      text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf         text        NOT NULL,
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    ip           text        NOT NULL,
    user_agent   text        NOT NULL
);

CREATE INDEX sessions_user ON sessions (user_id);

-- The sweep of expired sessions reads these two.
CREATE INDEX sessions_expires ON sessions (expires_at);
CREATE INDEX sessions_last_seen ON sessions (last_seen_at);

-- +goose Down
DROP TABLE sessions;
DROP TABLE users;
