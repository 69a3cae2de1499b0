package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokend/tokend"
)

// insertEvent appends ev inside the caller's transaction, so that a change
// and its audit record are committed together or not at all. The id is the
// store's; ev.ID is ignored.
func insertEvent(ctx context.Context, tx pgx.Tx, ev tokend.Event) error {
	details, err := toJSON(ev.Details)
	if err != nil {
		return tokend.Internal(fmt.Errorf("postgres: event details: %w", err))
	}
	_, err = tx.Exec(ctx, `
		INSERT INTO events ("time", actor, actor_name, ip, action, app_id, token_id, details)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		ts(ev.Time), ev.Actor, ev.ActorName, ev.IP, ev.Action, ev.AppID, ev.TokenID, details)
	return storeErr("insert event", err)
}

func (s *Store) AppendEvent(ctx context.Context, ev tokend.Event) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		return insertEvent(ctx, tx, ev)
	})
}

// Events lists audit events newest first. Ids grow with every append, so the
// id alone is the sort key and the cursor.
func (s *Store) Events(ctx context.Context, f tokend.EventFilter) (tokend.Page[tokend.Event], error) {
	var w whereArgs
	if f.TokenID != "" {
		w.add("token_id = ?", f.TokenID)
	}
	if f.AppID != "" {
		w.add("app_id = ?", f.AppID)
	}
	if f.Action != "" {
		w.add("action = ?", f.Action)
	}
	if !f.Since.IsZero() {
		w.add(`"time" >= ?`, ts(f.Since))
	}
	if !f.Until.IsZero() {
		w.add(`"time" < ?`, ts(f.Until))
	}
	if f.Cursor != "" {
		id, err := parseIDCursor(kindEvent, f.Cursor)
		if err != nil {
			return tokend.Page[tokend.Event]{}, err
		}
		w.add("id < ?", id)
	}
	limit := pageLimit(f.Limit)
	// One more tells whether a next page exists.
	q := `SELECT id, "time", actor, actor_name, ip, action, app_id, token_id, details FROM events` +
		w.clause() + ` ORDER BY id DESC LIMIT ` + w.arg(limit+1)

	rows, err := s.pool.Query(ctx, q, w.args...)
	if err != nil {
		return tokend.Page[tokend.Event]{}, storeErr("list events", err)
	}
	defer rows.Close()
	page := tokend.Page[tokend.Event]{Items: []tokend.Event{}}
	for rows.Next() {
		ev, err := scanEvent(rows)
		if err != nil {
			return tokend.Page[tokend.Event]{}, err
		}
		page.Items = append(page.Items, ev)
	}
	if err := rows.Err(); err != nil {
		return tokend.Page[tokend.Event]{}, storeErr("list events", err)
	}
	if len(page.Items) > limit {
		page.Items = page.Items[:limit]
		page.NextCursor = idCursor(kindEvent, page.Items[limit-1].ID)
	}
	return page, nil
}

func scanEvent(sc pgx.Row) (tokend.Event, error) {
	var (
		ev      tokend.Event
		at      time.Time
		details []byte
	)
	if err := sc.Scan(&ev.ID, &at, &ev.Actor, &ev.ActorName, &ev.IP, &ev.Action, &ev.AppID, &ev.TokenID, &details); err != nil {
		return tokend.Event{}, storeErr("read event", err)
	}
	ev.Time = at.UTC()
	d, err := fromJSON[map[string]any](details)
	if err != nil {
		return tokend.Event{}, tokend.Internal(fmt.Errorf("postgres: event %d: %w", ev.ID, err))
	}
	ev.Details = d
	return ev, nil
}
