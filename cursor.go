package tokend

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Cursors of keyset-paginated lists are base64url (unpadded) of
// "<kind>:<sort key>": "<kind>:<created_at in µs>:<id>" for lists sorted by
// time, "<kind>:<id>" for lists sorted by a number. The kind stops a cursor
// of one list from being replayed against another. Both stores use these
// functions, so that a cursor means the same on each, and decode strictly:
// only what Encode could have written is accepted, so nothing a caller
// crafts reaches a query as an out-of-range time or a NUL byte.
const (
	CursorTokens = "t"
	CursorApps   = "a"
	CursorEvents = "e"
	// CursorNotifications is the outbox (GET /v1/events), by seq.
	CursorNotifications = "n"
)

// Cursor times lie in years 1 to 9999, which every store can hold.
var (
	minCursorTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	maxCursorTime = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC).UnixMicro()
)

// ErrBadCursor answers a cursor no store gave out for this list: the
// caller's mistake (422 on the cursor field), not a server error.
func ErrBadCursor() error {
	var p Problems
	p.Add("cursor", "is not a cursor from a previous page of this list")
	return p.Err()
}

// ErrBadSort answers a sort or order no list has (422 on the field).
func ErrBadSort() error {
	var p Problems
	p.Add("sort", "must be name, created_at, expires_at or last_used_at, in order asc or desc")
	return p.Err()
}

// TimeCursor encodes a (time, id) sort key.
func TimeCursor(kind string, at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + strconv.FormatInt(at.UnixMicro(), 10) + ":" + id))
}

// ParseTimeCursor decodes what TimeCursor wrote for kind.
func ParseTimeCursor(kind, s string) (at time.Time, id string, err error) {
	raw, ok := cursorBody(kind, s)
	if !ok {
		return time.Time{}, "", ErrBadCursor()
	}
	n, id, ok := strings.Cut(raw, ":")
	if !ok || !ValidID(id) {
		return time.Time{}, "", ErrBadCursor()
	}
	us, err := strconv.ParseInt(n, 10, 64)
	if err != nil || us < minCursorTime || us > maxCursorTime || strconv.FormatInt(us, 10) != n {
		return time.Time{}, "", ErrBadCursor()
	}
	return time.UnixMicro(us).UTC(), id, nil
}

// IDCursor encodes a numeric sort key.
func IDCursor(kind string, id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + strconv.FormatInt(id, 10)))
}

// ParseIDCursor decodes what IDCursor wrote for kind; ids are positive.
func ParseIDCursor(kind, s string) (int64, error) {
	n, ok := cursorBody(kind, s)
	if !ok {
		return 0, ErrBadCursor()
	}
	id, err := strconv.ParseInt(n, 10, 64)
	if err != nil || id <= 0 || strconv.FormatInt(id, 10) != n {
		return 0, ErrBadCursor()
	}
	return id, nil
}

// cursorBody answers what follows "<kind>:" in the cursor s, which must be
// canonical base64url: encoding it again gives s back.
func cursorBody(kind, s string) (string, bool) {
	if s == "" || len(s) > 512 {
		return "", false
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || base64.RawURLEncoding.EncodeToString(raw) != s {
		return "", false
	}
	return strings.CutPrefix(string(raw), kind+":")
}

// MaxIDLen bounds an id: a kind, "_", and the random part (or a built-in
// name such as app_system).
const MaxIDLen = 64

// ValidID reports whether s has the shape of an id tokend gives out: a
// lower-case kind, "_", then ASCII letters, digits and underscores (tok_…,
// app_…, usr_…, app_system). An id of any other shape names nothing, so it is answered
// as not found without asking a store.
func ValidID(s string) bool {
	if len(s) < 3 || len(s) > MaxIDLen {
		return false
	}
	kind, rest, ok := strings.Cut(s, "_")
	if !ok || kind == "" || rest == "" {
		return false
	}
	for i := 0; i < len(kind); i++ {
		if c := kind[i]; c < 'a' || c > 'z' {
			return false
		}
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// TokenKey is where a page of a sorted token list ended: the sort column's
// value of the last token (Null when it has none: never used, never
// expires) and its id, which breaks ties.
type TokenKey struct {
	Time time.Time // created_at, expires_at, last_used_at
	Name string    // name
	Null bool
	ID   string
}

// tokenCursorKind names a token list's sort and order in its cursors, so
// that a cursor of one order is refused by another. Newest first keeps the
// kind (and the TimeCursor form) that list has always had.
func tokenCursorKind(sort string, desc bool) string {
	if sort == TokenSortCreated && desc {
		return CursorTokens
	}
	dir := "+"
	if desc {
		dir = "-"
	}
	return CursorTokens + "." + sort + dir
}

// TokenCursor encodes where a page of tokens sorted by sort (as TokenOrder
// resolved it) ended: t is its last token. Past the newest-first list the
// body is "<id>:<value>", the value last because a name may hold ":";
// an empty value is a token without one.
func TokenCursor(sort string, desc bool, t Token) string {
	kind := tokenCursorKind(sort, desc)
	if kind == CursorTokens {
		return TimeCursor(kind, t.CreatedAt, t.ID)
	}
	var v string
	switch sort {
	case TokenSortName:
		v = t.Name
	case TokenSortCreated:
		v = strconv.FormatInt(t.CreatedAt.UnixMicro(), 10)
	case TokenSortExpires:
		if t.ExpiresAt != nil {
			v = strconv.FormatInt(t.ExpiresAt.UnixMicro(), 10)
		}
	case TokenSortLastUsed:
		if t.LastUsedAt != nil {
			v = strconv.FormatInt(t.LastUsedAt.UnixMicro(), 10)
		}
	}
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + t.ID + ":" + v))
}

// ParseTokenCursor decodes what TokenCursor wrote for this sort and order,
// strictly, as the other cursors.
func ParseTokenCursor(sort string, desc bool, s string) (TokenKey, error) {
	kind := tokenCursorKind(sort, desc)
	if kind == CursorTokens {
		at, id, err := ParseTimeCursor(kind, s)
		return TokenKey{Time: at, ID: id}, err
	}
	raw, ok := cursorBody(kind, s)
	if !ok {
		return TokenKey{}, ErrBadCursor()
	}
	id, v, ok := strings.Cut(raw, ":")
	if !ok || !ValidID(id) {
		return TokenKey{}, ErrBadCursor()
	}
	k := TokenKey{ID: id}
	switch sort {
	case TokenSortName:
		// Any stored name may end a page; only what no store can hold is
		// refused.
		if v == "" || !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
			return TokenKey{}, ErrBadCursor()
		}
		k.Name = v
		return k, nil
	case TokenSortCreated, TokenSortExpires, TokenSortLastUsed:
		if v == "" {
			if sort == TokenSortCreated {
				return TokenKey{}, ErrBadCursor()
			}
			k.Null = true
			return k, nil
		}
		us, err := strconv.ParseInt(v, 10, 64)
		if err != nil || us < minCursorTime || us > maxCursorTime || strconv.FormatInt(us, 10) != v {
			return TokenKey{}, ErrBadCursor()
		}
		k.Time = time.UnixMicro(us).UTC()
		return k, nil
	}
	return TokenKey{}, ErrBadCursor()
}
