// Package auditchain makes the audit log tamper-evident: every row carries
// the SHA-256 of the previous row's hash and its own canonical content (a
// hash chain), and a retention cut leaves a checkpoint signed with a key
// derived from the pepper. It computes hashes and signatures, and walks a
// chain to name the first row that was changed, deleted or inserted out of
// order. It never reads a database itself: package sqlstore hands it rows
// (Source).
//
// # Canonical content, version 1
//
// The content of a row is the ASCII bytes "tokend audit v1", followed by
// nine fields, each as a 4-byte big-endian length and then its UTF-8 bytes:
//
//  1. id: the row's id, in decimal
//  2. time: UTC, "2006-01-02T15:04:05.000000Z" (always six fractional digits)
//  3. actor
//  4. actor_name
//  5. ip
//  6. action
//  7. app_id
//  8. token_id
//  9. details: the JSON object with its keys sorted, no insignificant
//     space, numbers as written, and only ", \ and control characters
//     escaped (Go's encoding/json with HTML escaping off)
//
// and hash = SHA-256(prev_hash || content), where prev_hash is the hash of
// the row before it in the chain (32 zero bytes for the first row ever).
// `tokend audit export` prints each field exactly as hashed, so that an
// auditor can recompute the chain without tokend (docs/operations.md).
// A row's position in the chain is not hashed: the links say the order.
package auditchain

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Version prefixes the content of every row.
const Version = "tokend audit v1"

// TimeFormat is how a row's time is hashed and exported.
const TimeFormat = "2006-01-02T15:04:05.000000Z"

// Genesis is the prev_hash of the first row ever written.
var Genesis = make([]byte, sha256.Size)

// Row is one audit row with its place in the chain.
type Row struct {
	Pos       int64 // position in the chain, from 1; 0 when not chained yet
	ID        int64
	Time      time.Time
	Actor     string
	ActorName string
	IP        string
	Action    string
	AppID     string
	TokenID   string
	Details   []byte // canonical JSON (Canonical)
	PrevHash  []byte
	Hash      []byte
	// Gone: the chain has a place for the row ID at Pos, but the row
	// itself is not in the database (deleted behind tokend's back); only
	// Pos, ID and the hashes are set.
	Gone bool
}

// Canonical re-encodes a JSON document as the chain hashes it: object keys
// sorted, no insignificant space, numbers exactly as written. The same
// value gives the same bytes whichever database stored it.
func Canonical(doc []byte) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(doc))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("audit details: %w", err)
	}
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return nil, fmt.Errorf("audit details: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// Fields are the hashed fields of r, in order, as strings.
func (r Row) Fields() []string {
	return []string{
		strconv.FormatInt(r.ID, 10), r.Time.UTC().Format(TimeFormat), r.Actor, r.ActorName,
		r.IP, r.Action, r.AppID, r.TokenID, string(r.Details),
	}
}

// Content is r's canonical content, version 1.
func (r Row) Content() []byte {
	b := []byte(Version)
	for _, f := range r.Fields() {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}

// Sum is the hash of r following prev.
func Sum(prev []byte, r Row) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(r.Content())
	return h.Sum(nil)
}

// Name is how messages name r: its id, action and time.
func (r Row) Name() string {
	return fmt.Sprintf("row %d (%s, %s)", r.ID, r.Action, r.Time.UTC().Format(time.RFC3339))
}

// Checkpoint records a retention cut: the rows up to Pos were deleted, and
// the chain goes on from Hash, the hash of the last of them (written at
// Time). MAC signs it (Sign), so that someone with access to the database
// but not to the pepper cannot pass off a deletion as a cut.
type Checkpoint struct {
	Pos   int64
	Hash  []byte
	Time  time.Time // of the last row cut
	CutAt time.Time
	MAC   []byte
}

// Key derives the checkpoint signing key from the pepper, apart from every
// other use of it.
func Key(pepper []byte) []byte {
	m := hmac.New(sha256.New, pepper)
	m.Write([]byte("tokend audit checkpoint v1"))
	return m.Sum(nil)
}

// Sign answers c's MAC under key (from Key): HMAC-SHA256 over the label,
// the position, the hash and both times.
func (c Checkpoint) Sign(key []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("tokend audit checkpoint v1\n"))
	fmt.Fprintf(m, "%d\n%x\n%s\n%s", c.Pos, c.Hash, c.Time.UTC().Format(TimeFormat), c.CutAt.UTC().Format(TimeFormat))
	return m.Sum(nil)
}

// Signed reports whether c's MAC is right under key.
func (c Checkpoint) Signed(key []byte) bool { return hmac.Equal(c.MAC, c.Sign(key)) }

// Head is the chain's last position and hash, as the store keeps them
// beside the rows.
type Head struct {
	Pos  int64
	Hash []byte
}
