// Package storetest is the conformance suite of tokend.Store: the behaviour
// every storage backend (SQLite, PostgreSQL, an in-memory fake) must show,
// written once against the interface. A backend that passes Run is done; a
// bug found in one backend becomes a case here.
//
// It must not import a backend or look past the interface: a backend detail
// the suite needs is a gap in the contract, to be fixed in the domain. Its
// times are fixed and whole microseconds, the precision every backend keeps,
// and it never sleeps.
package storetest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tokend/tokend"
)

// Run runs the suite. newStore must answer an empty, ready store for each
// call; the suite calls it once per subtest and closes nothing itself, so
// newStore should register its own cleanup.
func Run(t *testing.T, newStore func(t *testing.T) tokend.Store) {
	groups := []struct {
		name  string
		tests []test
	}{
		{"Ping", []test{{name: "answers", run: testPing}}},
		{"Apps", appTests},
		{"Tokens", tokenTests},
		{"TokenList", listTests},
		{"TokenSort", sortTests},
		{"Revoke", revokeTests},
		{"Owners", ownerTests},
		{"Decoys", decoyTests},
		{"Secrets", secretTests},
		{"Delete", deleteTests},
		{"Events", eventTests},
		{"Notifications", notificationTests},
		{"Usage", usageTests},
		{"Activity", activityTests},
		{"Networks", networkTests},
		{"Users", userTests},
		{"Settings", settingTests},
		{"Scope", scopeTests},
		{"Portal", portalTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tt := range g.tests {
				t.Run(tt.name, func(t *testing.T) {
					if tt.runEach != nil {
						tt.runEach(t, newStore)
						return
					}
					tt.run(t, newStore(t))
				})
			}
		})
	}
}

// test is one behaviour. Most need one empty store (run); table-driven ones
// whose cases each need their own get the constructor (runEach).
type test struct {
	name    string
	run     func(t *testing.T, s tokend.Store)
	runEach func(t *testing.T, newStore func(t *testing.T) tokend.Store)
}

