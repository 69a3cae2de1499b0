package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tokend/tokend"
)

// Webhook endpoints, the deliveries of outbox events to them and to mail
// recipients, and the attempts of each delivery (tokend.WebhookStore).
//
// The outbox is taken by DispatchEvents: one transaction reads the oldest
// undispatched events (on PostgreSQL locking them, skipping those another
// instance holds), stores their deliveries and marks them dispatched. A
// delivery is then claimed by a lease (lease_until): whoever holds an
// unexpired lease attempts it, and a worker that dies leaves the lease to
// lapse. The unique index deliveries_once keeps an event from reaching one
// endpoint or recipient twice, whatever happens above.

// Cursor kinds of the webhook and delivery lists.
const (
	cursorWebhooks   = "w"
	cursorDeliveries = "d"
)

const webhookColumns = `id, url, description, app_id, events, enabled, disabled_reason, secret, previous_secret, previous_secret_until, failing_since, created_by, created_at, updated_at, version`

const deliveryColumns = `d.id, d.kind, d.webhook_id, d.recipient, d.event_seq, o.id, o.type, d.token_id, d.status, d.attempts, d.next_at, d.last_status, d.last_error, d.created_at, d.delivered_at`

const deliveryFrom = ` FROM deliveries d JOIN outbox o ON o.seq = d.event_seq`

var (
	insertWebhook = Q(`INSERT INTO webhooks (` + webhookColumns + `) VALUES (` + placeholders(15) + `)`)
	webhookByID   = Q(`SELECT ` + webhookColumns + ` FROM webhooks WHERE id = $1`)
	updateWebhook = Q(`
		UPDATE webhooks
		SET url = $2, description = $3, app_id = $4, events = $5, enabled = $6,
		    disabled_reason = $7, secret = $8, previous_secret = $9,
		    previous_secret_until = $10, failing_since = $11, created_by = $12,
		    created_at = $13, updated_at = $14, version = $15
		WHERE id = $1`)
	deleteWebhook = Q(`DELETE FROM webhooks WHERE id = $1 AND ($2 = 0 OR version = $2)`)
	webhookExists = Q(`SELECT 1 FROM webhooks WHERE id = $1`)

	deliveryByID     = Q(`SELECT ` + deliveryColumns + deliveryFrom + ` WHERE d.id = $1`)
	deliveryAttempts = Q(`SELECT n, at, http_status, duration_ms, error, next_retry_at FROM delivery_attempts WHERE delivery_id = $1 ORDER BY n`)
	insertDelivery   = Q(`
		INSERT INTO deliveries (id, kind, webhook_id, recipient, event_seq, token_id, status, attempts, next_at, created_at)
		SELECT $1, $2, CAST($3 AS text), $4, $5, $6, 'pending', 0, $7, $7
		WHERE $3 IS NULL OR EXISTS (SELECT 1 FROM webhooks WHERE id = CAST($3 AS text))
		ON CONFLICT DO NOTHING`)
	markDispatched = Q(`UPDATE outbox SET dispatched = $2 WHERE seq = $1`)
	// retryDelivery leaves a leased delivery alone: its worker is about
	// to attempt it, and a second worker claiming it meanwhile would send
	// it twice, one of the two attempts never recorded.
	retryDelivery = Q(`
		UPDATE deliveries SET status = 'pending', next_at = $2
		WHERE id = $1 AND (lease_until IS NULL OR lease_until <= $2)`)
	// finishDelivery records attempt $3 only over attempt $8 = $3-1: the
	// state the attempt's worker claimed. A worker whose lease lapsed
	// while another claimed the delivery and recorded its own attempt
	// matches no row (see FinishAttempt).
	finishDelivery = Q(`
		UPDATE deliveries
		SET status = $2, attempts = $3, next_at = $4, lease_until = NULL,
		    last_status = $5, last_error = $6, delivered_at = $7
		WHERE id = $1 AND attempts = $8`)
	deliveryExists = Q(`SELECT 1 FROM deliveries WHERE id = $1`)
	insertAttempt  = Q(`
		INSERT INTO delivery_attempts (delivery_id, n, at, http_status, duration_ms, error, next_retry_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`)
	webhookSucceeded = Q(`UPDATE webhooks SET failing_since = NULL WHERE id = $1`)
	webhookFailed    = Q(`UPDATE webhooks SET failing_since = coalesce(failing_since, $2) WHERE id = $1`)
	anyUndispatched  = Q(`SELECT 1 FROM outbox WHERE dispatched = $1 LIMIT 1`)
	anyDue           = Q(`SELECT 1 FROM deliveries WHERE status = 'pending' AND next_at <= $1 AND (lease_until IS NULL OR lease_until <= $1) LIMIT 1`)
	outboxBySeq      = Q(`SELECT ` + outboxColumns + ` FROM outbox WHERE seq = $1`)
)

