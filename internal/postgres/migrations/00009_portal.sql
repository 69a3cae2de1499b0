-- The customer portal: single-use links a product's backend mints for one
-- of its customers, and the sessions they open.
--
-- Both are found by the SHA-256 of a secret that only the customer's
-- browser holds (the link's, then the session cookie's). grant_json is the
-- JSON tokend.PortalGrant: the application, the owner, the product's user,
-- the return URL and the access the page may give.

-- +goose Up
-- An application's portal settings (tokend.AppPortal as JSON): branding
-- and the origins that may embed the page; NULL for the defaults.
ALTER TABLE apps ADD COLUMN portal jsonb;

CREATE TABLE portal_links (
    id_hash    bytea       PRIMARY KEY,
    grant_json jsonb       NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);

CREATE INDEX portal_links_expires ON portal_links (expires_at);

CREATE TABLE portal_sessions (
    id_hash      bytea       PRIMARY KEY,
    grant_json   jsonb       NOT NULL,
    csrf         text        NOT NULL,
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);

CREATE INDEX portal_sessions_expires ON portal_sessions (expires_at);
CREATE INDEX portal_sessions_last_seen ON portal_sessions (last_seen_at);

-- +goose Down
DROP TABLE portal_sessions;
DROP TABLE portal_links;
ALTER TABLE apps DROP COLUMN portal;
