package postgres

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokend/tokend"
)

// Times are written as whole microseconds in UTC, truncated the way the
// SQLite store truncates them, so that both backends give back the same
// times; timestamptz keeps exactly that. PostgreSQL would round a nanosecond
// remainder instead, so the store never lets one reach it.
func ts(t time.Time) time.Time { return time.UnixMicro(t.UnixMicro()).UTC() }

// nullTS stores a nil time as NULL.
func nullTS(t *time.Time) any {
	if t == nil {
		return nil
	}
	return ts(*t)
}

// fromNullTS reads a nullable timestamptz; pgx answers times in the local
// zone, the domain keeps UTC.
func fromNullTS(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func nullInt64(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

// toJSON encodes lists and objects. A nil slice or map becomes the JSON
// literal null and an empty one [] or {}, so that each reads back as it was
// written. The text goes to a jsonb column as is.
func toJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode %T: %w", v, err)
	}
	return string(b), nil
}

// fromJSON decodes what toJSON wrote. Numbers in maps come back as float64,
// as they do from any JSON request body.
func fromJSON[T any](b []byte) (T, error) {
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
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

func decode[T any](j *jsonCodec, b []byte) T {
	if j.err != nil {
		var zero T
		return zero
	}
	v, err := fromJSON[T](b)
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

// Cursors are base64url of "<kind>:<sort key>", as on SQLite. The kind stops
// a cursor of one list from being replayed against another.
const (
	kindToken = tokend.CursorTokens
	kindApp   = tokend.CursorApps
	kindEvent = tokend.CursorEvents
)

// Cursors are the domain's (tokend.TimeCursor, tokend.IDCursor), decoded
// strictly there.
func timeCursor(kind string, at time.Time, id string) string {
	return tokend.TimeCursor(kind, at, id)
}

func parseTimeCursor(kind, s string) (at time.Time, id string, err error) {
	return tokend.ParseTimeCursor(kind, s)
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

// listArgs are the arguments of a filtered list query, run so that the
// server plans it for these very values. A statement prepared once and run
// many times gets, after a few runs, a generic plan made without them; with
// a million tokens the generic plan of "expired" walks every token when few
// have expired, and that of a name search that matches every token sorts
// them all, where the plans for the values take milliseconds.
func listArgs(args []any) []any {
	return append([]any{pgx.QueryExecModeExec}, args...)
}

// whereArgs builds a WHERE clause with numbered placeholders.
type whereArgs struct {
	conds []string
	args  []any
}

// add appends a condition in which each "?" is the next argument.
func (w *whereArgs) add(cond string, args ...any) {
	for _, a := range args {
		w.args = append(w.args, a)
		cond = strings.Replace(cond, "?", "$"+strconv.Itoa(len(w.args)), 1)
	}
	w.conds = append(w.conds, cond)
}

// arg adds an argument without a condition and answers its placeholder.
func (w *whereArgs) arg(a any) string {
	w.args = append(w.args, a)
	return "$" + strconv.Itoa(len(w.args))
}

func (w *whereArgs) clause() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}