func (s *Store) CreateWebhook(ctx context.Context, w tokend.Webhook, ev tokend.Event) error {
	return s.Write(ctx, func(tx *sql.Tx) error {
		args, err := s.webhookArgs(w)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.sql(insertWebhook), args...); err != nil {
			if s.f.ForeignKey(err) {
				return appNotFound(err)
			}
			return s.Err("create webhook", err)
		}
		return s.InsertEvent(ctx, tx, ev)
	})
}

func (s *Store) Webhook(ctx context.Context, id string) (tokend.Webhook, error) {
	return s.scanWebhook(s.r.QueryRowContext(ctx, s.sql(webhookByID), id))
}

// Webhooks lists endpoints oldest first, keyed by (created_at, id). An
// AppID keeps the endpoints of that application and those of every
// application.
func (s *Store) Webhooks(ctx context.Context, f tokend.WebhookFilter) (tokend.Page[tokend.Webhook], error) {
	var w where
	if f.AppID != "" {
		w.add(`(app_id = ? OR app_id IS NULL)`, f.AppID)
	}
	if f.Cursor != "" {
		at, id, err := tokend.ParseTimeCursor(cursorWebhooks, f.Cursor)
		if err != nil {
			return tokend.Page[tokend.Webhook]{}, err
		}
		w.add(`(created_at, id) > (?, ?)`, s.time(at), id)
	}
	limit := pageLimit(f.Limit)
	q := `SELECT ` + webhookColumns + ` FROM webhooks` + w.clause() + ` ORDER BY created_at, id LIMIT ` + w.arg(limit+1)
	items, err := list(ctx, s, s.r, "list webhooks", s.rebind(q), w.args, s.scanWebhook)
	if err != nil {
		return tokend.Page[tokend.Webhook]{}, err
	}
	return page(items, limit, func(last tokend.Webhook) string {
		return tokend.TimeCursor(cursorWebhooks, last.CreatedAt, last.ID)
	}), nil
}

// UpdateWebhook locks the row it reads, as UpdateApp does.
func (s *Store) UpdateWebhook(ctx context.Context, id string, fn func(w *tokend.Webhook) (tokend.Event, error)) (tokend.Webhook, error) {
	var w tokend.Webhook
	err := s.Write(ctx, func(tx *sql.Tx) error {
		var err error
		w, err = s.scanWebhook(tx.QueryRowContext(ctx, s.sql(webhookByID)+s.f.ForUpdate, id))
		if err != nil {
			return err
		}
		version := w.Version
		ev, err := fn(&w)
		if err != nil {
			return err
		}
		w.ID, w.Version = id, version+1
		args, err := s.webhookArgs(w)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.sql(updateWebhook), args...); err != nil {
			if s.f.ForeignKey(err) {
				return appNotFound(err)
			}
			return s.Err("update webhook", err)
		}
		return s.InsertEvent(ctx, tx, ev)
	})
	if err != nil {
		return tokend.Webhook{}, err
	}
	return w, nil
}

// DeleteWebhook deletes the endpoint; its deliveries and their attempts go
// by ON DELETE CASCADE. Events stay.
func (s *Store) DeleteWebhook(ctx context.Context, id string, version int64, ev tokend.Event) error {
	return s.Write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.sql(deleteWebhook), id, version)
		if err := s.affectedOne(res, err, "delete webhook"); err != nil {
			return s.staleIfExists(ctx, tx, webhookExists, id, err)
		}
		return s.InsertEvent(ctx, tx, ev)
	})
}

