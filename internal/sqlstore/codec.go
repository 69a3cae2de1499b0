package sqlstore

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tokend/tokend"
)

// Times are whole microseconds in UTC on both databases: SQLite keeps
// INTEGER unix microseconds, PostgreSQL timestamptz (see each flavor's
// Time). Microseconds are what timestamptz keeps, so both give back the
// same times.

// time converts t for the flavor's time columns.
func (s *Store) time(t time.Time) any { return s.f.Time(t) }

// nullTime stores a nil time as NULL.
func (s *Store) nullTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return s.f.Time(*t)
}

// NullTime is a scan destination for a nullable time column of either
// database: INTEGER unix microseconds (SQLite) or a timestamp (PostgreSQL,
// through database/sql or pgx). Times come back in UTC.
type NullTime struct {
	Time  time.Time
	Valid bool
}

// Scan implements sql.Scanner.
func (n *NullTime) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*n = NullTime{}
	case int64:
		*n = NullTime{Time: time.UnixMicro(v).UTC(), Valid: true}
	case time.Time:
		*n = NullTime{Time: v.UTC(), Valid: true}
	default:
		return fmt.Errorf("cannot read %T as a time", src)
	}
	return nil
}

// ScanTimestamptz lets pgx decode a timestamptz straight into n, without
// the detour through an interface value that sql.Scanner takes (the
// verification cache miss reads tokens through pgx; see
// postgres.TokenBySecret).
func (n *NullTime) ScanTimestamptz(v pgtype.Timestamptz) error {
	*n = NullTime{Time: v.Time.UTC(), Valid: v.Valid}
	return nil
}

// Ptr answers nil for NULL.
func (n NullTime) Ptr() *time.Time {
	if !n.Valid {
		return nil
	}
	t := n.Time
	return &t
}

// Time is a scan destination for a time column that is never NULL.
type Time struct{ NullTime }

// Scan implements sql.Scanner.
func (t *Time) Scan(src any) error {
	if src == nil {
		return fmt.Errorf("a NULL time where none may be")
	}
	return t.NullTime.Scan(src)
}

// JSON is a scan destination for a JSON column: TEXT (SQLite) or jsonb
// (PostgreSQL). It keeps a copy of the text: the driver's bytes are valid
// only until the row is closed, which QueryRow does before answering. NULL
// (a nullable column such as tokens.scope) reads as nil, from database/sql
// and from pgx alike; a column that is never NULL then fails to decode.
type JSON []byte

// Scan implements sql.Scanner.
func (j *JSON) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*j = nil
	case string:
		*j = JSON(v)
	case []byte:
		*j = append((*j)[:0], v...)
	default:
		return fmt.Errorf("cannot read %T as JSON", src)
	}
	return nil
}

// ScanBytes lets pgx hand over a jsonb value without an interface value
// (nil for NULL).
func (j *JSON) ScanBytes(v []byte) error {
	if v == nil {
		*j = nil
		return nil
	}
	*j = append((*j)[:0], v...)
	return nil
}

// NullInt64 is a scan destination for a nullable integer column.
type NullInt64 struct {
	Int64 int64
	Valid bool
}

// Scan implements sql.Scanner.
func (n *NullInt64) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*n = NullInt64{}
	case int64:
		*n = NullInt64{Int64: v, Valid: true}
	default:
		return fmt.Errorf("cannot read %T as an integer", src)
	}
	return nil
}

// ScanInt64 lets pgx decode an integer without an interface value.
func (n *NullInt64) ScanInt64(v pgtype.Int8) error {
	*n = NullInt64{Int64: v.Int64, Valid: v.Valid}
	return nil
}

// Ptr answers nil for NULL.
func (n NullInt64) Ptr() *int64 {
	if !n.Valid {
		return nil
	}
	v := n.Int64
	return &v
}

func nullInt64(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

// nullDuration stores a nil duration as NULL, and a duration as its
// nanoseconds.
func nullDuration(d *tokend.Duration) any {
	if d == nil {
		return nil
	}
	return int64(*d)
}

func fromNullDuration(n NullInt64) *tokend.Duration {
	if !n.Valid {
		return nil
	}
	d := tokend.Duration(time.Duration(n.Int64))
	return &d
}

// toJSON encodes lists and objects. A nil slice or map becomes the JSON
// literal null and an empty one [] or {}, so that each reads back as it was
// written. The text goes to a TEXT or jsonb column as is.
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

func decode[T any](j *jsonCodec, b JSON) T {
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

// page cuts one row more than limit off items, which tells that a next page
// exists, and answers the cursor of the last row kept.
func page[T any](items []T, limit int, cursor func(last T) string) tokend.Page[T] {
	p := tokend.Page[T]{Items: items}
	if len(items) > limit {
		p.Items = items[:limit]
		p.NextCursor = cursor(items[limit-1])
	}
	return p
}

// likeContains is a LIKE pattern (with ESCAPE '\') matching q anywhere, with
// q's own wildcards taken literally: a search for "50%" must not match every
// name starting with "50".
func likeContains(q string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(q) + "%"
}

// where builds a WHERE clause with numbered placeholders.
type where struct {
	conds []string
	args  []any
}

// add appends a condition in which each "?" is the next argument.
func (w *where) add(cond string, args ...any) {
	for _, a := range args {
		cond = strings.Replace(cond, "?", w.arg(a), 1)
	}
	w.conds = append(w.conds, cond)
}

// arg adds an argument without a condition and answers its placeholder.
func (w *where) arg(a any) string {
	w.args = append(w.args, a)
	return "$" + strconv.Itoa(len(w.args))
}

// in adds the arguments of an IN list and answers its placeholders,
// comma-separated.
func (w *where) in(ids []string) string {
	ph := make([]string, len(ids))
	for i, id := range ids {
		ph[i] = w.arg(id)
	}
	return strings.Join(ph, ", ")
}

func (w *where) clause() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// listArgs are the arguments of a filtered list query, after the flavor's
// ListArgs (see postgres.flavor).
func (s *Store) listArgs(args []any) []any {
	if len(s.f.ListArgs) == 0 {
		return args
	}
	return append(append([]any(nil), s.f.ListArgs...), args...)
}
