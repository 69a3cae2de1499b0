package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/tokend/tokend"
)

// insertEvent appends ev inside the caller's transaction, so that a change
// and its audit record are committed together or not at all. The id is the
// store's; ev.ID is ignored.
func insertEvent(ctx context.Context, tx *sql.Tx, ev tokend.Event) error {
	details, err := toJSON(ev.Details)
	if err != nil {
		return tokend.Internal(fmt.Errorf("sqlite: event details: %w", err))
	}
	_, err = tx.ExecContext(ctx, `
		INSERT INTO events (time, actor, actor_name, ip, action, app_id, token_id, details)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		micros(ev.Time), ev.Actor, ev.ActorName, ev.IP, ev.Action, ev.AppID, ev.TokenID, details)
	return storeErr("insert event", err)
}

func (s *Store) AppendEvent(ctx context.Context, ev tokend.Event) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		return insertEvent(ctx, tx, ev)
	})
}

// Events lists audit events newest first. Ids grow with every append, so the
// id alone is the sort key and the cursor.
func (s *Store) Events(ctx context.Context, f tokend.EventFilter) (tokend.Page[tokend.Event], error) {
	var (
		where []string
		args  []any
	)
	if f.TokenID != "" {
		where, args = append(where, "token_id = ?"), append(args, f.TokenID)
	}
	if f.AppID != "" {
		where, args = append(where, "app_id = ?"), append(args, f.AppID)
	}
	if f.Action != "" {
		where, args = append(where, "action = ?"), append(args, f.Action)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "time >= ?"), append(args, micros(f.Since))
	}
	if !f.Until.IsZero() {
		where, args = append(where, "time < ?"), append(args, micros(f.Until))
	}
	if f.Cursor != "" {
		id, err := parseIDCursor(kindEvent, f.Cursor)
		if err != nil {
			return tokend.Page[tokend.Event]{}, err
		}
		where, args = append(where, "id < ?"), append(args, id)
	}
	limit := pageLimit(f.Limit)
	q := `SELECT id, time, actor, actor_name, ip, action, app_id, token_id, details FROM events`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT ?"
	args = append(args, limit+1) // one more tells whether a next page exists

	rows, err := s.r.QueryContext(ctx, q, args...)
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

func scanEvent(sc scanner) (tokend.Event, error) {
	var (
		ev      tokend.Event
		at      int64
		details string
	)
	if err := sc.Scan(&ev.ID, &at, &ev.Actor, &ev.ActorName, &ev.IP, &ev.Action, &ev.AppID, &ev.TokenID, &details); err != nil {
		return tokend.Event{}, storeErr("read event", err)
	}
	ev.Time = fromMicros(at)
	d, err := fromJSON[map[string]any](details)
	if err != nil {
		return tokend.Event{}, tokend.Internal(fmt.Errorf("sqlite: event %d: %w", ev.ID, err))
	}
	ev.Details = d
	return ev, nil
}