func testPing(t *testing.T, s tokend.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

// t0 is the suite's "now". It has microseconds but no nanoseconds, so that a
// backend with microsecond precision can give it back exactly.
var t0 = time.Date(2026, time.March, 14, 9, 26, 53, 589793000, time.UTC)

// at is t0 moved by d.
func at(d time.Duration) time.Time { return t0.Add(d) }

func ptr[T any](v T) *T { return &v }

// hashOf stands in for HMAC(pepper, secret): the store only sees 32 opaque
// bytes.
func hashOf(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

var errBoom = errors.New("boom: the updater refused")

func newApp(id string) tokend.App {
	return tokend.App{
		ID:          id,
		Name:        "App " + id,
		TokenPrefix: "tkd",
		Permissions: []string{"orders:read", "orders:write"},
		LeakPolicy:  tokend.LeakRevoke,
		CreatedAt:   t0,
		// The stores answer the default policy for an app made without one.
		RotatedSecretPolicy: tokend.RotatedNotify,
		UpdatedAt:           t0,
		Version:             1,
	}
}

func newToken(id, appID, name string) tokend.Token {
	return tokend.Token{
		ID:         id,
		AppID:      appID,
		Name:       name,
		Type:       tokend.TypeStandard,
		Access:     tokend.AccessFull,
		Status:     tokend.StatusActive,
		Masked:     "tkd_…" + id[len(id)-4:],
		CreatedAt:  t0,
		CreatedBy:  "user:u_ada",
		UpdatedAt:  t0,
		Version:    1,
		SecretHash: hashOf("secret of " + id),
	}
}

func newEvent(action, appID, tokenID string) tokend.Event {
	return tokend.Event{
		Time:      t0,
		Actor:     "user:u_ada",
		ActorName: "Ada",
		IP:        "192.0.2.10",
		Action:    action,
		AppID:     appID,
		TokenID:   tokenID,
	}
}

func mustCreateApp(t *testing.T, s tokend.Store, a tokend.App) {
	t.Helper()
	if err := s.CreateApp(t.Context(), a, newEvent(tokend.ActionAppCreate, a.ID, "")); err != nil {
		t.Fatalf("CreateApp(%s): %v", a.ID, err)
	}
}

func mustCreateToken(t *testing.T, s tokend.Store, tok tokend.Token) {
	t.Helper()
	if err := s.CreateToken(t.Context(), tok, newEvent(tokend.ActionTokenCreate, tok.AppID, tok.ID)); err != nil {
		t.Fatalf("CreateToken(%s): %v", tok.ID, err)
	}
}

func mustToken(t *testing.T, s tokend.Store, id string) tokend.Token {
	t.Helper()
	tok, err := s.Token(t.Context(), id)
	if err != nil {
		t.Fatalf("Token(%s): %v", id, err)
	}
	return tok
}

// rotate replaces a token's secret the way the service does.
func rotate(t *testing.T, s tokend.Store, id, newSecret string, when time.Time, grace *time.Time) tokend.Token {
	t.Helper()
	tok, err := s.UpdateToken(t.Context(), id, func(tok *tokend.Token) (tokend.Event, error) {
		tok.SecretHash = hashOf(newSecret)
		tok.PreviousSecretExpiresAt = grace
		tok.UpdatedAt = when
		return newEvent(tokend.ActionTokenRotate, tok.AppID, tok.ID), nil
	})
	if err != nil {
		t.Fatalf("rotate %s: %v", id, err)
	}
	return tok
}

func wantErrIs(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v, want %v", what, err, target)
	}
}

// wantInvalidField checks for a VALIDATION_FAILED error naming field: the
// caller's mistake, never a server error.
func wantInvalidField(t *testing.T, what string, err error, field string) {
	t.Helper()
	var e *tokend.Error
	if !errors.As(err, &e) || e.Code != tokend.ECodeInvalid {
		t.Errorf("%s: got error %v, want %s", what, err, tokend.ECodeInvalid)
		return
	}
	for _, f := range e.Fields {
		if f.Field == field {
			return
		}
	}
	t.Errorf("%s: error %v does not name field %q (fields %v)", what, err, field, e.Fields)
}

// ignoreEventID compares events without the id the store assigned.
var ignoreEventID = cmpopts.IgnoreFields(tokend.Event{}, "ID")

// allPages follows NextCursor from the first page to the last, checking
// that every page but the last is full and that the last says so.
func allPages[T any](t *testing.T, limit int, list func(cursor string) (tokend.Page[T], error)) []T {
	t.Helper()
	var (
		all    []T
		cursor string
	)
	for range 1000 {
		p, err := list(cursor)
		if err != nil {
			t.Fatalf("list with cursor %q: %v", cursor, err)
		}
		all = append(all, p.Items...)
		if p.NextCursor == "" {
			return all
		}
		if len(p.Items) != limit {
			t.Fatalf("a page with a next cursor has %d items, want %d", len(p.Items), limit)
		}
		cursor = p.NextCursor
	}
	t.Fatalf("more than 1000 pages: the cursor does not advance")
	return nil
}

func tokenIDs(ts []tokend.Token) []string {
	ids := []string{}
	for _, tok := range ts {
		ids = append(ids, tok.ID)
	}
	return ids
}

func eventsOf(t *testing.T, s tokend.Store, f tokend.EventFilter) []tokend.Event {
	t.Helper()
	f.Limit = tokend.MaxPageSize
	return allPages(t, f.Limit, func(cursor string) (tokend.Page[tokend.Event], error) {
		f.Cursor = cursor
		return s.Events(t.Context(), f)
	})
}

func countEvents(t *testing.T, s tokend.Store) int {
	t.Helper()
	return len(eventsOf(t, s, tokend.EventFilter{}))
}

// diff is cmp.Diff with the options the whole suite uses.
func diff(want, got any, opts ...cmp.Option) string {
	return cmp.Diff(want, got, opts...)
}

func name(format string, args ...any) string { return fmt.Sprintf(format, args...) }
