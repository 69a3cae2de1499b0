-- Owners: the product's own customer or account a token belongs to, the
-- scope of an owner-scoped admin token, and an app's limits per owner.
--
-- owner_id and owner_name are NOT NULL with '' for "no owner", so that the
-- unique index on live names treats every token without an owner as one
-- owner (a NULL would make each one distinct) on both databases. Existing
-- tokens get ''.
--
-- scope is the JSON {"owner_id": …, "app_ids": […]} of an admin token
-- restricted to one owner; NULL for an unrestricted one (and for every
-- token of a product app). max_tokens_per_owner is NULL for no limit,
-- owner_rate_limit the JSON {"limit": …, "window": …} of a limit shared by
-- an owner's tokens, NULL for none.

-- +goose Up
ALTER TABLE tokens ADD COLUMN owner_id text NOT NULL DEFAULT '';
ALTER TABLE tokens ADD COLUMN owner_name text NOT NULL DEFAULT '';
ALTER TABLE tokens ADD COLUMN scope jsonb;
ALTER TABLE apps ADD COLUMN max_tokens_per_owner bigint;
ALTER TABLE apps ADD COLUMN owner_rate_limit jsonb;

-- A name is unique among the live tokens of one owner of an app (the
-- tokens without an owner being one owner). The name stays the one the
-- store looks for.
DROP INDEX tokens_live_name;
CREATE UNIQUE INDEX tokens_live_name ON tokens (app_id, owner_id, name) WHERE status <> 'revoked';

-- An owner's tokens, newest first: the list and count filtered by owner,
-- and the revocation of all of them. The count of an owner's live tokens
-- (max_tokens_per_owner) reads tokens_live_name.
CREATE INDEX tokens_owner_created ON tokens (app_id, owner_id, created_at DESC, id DESC);

-- +goose Down
-- Fails when two owners of an app hold live tokens of the same name: the
-- old rule cannot hold them; revoke or rename one first.
DROP INDEX tokens_owner_created;
DROP INDEX tokens_live_name;
CREATE UNIQUE INDEX tokens_live_name ON tokens (app_id, name) WHERE status <> 'revoked';
ALTER TABLE apps DROP COLUMN owner_rate_limit;
ALTER TABLE apps DROP COLUMN max_tokens_per_owner;
ALTER TABLE tokens DROP COLUMN scope;
ALTER TABLE tokens DROP COLUMN owner_name;
ALTER TABLE tokens DROP COLUMN owner_id;
