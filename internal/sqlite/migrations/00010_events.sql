-- Events, webhooks and mail: the outbox of product events, the marks that
-- keep time-based events from being raised twice, webhook endpoints, the
-- deliveries to them and to mail recipients, and each delivery's attempts.
--
-- outbox holds one row per event (tokend.Notification), written in the
-- same transaction as the change it reports. seq orders it; id (evt_…) is
-- what subscribers see. data and actor are JSON objects; nothing secret is
-- ever in them. dispatched becomes 1 once the event's deliveries exist.
--
-- event_marks: a time-based event (token.expiring at a notice period,
-- token.expired, token.inactive) inserts its mark (the token, the kind, the
-- expiry or activity it is about) in the transaction that raises it; the
-- primary key makes a second raise of the same one impossible.
--
-- webhooks.secret and previous_secret are sealed with a key derived from
-- the pepper (never stored in the database), not plain signing secrets.
-- app_id is NULL for an endpoint that hears every application.
--
-- deliveries: one per event per webhook endpoint (kind 'webhook') or per
-- mail recipient (kind 'mail'); unique, so that dispatching an event twice
-- cannot deliver it twice. status is pending, delivered or failed (gave up).
-- A worker claims a due one by setting lease_until; a worker killed
-- mid-attempt leaves the lease to run out and the delivery to be retried.

-- tokens_expiry serves the scheduler of token.expiring and token.expired
-- (live tokens by expiry, a window at a time; PostgreSQL has
-- tokens_unrevoked_expiry since 00003). Not partial: SQLite's planner would
-- not see that status = 'active' implies status <> 'revoked'.

-- +goose Up
CREATE INDEX tokens_expiry ON tokens (expires_at);

CREATE TABLE outbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT    NOT NULL UNIQUE,
    type        TEXT    NOT NULL,
    occurred_at INTEGER NOT NULL,
    app_id      TEXT    NOT NULL DEFAULT '',
    token_id    TEXT    NOT NULL DEFAULT '',
    actor       TEXT    NOT NULL,
    data        TEXT    NOT NULL,
    dispatched  INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX outbox_undispatched ON outbox (seq) WHERE dispatched = 0;
CREATE INDEX outbox_type ON outbox (type, seq);
CREATE INDEX outbox_app ON outbox (app_id, seq);
CREATE INDEX outbox_token ON outbox (token_id, seq);
CREATE INDEX outbox_time ON outbox (occurred_at, seq);

CREATE TABLE event_marks (
    token_id TEXT    NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    kind     TEXT    NOT NULL,
    at       INTEGER NOT NULL,
    PRIMARY KEY (token_id, kind, at)
);

-- An app's own notice period: token.expiring is also raised this long
-- before a token expires (nanoseconds, as disable_unused_after); NULL for
-- only the 7-day and 1-day notices.
ALTER TABLE apps ADD COLUMN expiry_notice INTEGER;

-- The event types a dashboard user does not want mailed (JSON array).
ALTER TABLE users ADD COLUMN mail_optout TEXT NOT NULL DEFAULT '[]';

CREATE TABLE webhooks (
    id                    TEXT    PRIMARY KEY,
    url                   TEXT    NOT NULL,
    description           TEXT    NOT NULL DEFAULT '',
    app_id                TEXT    REFERENCES apps (id) ON DELETE CASCADE,
    events                TEXT    NOT NULL,
    enabled               INTEGER NOT NULL DEFAULT 1,
    disabled_reason       TEXT    NOT NULL DEFAULT '',
    secret                BLOB    NOT NULL,
    previous_secret       BLOB,
    previous_secret_until INTEGER,
    failing_since         INTEGER,
    created_by            TEXT    NOT NULL DEFAULT '',
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    version               INTEGER NOT NULL DEFAULT 1
);

CREATE INDEX webhooks_app ON webhooks (app_id);

CREATE TABLE deliveries (
    id           TEXT    PRIMARY KEY,
    kind         TEXT    NOT NULL,
    webhook_id   TEXT    REFERENCES webhooks (id) ON DELETE CASCADE,
    recipient    TEXT    NOT NULL DEFAULT '',
    event_seq    INTEGER NOT NULL REFERENCES outbox (seq) ON DELETE CASCADE,
    token_id     TEXT    NOT NULL DEFAULT '',
    status       TEXT    NOT NULL DEFAULT 'pending',
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      INTEGER,
    lease_until  INTEGER,
    last_status  INTEGER,
    last_error   TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    delivered_at INTEGER
);

CREATE UNIQUE INDEX deliveries_once ON deliveries (event_seq, kind, coalesce(webhook_id, ''), recipient);
CREATE INDEX deliveries_due ON deliveries (next_at) WHERE status = 'pending';
CREATE INDEX deliveries_webhook ON deliveries (webhook_id, created_at, id);

CREATE TABLE delivery_attempts (
    delivery_id   TEXT    NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    n             INTEGER NOT NULL,
    at            INTEGER NOT NULL,
    http_status   INTEGER,
    duration_ms   INTEGER NOT NULL,
    error         TEXT    NOT NULL DEFAULT '',
    next_retry_at INTEGER,
    PRIMARY KEY (delivery_id, n)
);

-- +goose Down
DROP TABLE delivery_attempts;
DROP TABLE deliveries;
DROP TABLE webhooks;
ALTER TABLE users DROP COLUMN mail_optout;
ALTER TABLE apps DROP COLUMN expiry_notice;
DROP TABLE event_marks;
DROP TABLE outbox;
DROP INDEX tokens_expiry;