// webhookArgs lists w's columns in the order of webhookColumns.
func (s *Store) webhookArgs(w tokend.Webhook) ([]any, error) {
	if w.Events == nil {
		w.Events = []string{}
	}
	events, err := toJSON(w.Events)
	if err != nil {
		return nil, s.internal("webhook "+w.ID, err)
	}
	var appID, previous any // NULL: every application, no previous secret
	if w.AppID != "" {
		appID = w.AppID
	}
	if w.PreviousSecret != nil {
		previous = w.PreviousSecret
	}
	return []any{
		w.ID, w.URL, w.Description, appID, events, w.Enabled, w.DisabledReason,
		w.Secret, previous, s.nullTime(w.PreviousSecretUntil), s.nullTime(w.FailingSince),
		w.CreatedBy, s.time(w.CreatedAt), s.time(w.UpdatedAt), w.Version,
	}, nil
}

func (s *Store) scanWebhook(sc Row) (tokend.Webhook, error) {
	var (
		w                      tokend.Webhook
		appID                  sql.NullString
		events                 JSON
		previousUntil, failing NullTime
		created, updated       Time
	)
	err := sc.Scan(&w.ID, &w.URL, &w.Description, &appID, &events, &w.Enabled, &w.DisabledReason,
		&w.Secret, &w.PreviousSecret, &previousUntil, &failing, &w.CreatedBy, &created, &updated, &w.Version)
	if err != nil {
		return tokend.Webhook{}, s.Err("read webhook", err)
	}
	if w.Events, err = fromJSON[[]string](events); err != nil {
		return tokend.Webhook{}, s.internal("webhook "+w.ID, err)
	}
	w.AppID = appID.String
	w.PreviousSecretUntil, w.FailingSince = previousUntil.Ptr(), failing.Ptr()
	w.CreatedAt, w.UpdatedAt = created.Time, updated.Time
	return w, nil
}

// DispatchEvents: see tokend.WebhookStore. The deliveries fan answers need
// only ID, Kind, WebhookID or Recipient, and CreatedAt (now); the rest is
// the store's. A delivery to an endpoint deleted since fan read it is
// dropped.
func (s *Store) DispatchEvents(ctx context.Context, limit int, fan func(tokend.Notification) ([]tokend.Delivery, error)) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	// Most polls find nothing: they ask the read pool, without taking a
	// write transaction (on SQLite, the single writer).
	if none, err := s.none(ctx, anyUndispatched, false); none || err != nil {
		return 0, err
	}
	var n int
	err := s.retry(func() error {
		return s.Write(ctx, func(tx *sql.Tx) error {
			q := s.rebind(`SELECT ` + outboxColumns + ` FROM outbox WHERE dispatched = $1 ORDER BY seq LIMIT $2` + s.f.SkipLocked)
			events, err := list(ctx, s, tx, "dispatch events", q, s.listArgs([]any{false, limit}), s.ScanNotification)
			if err != nil {
				return err
			}
			for _, e := range events {
				ds, err := fan(e)
				if err != nil {
					return err
				}
				for _, d := range ds {
					if d.ID == "" || (d.Kind != tokend.DeliveryWebhook && d.Kind != tokend.DeliveryMail) {
						return s.internal("dispatch events", fmt.Errorf("a delivery of %s without id or kind", e.ID))
					}
					var webhookID any // NULL for a mail
					if d.Kind == tokend.DeliveryWebhook {
						webhookID = d.WebhookID
					}
					at := d.CreatedAt
					if at.IsZero() {
						at = time.Now()
					}
					_, err := tx.ExecContext(ctx, s.sql(insertDelivery),
						d.ID, d.Kind, webhookID, d.Recipient, e.Seq, e.TokenID, s.time(at))
					if err != nil {
						return s.Err("dispatch events", err)
					}
				}
				if _, err := tx.ExecContext(ctx, s.sql(markDispatched), e.Seq, true); err != nil {
					return s.Err("dispatch events", err)
				}
			}
			n = len(events)
			return nil
		})
	})
	return n, err
}

