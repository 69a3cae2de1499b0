package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/tokend/tokend"
)

const eventColumns = `id, "time", actor, actor_name, ip, action, app_id, token_id, details`

var insertEvent = Q(`
	INSERT INTO events ("time", actor, actor_name, ip, action, app_id, token_id, details)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
	RETURNING id`)

// InsertEvent appends ev inside the caller's transaction, so that a change
// and its audit record are committed together or not at all. The id is the
// store's; ev.ID is ignored. The flavor's EventWriteLock comes first (see
// postgres/events.go for why PostgreSQL needs one). The row joins the
// audit hash chain here or after the commit (chainEvent).
func (s *Store) InsertEvent(ctx context.Context, tx *sql.Tx, ev tokend.Event) error {
	details, err := toJSON(ev.Details)
	if err != nil {
		return s.internal("event details", err)
	}
	if s.f.EventWriteLock != "" {
		if _, err := tx.ExecContext(ctx, s.f.EventWriteLock); err != nil {
			return s.Err("insert event", err)
		}
	}
	var id int64
	err = tx.QueryRowContext(ctx, s.sql(insertEvent),
		s.time(ev.Time), ev.Actor, ev.ActorName, ev.IP, ev.Action, ev.AppID, ev.TokenID, details).Scan(&id)
	if err != nil {
		return s.Err("insert event", err)
	}
	if err := s.chainEvent(ctx, tx, id); err != nil {
		return err
	}
	return s.insertNotices(ctx, tx, ev)
}

func (s *Store) AppendEvent(ctx context.Context, ev tokend.Event) error {
	return s.Write(ctx, func(tx *sql.Tx) error {
		return s.InsertEvent(ctx, tx, ev)
	})
}

// Events lists audit events newest first. Ids grow with every append, and
// become visible in that order (see the flavor's EventReadLock), so the id
// alone is the sort key and the cursor, and a later read never finds a new
// event below an id an earlier one answered.
func (s *Store) Events(ctx context.Context, f tokend.EventFilter) (tokend.Page[tokend.Event], error) {
	var w where
	if f.TokenID != "" {
		w.add("token_id = ?", f.TokenID)
	}
	if f.AppID != "" {
		w.add("app_id = ?", f.AppID)
	}
	if f.Action != "" {
		w.add("action = ?", f.Action)
	}
	scopeEvents(&w, f.Scope)
	if err := s.logRange(&w, `"time"`, f.Since, f.Until, "id", tokend.CursorEvents, f.Cursor); err != nil {
		return tokend.Page[tokend.Event]{}, err
	}
	limit := pageLimit(f.Limit)
	// One more tells whether a next page exists.
	q := s.rebind(`SELECT ` + eventColumns + ` FROM events` + w.clause() + ` ORDER BY id DESC LIMIT ` + w.arg(limit+1))
	items, err := readLocked(ctx, s, "list events", q, s.listArgs(w.args), s.scanEvent)
	if err != nil {
		return tokend.Page[tokend.Event]{}, err
	}
	return page(items, limit, func(last tokend.Event) string { return tokend.IDCursor(tokend.CursorEvents, last.ID) }), nil
}

// logRange adds to w the time range [since, until) of timeCol (a zero
// bound: none) and the cursor of a log read newest first by seqCol.
func (s *Store) logRange(w *where, timeCol string, since, until time.Time, seqCol, kind, cursor string) error {
	if !since.IsZero() {
		w.add(timeCol+` >= ?`, s.time(since))
	}
	if !until.IsZero() {
		w.add(timeCol+` < ?`, s.time(until))
	}
	if cursor != "" {
		seq, err := tokend.ParseIDCursor(kind, cursor)
		if err != nil {
			return err
		}
		w.add(seqCol+" < ?", seq)
	}
	return nil
}

// readLocked runs q, holding the flavor's EventReadLock for this read only:
// the audit log and the outbox are both written under its EventWriteLock.
func readLocked[T any](ctx context.Context, s *Store, op, q string, args []any, scan func(Row) (T, error)) ([]T, error) {
	if s.f.EventReadLock == "" {
		return list(ctx, s, s.r, op, q, args, scan)
	}
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, s.Err(op, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, s.f.EventReadLock); err != nil {
		return nil, s.Err(op, err)
	}
	items, err := list(ctx, s, tx, op, q, args, scan)
	if err != nil {
		return nil, err
	}
	return items, s.Err(op, tx.Commit())
}

func (s *Store) scanEvent(sc Row) (tokend.Event, error) {
	var (
		ev      tokend.Event
		at      Time
		details JSON
	)
	if err := sc.Scan(&ev.ID, &at, &ev.Actor, &ev.ActorName, &ev.IP, &ev.Action, &ev.AppID, &ev.TokenID, &details); err != nil {
		return tokend.Event{}, s.Err("read event", err)
	}
	ev.Time = at.Time
	d, err := fromJSON[map[string]any](details)
	if err != nil {
		return tokend.Event{}, s.internal(fmt.Sprintf("event %d", ev.ID), err)
	}
	ev.Details = d
	return ev, nil
}
