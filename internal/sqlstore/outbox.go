package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/secret"
)

// The outbox: the product events (tokend.Notification) that GET /v1/events
// lists and that webhooks and mail deliver. A row is written by
// InsertEvent, for each Notice of the audit event, in the transaction of
// the change it reports; seq orders it as the audit log's id orders that,
// under the same locks, so that a reader following it never misses a row.

var _ tokend.EventStore = (*Store)(nil)

const outboxColumns = `seq, id, type, occurred_at, app_id, token_id, actor, data`

var (
	insertOutbox = Q(`
		INSERT INTO outbox (id, type, occurred_at, app_id, token_id, actor, data)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`)
	insertMark = Q(`
		INSERT INTO event_marks (token_id, kind, at) VALUES ($1, $2, $3)
		ON CONFLICT DO NOTHING`)
)

// insertNotices writes ev's notices to the outbox, in tx, after ev's audit
// row (so under the flavor's EventWriteLock).
func (s *Store) insertNotices(ctx context.Context, tx *sql.Tx, ev tokend.Event) error {
	if len(ev.Notices) == 0 {
		return nil
	}
	actor, err := toJSON(EventActor(ev))
	if err != nil {
		return s.internal("event actor", err)
	}
	for _, n := range ev.Notices {
		data := n.Data
		if data == nil {
			data = map[string]any{}
		}
		d, err := toJSON(data)
		if err != nil {
			return s.internal("event data", err)
		}
		id := n.ID // the service may name the event (a webhook test answers its id)
		if id == "" {
			if id, err = secret.NewID("evt"); err != nil {
				return tokend.Internal(err)
			}
		}
		s.outboxWritten.Store(true)
		_, err = tx.ExecContext(ctx, s.sql(insertOutbox),
			id, n.Type, s.time(ev.Time), ev.AppID, ev.TokenID, actor, d)
		if err != nil {
			return s.Err("insert outbox", err)
		}
	}
	return nil
}

// EventActor is who caused ev, as subscribers see it: the kind and id of
// the audit actor ("token:tok_…", "user:usr_…", "owner:…", "system") and
// its name.
func EventActor(ev tokend.Event) tokend.EventActor {
	kind, id, ok := strings.Cut(ev.Actor, ":")
	if !ok {
		kind, id = ev.Actor, ev.Actor // "system"
	}
	return tokend.EventActor{Type: kind, ID: id, Name: ev.ActorName}
}

// Notifications lists the outbox newest first, by seq (see Events: the same
// locks make seq a safe cursor).
func (s *Store) Notifications(ctx context.Context, f tokend.NotificationFilter) (tokend.Page[tokend.Notification], error) {
	var w where
	if f.Type != "" {
		w.add("type = ?", f.Type)
	}
	if f.TokenID != "" {
		w.add("token_id = ?", f.TokenID)
	}
	if f.AppID != "" {
		w.add("app_id = ?", f.AppID)
	}
	scopeEvents(&w, f.Scope)
	if err := s.logRange(&w, "occurred_at", f.Since, f.Until, "seq", tokend.CursorNotifications, f.Cursor); err != nil {
		return tokend.Page[tokend.Notification]{}, err
	}
	limit := pageLimit(f.Limit)
	q := s.rebind(`SELECT ` + outboxColumns + ` FROM outbox` + w.clause() + ` ORDER BY seq DESC LIMIT ` + w.arg(limit+1))
	items, err := readLocked(ctx, s, "list notifications", q, s.listArgs(w.args), s.ScanNotification)
	if err != nil {
		return tokend.Page[tokend.Notification]{}, err
	}
	return page(items, limit, func(last tokend.Notification) string {
		return tokend.IDCursor(tokend.CursorNotifications, last.Seq)
	}), nil
}

// ScanNotification reads a row of outboxColumns.
func (s *Store) ScanNotification(sc Row) (tokend.Notification, error) {
	var (
		n           tokend.Notification
		at          Time
		actor, data JSON
	)
	if err := sc.Scan(&n.Seq, &n.ID, &n.Type, &at, &n.AppID, &n.TokenID, &actor, &data); err != nil {
		return tokend.Notification{}, s.Err("read notification", err)
	}
	n.OccurredAt = at.Time
	var j jsonCodec
	n.Actor = decode[tokend.EventActor](&j, actor)
	n.Data = decode[map[string]any](&j, data)
	if j.err != nil {
		return tokend.Notification{}, s.internal(fmt.Sprintf("notification %d", n.Seq), j.err)
	}
	if n.Data == nil {
		n.Data = map[string]any{}
	}
	return n, nil
}

// RaiseOnce inserts the mark and, when it was not there, ev with its
// notices, in one transaction: the mark's primary key lets one of any
// number of concurrent raises through. A mark of a token that does not
// exist (deleted meanwhile) is ErrNotFound.
func (s *Store) RaiseOnce(ctx context.Context, m tokend.EventMark, ev tokend.Event) (bool, error) {
	var raised bool
	err := s.retry(func() error {
		raised = false
		return s.Write(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, s.sql(insertMark), m.TokenID, m.Kind, s.time(m.At))
			if err != nil && s.f.ForeignKey != nil && s.f.ForeignKey(err) {
				return tokend.ErrNotFound
			}
			n, err := s.affected(res, err, "raise event")
			if err != nil || n == 0 {
				return err
			}
			raised = true
			return s.InsertEvent(ctx, tx, ev)
		})
	})
	if err != nil {
		return false, err
	}
	return raised, nil
}

// Lead runs fn unless another instance runs one of the same name: on
// PostgreSQL it holds a transaction-scoped advisory lock (the flavor's
// LeadLock) while fn runs, and answers false at once when another holds
// it; where one process owns the database (SQLite) it just runs fn. fn
// makes its own transactions; the lock's is only held open.
func (s *Store) Lead(ctx context.Context, name string, fn func(context.Context) error) (bool, error) {
	if s.f.LeadLock == "" {
		return true, fn(ctx)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return false, s.Err("lead", err)
	}
	defer tx.Rollback()
	var got bool
	if err := tx.QueryRowContext(ctx, s.rebind(s.f.LeadLock), name).Scan(&got); err != nil {
		return false, s.Err("lead", err)
	}
	if !got {
		return false, nil
	}
	return true, fn(ctx)
}