// ClaimDeliveries: see tokend.WebhookStore.
func (s *Store) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]tokend.ClaimedDelivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	if none, err := s.none(ctx, anyDue, s.time(now)); none || err != nil {
		return nil, err
	}
	var ids []string
	err := s.retry(func() error {
		return s.Write(ctx, func(tx *sql.Tx) error {
			// The row lock of SkipLocked lasts until the UPDATE below
			// commits: a second claimer skips these rows, and once they
			// are committed it sees the lease.
			q := s.rebind(`
				SELECT id FROM deliveries
				WHERE status = 'pending' AND next_at <= $1 AND (lease_until IS NULL OR lease_until <= $1)
				ORDER BY event_seq, id LIMIT $2` + s.f.SkipLocked)
			var err error
			ids, err = list(ctx, s, tx, "claim deliveries", q, []any{s.time(now), limit}, func(r Row) (string, error) {
				var id string
				return id, s.Err("claim deliveries", r.Scan(&id))
			})
			if err != nil || len(ids) == 0 {
				return err
			}
			var w where
			until := w.arg(s.time(now.Add(lease)))
			_, err = tx.ExecContext(ctx, s.rebind(`UPDATE deliveries SET lease_until = `+until+` WHERE id IN (`+w.in(ids)+`)`), w.args...)
			return s.Err("claim deliveries", err)
		})
	})
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	return s.claimed(ctx, ids)
}

// none reports whether the query q of one row finds none. It is planned
// for these very values (the flavor's ListArgs): PostgreSQL's generic plan
// of "dispatched = $1" cannot use the partial index of the undispatched
// events, and scans the whole outbox at every poll.
func (s *Store) none(ctx context.Context, q Query, args ...any) (bool, error) {
	var one int
	err := s.r.QueryRowContext(ctx, s.sql(q), s.listArgs(args)...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return true, nil
	}
	return false, s.Err("poll", err)
}

// claimed reads the deliveries of ids with their events, oldest event
// first. Not their endpoints: the dispatcher reads an endpoint when it
// attempts a delivery, as it is then (one disabled or moved while the
// delivery waited gets nothing at its old address).
func (s *Store) claimed(ctx context.Context, ids []string) ([]tokend.ClaimedDelivery, error) {
	var w where
	q := s.rebind(`SELECT ` + deliveryColumns + deliveryFrom + ` WHERE d.id IN (` + w.in(ids) + `) ORDER BY d.event_seq, d.id`)
	ds, err := list(ctx, s, s.r, "claim deliveries", q, w.args, s.scanDelivery)
	if err != nil {
		return nil, err
	}
	events := map[int64]tokend.Notification{}
	out := make([]tokend.ClaimedDelivery, 0, len(ds))
	for _, d := range ds {
		e, ok := events[d.EventSeq]
		if !ok {
			if e, err = s.ScanNotification(s.r.QueryRowContext(ctx, s.sql(outboxBySeq), d.EventSeq)); err != nil {
				return nil, err
			}
			events[d.EventSeq] = e
		}
		out = append(out, tokend.ClaimedDelivery{Delivery: d, Event: e})
	}
	return out, nil
}

// FinishAttempt: see tokend.WebhookStore. An attempt numbered as one
// already recorded (a worker whose lease lapsed while another attempted
// the delivery too, and recorded it first) changes nothing and answers
// ErrStale: the first record and the state it left stay.
func (s *Store) FinishAttempt(ctx context.Context, d tokend.Delivery, a tokend.DeliveryAttempt) error {
	return s.retry(func() error {
		return s.Write(ctx, func(tx *sql.Tx) error {
			var status any
			if d.LastStatus != nil {
				status = int64(*d.LastStatus)
			}
			res, err := tx.ExecContext(ctx, s.sql(finishDelivery), d.ID, d.Status, a.N, s.nullTime(d.NextAt),
				status, d.LastError, s.nullTime(d.DeliveredAt), a.N-1)
			if err := s.affectedOne(res, err, "finish attempt"); err != nil {
				return s.staleIfExists(ctx, tx, deliveryExists, d.ID, err)
			}
			var httpStatus any
			if a.HTTPStatus != nil {
				httpStatus = int64(*a.HTTPStatus)
			}
			if _, err := tx.ExecContext(ctx, s.sql(insertAttempt), d.ID, a.N, s.time(a.At), httpStatus,
				a.DurationMS, a.Error, s.nullTime(a.NextRetryAt)); err != nil {
				return s.Err("finish attempt", err)
			}
			if d.Kind != tokend.DeliveryWebhook || d.WebhookID == "" {
				return nil
			}
			if d.Status == tokend.DeliveryDelivered {
				_, err = tx.ExecContext(ctx, s.sql(webhookSucceeded), d.WebhookID)
			} else {
				_, err = tx.ExecContext(ctx, s.sql(webhookFailed), d.WebhookID, s.time(a.At))
			}
			return s.Err("finish attempt", err)
		})
	})
}

