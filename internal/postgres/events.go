package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokend/tokend"
)

// eventsLockID keys the advisory lock that keeps readers of the audit log
// from seeing an event before every event with a lower id (see
// insertEvent). It differs from migrationLockID.
const eventsLockID int64 = 0x746f6b656e64_01

// insertEvent appends ev inside the caller's transaction, so that a change
// and its audit record are committed together or not at all. The id is the
// store's; ev.ID is ignored.
//
// Ids come from an identity sequence, drawn when the row is inserted, but a
// row becomes visible when its transaction commits, and two writers may
// commit in the other order. A reader that saw the higher id, and later
// followed the log from there (newest first, down to the highest id it
// knew), would never see the lower one. So a writer draws its id holding
// the events lock in shared mode until it commits, and Events reads holding
// it exclusively: a read waits for the writers that already drew ids, and
// sees a gap-free prefix of the log. Writers do not wait for each other, so
// their commits still share fsyncs; they wait only while a read runs.
func insertEvent(ctx context.Context, tx pgx.Tx, ev tokend.Event) error {
	details, err := toJSON(ev.Details)
	if err != nil {
		return tokend.Internal(fmt.Errorf("postgres: event details: %w", err))
	}
	// One round trip for both statements.
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock_shared($1)`, eventsLockID)
	b.Queue(`
		INSERT INTO events ("time", actor, actor_name, ip, action, app_id, token_id, details)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		ts(ev.Time), ev.Actor, ev.ActorName, ev.IP, ev.Action, ev.AppID, ev.TokenID, details)
	return storeErr("insert event", tx.SendBatch(ctx, b).Close())
}

func (s *Store) AppendEvent(ctx context.Context, ev tokend.Event) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		return insertEvent(ctx, tx, ev)
	})
}

// Events lists audit events newest first. Ids grow with every append, and
// become visible in that order (see insertEvent), so the id alone is the
// sort key and the cursor, and a later read never finds a new event below
// an id an earlier one answered.
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

	// The exclusive events lock, held for this read only: see insertEvent.
	page := tokend.Page[tokend.Event]{Items: []tokend.Event{}}
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, eventsLockID); err != nil {
			return storeErr("list events", err)
		}
		rows, err := tx.Query(ctx, q, listArgs(w.args)...)
		if err != nil {
			return storeErr("list events", err)
		}
		defer rows.Close()
		for rows.Next() {
			ev, err := scanEvent(rows)
			if err != nil {
				return err
			}
			page.Items = append(page.Items, ev)
		}
		return storeErr("list events", rows.Err())
	})
	if err != nil {
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
