-- The audit log becomes a hash chain (package auditchain): each row gets
-- its position in the chain (pos), the hash of the row before it
-- (prev_hash) and its own hash, SHA-256(prev_hash || canonical content).
-- audit_head is the chain's last position and hash. Rows are inserted
-- with pos NULL, and chained after their transaction commits, in batches,
-- by whichever instance takes audit_head's row lock first (sqlstore's
-- ChainAudit): holding that lock through every writer's commit would queue
-- the commits one fsync after another. Positions follow the order the
-- lock gives, which is not always id order (ids are drawn before commit).
-- The rows written before this migration are chained by the first start
-- of tokend serve after it, in id order. legacy_upto is their highest id.
--
-- audit_checkpoints records each retention cut: the position, hash and
-- time of the last row deleted, where the chain now starts, and an HMAC
-- of them keyed from the pepper (never stored here).

-- +goose Up
ALTER TABLE events ADD COLUMN pos bigint;
ALTER TABLE events ADD COLUMN prev_hash bytea;
ALTER TABLE events ADD COLUMN hash bytea;
CREATE UNIQUE INDEX events_pos ON events (pos);
CREATE INDEX events_unchained ON events (id) WHERE pos IS NULL;

CREATE TABLE audit_head (
    one         boolean PRIMARY KEY DEFAULT true CHECK (one),
    pos         bigint NOT NULL,
    hash        bytea  NOT NULL,
    legacy_upto bigint NOT NULL
);
INSERT INTO audit_head (pos, hash, legacy_upto)
SELECT 0, decode(repeat('00', 32), 'hex'), coalesce(max(id), 0) FROM events;

CREATE TABLE audit_checkpoints (
    pos    bigint PRIMARY KEY,
    hash   bytea  NOT NULL,
    "time" timestamptz NOT NULL,
    cut_at timestamptz NOT NULL,
    mac    bytea  NOT NULL
);

-- +goose Down
DROP TABLE audit_checkpoints;
DROP TABLE audit_head;
ALTER TABLE events DROP COLUMN hash;
ALTER TABLE events DROP COLUMN prev_hash;
ALTER TABLE events DROP COLUMN pos;
