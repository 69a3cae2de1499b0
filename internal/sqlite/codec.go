package sqlite

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/tokend/tokend"
)

// Times are stored as INTEGER unix microseconds in UTC. Microseconds are what
// PostgreSQL's timestamptz keeps, so both backends give back the same times;
// they also cover any year a user may type, where nanoseconds end in 2262.

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(n int64) time.Time { return time.UnixMicro(n).UTC() }

// nullMicros stores a nil time as NULL.
func nullMicros(t *time.Time) any {
	if t == nil {
		return nil
	}
	return micros(*t)
}

func fromNullMicros(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromMicros(n.Int64)
	return &t
}

func nullInt64(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

func fromNullInt64(n sql.NullInt64) *int64 {
	if !n.Valid {
		return nil
	}
	v := n.Int64
	return &v
}

// toJSON encodes lists and objects. A nil slice or map becomes the JSON
// literal null and an empty one [] or {}, so that each reads back as it was
// written.
func toJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode %T: %w", v, err)
	}
	return string(b), nil
}

// fromJSON decodes what toJSON wrote. Numbers in maps come back as float64,
// as they do from any JSON request body.
func fromJSON[T any](s string) (T, error) {
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return v, fmt.Errorf("decode %T: %w", v, err)
	}
	return v, nil
}

// jsonCodec encodes or decodes several columns and keeps the first error, so
// that a row's JSON columns are handled in a few lines.
type jsonCodec struct{ err error }

func (j *jsonCodec) encode(v any) string {
	if j.err != nil {
		return ""
	}
	s, err := toJSON(v)
	j.err = err
	return s
}

func decode[T any](j *jsonCodec, s string) T {
	if j.err != nil {
		var zero T
		return zero
	}
	v, err := fromJSON[T](s)
	j.err = err
	return v
}

// pageLimit applies the default and the cap of tokend's page sizes.
func pageLimit(n int) int {
	switch {
	case n <= 0:
		return tokend.DefaultPageSize
	case n > tokend.MaxPageSize:
		return tokend.MaxPageSize
	}
	return n
}

// Cursors are base64url of "<kind>:<sort key>". The kind stops a cursor of
// one list from being replayed against another.
const (
	kindToken = tokend.CursorTokens
	kindApp   = tokend.CursorApps
	kindEvent = tokend.CursorEvents
)

// Cursors are the domain's (tokend.TimeCursor, tokend.IDCursor), decoded
// strictly there; the store keeps times as microseconds.
func timeCursor(kind string, at time.Time, id string) string {
	return tokend.TimeCursor(kind, at, id)
}

func parseTimeCursor(kind, s string) (at int64, id string, err error) {
	t, id, err := tokend.ParseTimeCursor(kind, s)
	if err != nil {
		return 0, "", err
	}
	return micros(t), id, nil
}

func idCursor(kind string, id int64) string { return tokend.IDCursor(kind, id) }

func parseIDCursor(kind, s string) (int64, error) { return tokend.ParseIDCursor(kind, s) }

// likeContains is a LIKE pattern (with ESCAPE '\') matching q anywhere, with
// q's own wildcards taken literally: a search for "50%" must not match every
// name starting with "50".
func likeContains(q string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(q) + "%"
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}
