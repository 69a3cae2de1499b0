-- Events, webhooks and mail: the outbox of product events, the marks that
-- keep time-based events from being raised twice, webhook endpoints, the
-- deliveries to them and to mail recipients, and each delivery's attempts.
--
-- outbox holds one row per event (tokend.Notification), written in the
-- same transaction as the change it reports. seq orders it; id (evt_…) is
-- what subscribers see. data and actor are JSON objects; nothing secret is
-- ever in them. dispatched becomes true once the event's deliveries exist.
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

-- +goose Up
CREATE TABLE outbox (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          text    NOT NULL UNIQUE,
    type        text    NOT NULL,
    occurred_at timestamptz NOT NULL,
    app_id      text    NOT NULL DEFAULT '',
    token_id    text    NOT NULL DEFAULT '',
    actor       jsonb   NOT NULL,
    data        jsonb   NOT NULL,
    dispatched  boolean NOT NULL DEFAULT false
);

CREATE INDEX outbox_undispatched ON outbox (seq) WHERE NOT dispatched;
CREATE INDEX outbox_type ON outbox (type, seq);
CREATE INDEX outbox_app ON outbox (app_id, seq);
CREATE INDEX outbox_token ON outbox (token_id, seq);
CREATE INDEX outbox_time ON outbox (occurred_at, seq);

CREATE TABLE event_marks (
    token_id text    NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    kind     text    NOT NULL,
    at       timestamptz NOT NULL,
    PRIMARY KEY (token_id, kind, at)
);

-- An app's own notice period: token.expiring is also raised this long
-- before a token expires (nanoseconds, as disable_unused_after); NULL for
-- only the 7-day and 1-day notices.
ALTER TABLE apps ADD COLUMN expiry_notice bigint;

-- The event types a dashboard user does not want mailed (JSON array).
ALTER TABLE users ADD COLUMN mail_optout jsonb NOT NULL DEFAULT '[]';

CREATE TABLE webhooks (
    id                    text    PRIMARY KEY,
    url                   text    NOT NULL,
    description           text    NOT NULL DEFAULT '',
    app_id                text    REFERENCES apps (id) ON DELETE CASCADE,
    events                jsonb   NOT NULL,
    enabled               boolean NOT NULL DEFAULT true,
    disabled_reason       text    NOT NULL DEFAULT '',
    secret                bytea   NOT NULL,
    previous_secret       bytea,
    previous_secret_until timestamptz,
    failing_since         timestamptz,
    created_by            text    NOT NULL DEFAULT '',
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    version               bigint NOT NULL DEFAULT 1
);

CREATE INDEX webhooks_app ON webhooks (app_id);

CREATE TABLE deliveries (
    id           text    PRIMARY KEY,
    kind         text    NOT NULL,
    webhook_id   text    REFERENCES webhooks (id) ON DELETE CASCADE,
    recipient    text    NOT NULL DEFAULT '',
    event_seq    bigint NOT NULL REFERENCES outbox (seq) ON DELETE CASCADE,
    token_id     text    NOT NULL DEFAULT '',
    status       text    NOT NULL DEFAULT 'pending',
    attempts     integer NOT NULL DEFAULT 0,
    next_at      timestamptz,
    lease_until  timestamptz,
    last_status  integer,
    last_error   text    NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL,
    delivered_at timestamptz
);

CREATE UNIQUE INDEX deliveries_once ON deliveries (event_seq, kind, coalesce(webhook_id, ''), recipient);
CREATE INDEX deliveries_due ON deliveries (next_at) WHERE status = 'pending';
CREATE INDEX deliveries_webhook ON deliveries (webhook_id, created_at, id);

CREATE TABLE delivery_attempts (
    delivery_id   text    NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    n             integer NOT NULL,
    at            timestamptz NOT NULL,
    http_status   integer,
    duration_ms   integer NOT NULL,
    error         text    NOT NULL DEFAULT '',
    next_retry_at timestamptz,
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
