-- Decoy tokens stay hidden from the owner they are planted among (issue
-- 15, after review): a decoy never takes a name from the owner's tokens,
-- nor they from it (decoys may share names with each other and with real
-- tokens), and the store counts no decoy against max_tokens_per_owner.
-- The verification engine keeps the secrets of every decoy in memory,
-- read through tokens_decoy.

-- +goose Up
-- The count of an owner's live tokens (max_tokens_per_owner) and the
-- check of a live name read this index too, with the same NOT decoy.
DROP INDEX tokens_live_name;
CREATE UNIQUE INDEX tokens_live_name ON tokens (app_id, owner_id, name) WHERE status <> 'revoked' AND NOT decoy;

-- Decoys are few among many tokens: the engine's read of their secrets
-- stays cheap at a million tokens.
CREATE INDEX tokens_decoy ON tokens (id) WHERE decoy;

-- +goose Down
-- Fails when a decoy and a live token of one owner share a name: the old
-- rule cannot hold them; rename or revoke one first.
DROP INDEX tokens_decoy;
DROP INDEX tokens_live_name;
CREATE UNIQUE INDEX tokens_live_name ON tokens (app_id, owner_id, name) WHERE status <> 'revoked';
