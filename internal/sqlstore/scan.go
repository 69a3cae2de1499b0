package sqlstore

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/tokend/tokend"
)

// The scan destinations of a token row, made for the verification cache
// miss (TokenBySecretQuery): one allocation holds every destination of the
// row, the short labels of a token (type, access, status, policy) come
// back as the constants they are rather than as new strings, and JSON
// lists are decoded from the driver's bytes without a copy kept. Garbage
// collection is what sets the miss's tail latency on PostgreSQL (see
// docs/performance.md), and the miss allocated about 80 times a read.

// label is a scan destination for a short text column that holds one of a
// few known words: those are answered as the program's own strings,
// without an allocation; any other text is copied. NULL reads as "".
type label string

// knownLabel answers b as a known word, or "" when it is none of them.
// (The switch on string(b) converts nothing.)
func knownLabel(b []byte) string {
	switch string(b) {
	case string(tokend.TypeStandard):
		return string(tokend.TypeStandard)
	case string(tokend.TypePlugin):
		return string(tokend.TypePlugin)
	case string(tokend.AccessReadOnly):
		return string(tokend.AccessReadOnly)
	case string(tokend.AccessFull):
		return string(tokend.AccessFull)
	case string(tokend.AccessCustom):
		return string(tokend.AccessCustom)
	case string(tokend.StatusActive):
		return string(tokend.StatusActive)
	case string(tokend.StatusDisabled):
		return string(tokend.StatusDisabled)
	case string(tokend.StatusRevoked):
		return string(tokend.StatusRevoked)
	case string(tokend.RotatedNotify):
		return string(tokend.RotatedNotify)
	case string(tokend.RotatedDisable):
		return string(tokend.RotatedDisable)
	}
	return ""
}

// Scan implements sql.Scanner (SQLite hands over a string of its own).
func (l *label) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*l = ""
	case string:
		*l = label(v)
	case []byte:
		return l.ScanBytes(v)
	default:
		return fmt.Errorf("cannot read %T as text", src)
	}
	return nil
}

// ScanBytes lets pgx hand over the column's bytes, valid during the call.
func (l *label) ScanBytes(b []byte) error {
	if k := knownLabel(b); k != "" {
		*l = label(k)
	} else {
		*l = label(b)
	}
	return nil
}

// jsonList is a scan destination for a JSON list of strings (TEXT or jsonb;
// NULL and the literal null read as a nil list, [] as an empty one, as
// fromJSON answers). A decoding error is kept, not returned, so that the
// row is read and the error told as the token's (jsonCodec's first error).
type jsonList struct {
	v   []string
	err error
}

func (l *jsonList) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		l.v, l.err = nil, nil
	case string:
		l.v, l.err = decodeStrings(v)
	case []byte:
		return l.ScanBytes(v)
	default:
		return fmt.Errorf("cannot read %T as JSON", src)
	}
	return nil
}

func (l *jsonList) ScanBytes(b []byte) error {
	switch {
	case b == nil || string(b) == "null":
		l.v, l.err = nil, nil
	case string(b) == "[]":
		l.v, l.err = []string{}, nil
	default:
		l.v, l.err = decodeStrings(string(b)) // one copy, the elements share it
	}
	return nil
}

// decodeStrings decodes a JSON list of strings as json.Unmarshal does. The
// common form (strings without escapes, valid UTF-8) is read here, each
// element a substring of s, so a list costs two allocations (s and the
// slice) when s is a copy; anything else goes to json.Unmarshal. A fuzz
// test holds the two to the same answers.
func decodeStrings(s string) ([]string, error) {
	if v, ok := plainStrings(s); ok {
		return v, nil
	}
	var v []string
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("decode []string: %w", err)
	}
	return v, nil
}

// plainStrings reads s when it is `[` `"…"` (`,` `"…"`)* `]` with JSON
// white space around, strings without a backslash or a control character,
// and valid UTF-8; ok is false for anything else, which the caller hands
// to encoding/json.
func plainStrings(s string) (v []string, ok bool) {
	i := skipSpace(s, 0)
	if i == len(s) || s[i] != '[' {
		return nil, false
	}
	i = skipSpace(s, i+1)
	if i < len(s) && s[i] == ']' {
		return []string{}, skipSpace(s, i+1) == len(s)
	}
	// Two passes: the first checks the form and counts, so the slice is
	// made once at its length.
	n, end := 0, -1
	for j := i; ; {
		if j == len(s) || s[j] != '"' {
			return nil, false
		}
		k := j + 1
		for k < len(s) && s[k] != '"' {
			if s[k] == '\\' || s[k] < 0x20 {
				return nil, false
			}
			k++
		}
		if k == len(s) || !utf8.ValidString(s[j+1:k]) {
			return nil, false
		}
		n++
		j = skipSpace(s, k+1)
		if j == len(s) {
			return nil, false
		}
		if s[j] == ']' {
			end = j
			break
		}
		if s[j] != ',' {
			return nil, false
		}
		j = skipSpace(s, j+1)
	}
	if skipSpace(s, end+1) != len(s) {
		return nil, false
	}
	v = make([]string, 0, n)
	for j := i; j < end; {
		k := j + 1
		for s[k] != '"' {
			k++
		}
		v = append(v, s[j+1:k])
		j = skipSpace(s, k+1)
		if s[j] == ',' {
			j = skipSpace(s, j+1)
		}
	}
	return v, true
}

// skipSpace answers the index of the first byte at or after i that is not
// JSON white space.
func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// tokenScan is one row's destinations for scanColumns, with room for the
// extra columns of the widest read (four, CredentialBySecret's).
type tokenScan struct {
	t                                  tokend.Token
	typ, access, status                label
	perms, ips, origins                jsonList
	meta, scope                        JSON
	expires, lastUsed, revoked, prevEx NullTime
	limit, window, maxUses             NullInt64
	created, updated                   Time
	dest                               [len(tokenCols) + 4]any
}

// credentialScan adds CredentialBySecret's four extra columns.
type credentialScan struct {
	tokenScan
	grace      NullTime
	policy     label
	catalog    jsonList
	ownerLimit JSON
}

// decodeObject decodes a JSON object column as fromJSON does, without
// encoding/json for the two values most tokens hold: null and {}.
func decodeObject(j *jsonCodec, b JSON) map[string]any {
	switch {
	case j.err != nil:
		return nil
	case b == nil || string(b) == "null":
		return nil
	case string(b) == "{}":
		return map[string]any{}
	}
	return decode[map[string]any](j, b)
}