// Deliveries lists deliveries newest first, keyed by (created_at, id).
func (s *Store) Deliveries(ctx context.Context, f tokend.DeliveryFilter) (tokend.Page[tokend.Delivery], error) {
	var w where
	if f.WebhookID != "" {
		w.add(`d.webhook_id = ?`, f.WebhookID)
	}
	if f.Status != "" {
		w.add(`d.status = ?`, f.Status)
	}
	if f.Cursor != "" {
		at, id, err := tokend.ParseTimeCursor(cursorDeliveries, f.Cursor)
		if err != nil {
			return tokend.Page[tokend.Delivery]{}, err
		}
		w.add(`(d.created_at, d.id) < (?, ?)`, s.time(at), id)
	}
	limit := pageLimit(f.Limit)
	q := `SELECT ` + deliveryColumns + deliveryFrom + w.clause() + ` ORDER BY d.created_at DESC, d.id DESC LIMIT ` + w.arg(limit+1)
	items, err := list(ctx, s, s.r, "list deliveries", s.rebind(q), w.args, s.scanDelivery)
	if err != nil {
		return tokend.Page[tokend.Delivery]{}, err
	}
	return page(items, limit, func(last tokend.Delivery) string {
		return tokend.TimeCursor(cursorDeliveries, last.CreatedAt, last.ID)
	}), nil
}

func (s *Store) Delivery(ctx context.Context, id string) (tokend.Delivery, error) {
	d, err := s.scanDelivery(s.r.QueryRowContext(ctx, s.sql(deliveryByID), id))
	if err != nil {
		return tokend.Delivery{}, err
	}
	d.History, err = list(ctx, s, s.r, "read delivery", s.sql(deliveryAttempts), []any{id}, s.scanAttempt)
	if err != nil {
		return tokend.Delivery{}, err
	}
	return d, nil
}

// errDeliveryLeased answers a retry of a delivery a worker holds.
var errDeliveryLeased = tokend.Errorf(tokend.ECodeConflict, "the delivery is being attempted now: retry it once the attempt is recorded")

func (s *Store) RetryDelivery(ctx context.Context, id string, now time.Time, ev tokend.Event) (tokend.Delivery, error) {
	err := s.Write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.sql(retryDelivery), id, s.time(now))
		err = s.affectedOne(res, err, "retry delivery")
		if errors.Is(err, tokend.ErrNotFound) {
			var one int
			if tx.QueryRowContext(ctx, s.sql(deliveryExists), id).Scan(&one) == nil {
				return errDeliveryLeased
			}
		}
		if err != nil {
			return err
		}
		return s.InsertEvent(ctx, tx, ev)
	})
	if err != nil {
		return tokend.Delivery{}, err
	}
	return s.Delivery(ctx, id)
}

func (s *Store) scanDelivery(sc Row) (tokend.Delivery, error) {
	var (
		d               tokend.Delivery
		webhookID       sql.NullString
		next, delivered NullTime
		lastStatus      NullInt64
		created         Time
	)
	err := sc.Scan(&d.ID, &d.Kind, &webhookID, &d.Recipient, &d.EventSeq, &d.EventID, &d.EventType, &d.TokenID,
		&d.Status, &d.Attempts, &next, &lastStatus, &d.LastError, &created, &delivered)
	if err != nil {
		return tokend.Delivery{}, s.Err("read delivery", err)
	}
	d.WebhookID = webhookID.String
	d.NextAt, d.DeliveredAt = next.Ptr(), delivered.Ptr()
	if lastStatus.Valid {
		v := int(lastStatus.Int64)
		d.LastStatus = &v
	}
	d.CreatedAt = created.Time
	return d, nil
}

func (s *Store) scanAttempt(sc Row) (tokend.DeliveryAttempt, error) {
	var (
		a          tokend.DeliveryAttempt
		at         Time
		next       NullTime
		httpStatus NullInt64
	)
	if err := sc.Scan(&a.N, &at, &httpStatus, &a.DurationMS, &a.Error, &next); err != nil {
		return tokend.DeliveryAttempt{}, s.Err("read delivery", err)
	}
	a.At, a.NextRetryAt = at.Time, next.Ptr()
	if httpStatus.Valid {
		v := int(httpStatus.Int64)
		a.HTTPStatus = &v
	}
	return a, nil
}
