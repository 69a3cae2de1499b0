package storetest

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

var listTests = []test{
	{name: "filters", run: testListFilters},
	{name: "pages through every token without duplicates or gaps", runEach: testListPages},
	{name: "default and maximum page size", run: testListPageSize},
	{name: "malformed cursor is invalid", run: testListBadCursor},
	{name: "unknown status is invalid", run: testListBadStatus},
	{name: "product only leaves out admin tokens", run: testListProductOnly},
	{name: "decoys are listed apart", run: testListDecoys},
}

func testListFilters(t *testing.T, s tokend.Store) {
	now := at(10 * 24 * time.Hour)
	mustCreateApp(t, s, newApp("app_a"))
	mustCreateApp(t, s, newApp("app_b"))

	// Created a minute apart in this order, so newest first is the reverse.
	type spec struct {
		id, app, name string
		status        tokend.Status
		typ           tokend.TokenType
		expires       *time.Time
	}
	specs := []spec{
		{"tok_a_active", "app_a", "Deploy bot", tokend.StatusActive, tokend.TypeStandard, nil},
		{"tok_a_future", "app_a", "Browser 50% off", tokend.StatusActive, tokend.TypePlugin, ptr(now.Add(time.Hour))},
		{"tok_a_expired", "app_a", "CI_runner", tokend.StatusActive, tokend.TypeStandard, ptr(now.Add(-time.Hour))},
		{"tok_a_edge", "app_a", "expires right now", tokend.StatusActive, tokend.TypeStandard, ptr(now)},
		{"tok_a_disabled", "app_a", "Paused", tokend.StatusDisabled, tokend.TypeStandard, ptr(now.Add(time.Hour))},
		{"tok_a_dis_exp", "app_a", "Paused old", tokend.StatusDisabled, tokend.TypeStandard, ptr(now.Add(-24 * time.Hour))},
		{"tok_a_revoked", "app_a", "deploy BOT", tokend.StatusRevoked, tokend.TypeStandard, ptr(now.Add(-time.Hour))},
		{"tok_b_deploy", "app_b", "deploy", tokend.StatusActive, tokend.TypeStandard, nil},
		{"tok_b_cix", "app_b", "CIXrunner", tokend.StatusActive, tokend.TypeStandard, nil},
		{"tok_b_50", "app_b", "50 items", tokend.StatusActive, tokend.TypeStandard, nil},
	}
	for i, sp := range specs {
		tok := newToken(sp.id, sp.app, sp.name)
		tok.Status, tok.Type, tok.ExpiresAt = sp.status, sp.typ, sp.expires
		if sp.status == tokend.StatusRevoked {
			tok.RevokedAt = ptr(t0)
		}
		tok.CreatedAt = at(time.Duration(i) * time.Minute)
		mustCreateToken(t, s, tok)
	}

	cases := []struct {
		name string
		f    tokend.TokenFilter
		want []string
	}{
		{"no filter lists all, newest first", tokend.TokenFilter{}, []string{
			"tok_b_50", "tok_b_cix", "tok_b_deploy", "tok_a_revoked", "tok_a_dis_exp",
			"tok_a_disabled", "tok_a_edge", "tok_a_expired", "tok_a_future", "tok_a_active"}},
		{"one app", tokend.TokenFilter{AppID: "app_b"}, []string{"tok_b_50", "tok_b_cix", "tok_b_deploy"}},
		{"active leaves out expired, disabled and revoked", tokend.TokenFilter{Status: tokend.StatusActive},
			[]string{"tok_b_50", "tok_b_cix", "tok_b_deploy", "tok_a_future", "tok_a_active"}},
		{"disabled leaves out expired", tokend.TokenFilter{Status: tokend.StatusDisabled}, []string{"tok_a_disabled"}},
		{"expired takes active and disabled past expiry, at Now included", tokend.TokenFilter{Status: tokend.StatusExpired},
			[]string{"tok_a_dis_exp", "tok_a_edge", "tok_a_expired"}},
		{"revoked stays revoked past its expiry", tokend.TokenFilter{Status: tokend.StatusRevoked}, []string{"tok_a_revoked"}},
		{"type", tokend.TokenFilter{Type: tokend.TypePlugin}, []string{"tok_a_future"}},
		{"query ignores case", tokend.TokenFilter{Query: "DEPLOY"}, []string{"tok_b_deploy", "tok_a_revoked", "tok_a_active"}},
		{"query percent is literal", tokend.TokenFilter{Query: "50%"}, []string{"tok_a_future"}},
		{"query underscore is literal", tokend.TokenFilter{Query: "i_R"}, []string{"tok_a_expired"}},
		{"query backslash is literal", tokend.TokenFilter{Query: `\`}, []string{}},
		{"filters combine", tokend.TokenFilter{AppID: "app_a", Status: tokend.StatusActive, Type: tokend.TypeStandard, Query: "bot"},
			[]string{"tok_a_active"}},
		{"nothing matches", tokend.TokenFilter{AppID: "app_b", Query: "bot"}, []string{}},
		{"expires before leaves out tokens that never expire", tokend.TokenFilter{ExpiresBefore: now.Add(2 * time.Hour)},
			[]string{"tok_a_revoked", "tok_a_dis_exp", "tok_a_disabled", "tok_a_edge", "tok_a_expired", "tok_a_future"}},
		{"expires before is exclusive", tokend.TokenFilter{ExpiresBefore: now},
			[]string{"tok_a_revoked", "tok_a_dis_exp", "tok_a_expired"}},
		{"active and expiring soon", tokend.TokenFilter{Status: tokend.StatusActive, ExpiresBefore: now.Add(2 * time.Hour)},
			[]string{"tok_a_future"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.f.Now = now
			page, err := s.Tokens(t.Context(), c.f)
			if err != nil {
				t.Fatalf("Tokens: %v", err)
			}
			if d := diff(c.want, tokenIDs(page.Items)); d != "" {
				t.Errorf("ids (-want +got):\n%s", d)
			}
			if page.NextCursor != "" {
				t.Errorf("NextCursor = %q on the only page", page.NextCursor)
			}
			n, err := s.CountTokens(t.Context(), c.f)
			if err != nil || n != len(c.want) {
				t.Errorf("CountTokens = %d, %v; want %d", n, err, len(c.want))
			}
		})
	}
	t.Run("a count is of every page, whatever the limit and cursor", func(t *testing.T) {
		first, err := s.Tokens(t.Context(), tokend.TokenFilter{Now: now, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		n, err := s.CountTokens(t.Context(), tokend.TokenFilter{Now: now, Limit: 2, Cursor: first.NextCursor})
		if err != nil || n != len(specs) {
			t.Errorf("CountTokens = %d, %v; want %d", n, err, len(specs))
		}
	})
}

func testListPages(t *testing.T, newStore func(t *testing.T) tokend.Store) {
	s := newStore(t)
	mustCreateApp(t, s, newApp("app_a"))
	mustCreateApp(t, s, newApp("app_b"))
	// 25 tokens in two apps. Creation times come in threes, and ids are
	// shuffled against creation order, so that the id alone breaks ties.
	var all []tokend.Token
	for i := range 25 {
		tok := newToken(fmt.Sprintf("tok_%02d", (i*7)%25), []string{"app_a", "app_b"}[i%2], fmt.Sprintf("token %d", i))
		tok.CreatedAt = at(time.Duration(i/3) * time.Second)
		mustCreateToken(t, s, tok)
		all = append(all, tok)
	}
	newestFirst := func(ts []tokend.Token) []string {
		ts = slices.Clone(ts)
		slices.SortFunc(ts, func(a, b tokend.Token) int {
			return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(b.ID, a.ID))
		})
		return tokenIDs(ts)
	}
	want := newestFirst(all)
	wantA := newestFirst(slices.DeleteFunc(slices.Clone(all), func(tok tokend.Token) bool { return tok.AppID != "app_a" }))

	for _, limit := range []int{1, 4, 5, 7, 24, 25, 26} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			got := allPages(t, limit, func(cursor string) (tokend.Page[tokend.Token], error) {
				return s.Tokens(t.Context(), tokend.TokenFilter{Now: t0, Limit: limit, Cursor: cursor})
			})
			if d := diff(want, tokenIDs(got)); d != "" {
				t.Errorf("ids over all pages (-want +got):\n%s", d)
			}
		})
		t.Run(fmt.Sprintf("one app, limit %d", limit), func(t *testing.T) {
			got := allPages(t, limit, func(cursor string) (tokend.Page[tokend.Token], error) {
				return s.Tokens(t.Context(), tokend.TokenFilter{AppID: "app_a", Now: t0, Limit: limit, Cursor: cursor})
			})
			if d := diff(wantA, tokenIDs(got)); d != "" {
				t.Errorf("ids over all pages (-want +got):\n%s", d)
			}
		})
	}

	t.Run("a token created meanwhile does not shift later pages", func(t *testing.T) {
		first, err := s.Tokens(t.Context(), tokend.TokenFilter{Now: t0, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		newer := newToken("tok_zz", "app_a", "newest")
		newer.CreatedAt = at(time.Hour)
		mustCreateToken(t, s, newer)
		rest := allPages(t, 10, func(cursor string) (tokend.Page[tokend.Token], error) {
			if cursor == "" {
				cursor = first.NextCursor
			}
			return s.Tokens(t.Context(), tokend.TokenFilter{Now: t0, Limit: 10, Cursor: cursor})
		})
		if d := diff(want, tokenIDs(append(first.Items, rest...))); d != "" {
			t.Errorf("ids over all pages (-want +got):\n%s", d)
		}
	})
}

func testListPageSize(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	mustCreateApp(t, s, newApp("app_a"))
	n := tokend.MaxPageSize + 1
	for i := range n {
		tok := newToken(fmt.Sprintf("tok_%04d", i), "app_a", fmt.Sprintf("token %d", i))
		tok.CreatedAt = at(time.Duration(i) * time.Millisecond)
		mustCreateToken(t, s, tok)
	}
	for _, c := range []struct {
		name  string
		limit int
		want  int
	}{
		{"zero limit is the default", 0, tokend.DefaultPageSize},
		{"negative limit is the default", -1, tokend.DefaultPageSize},
		{"limit above the maximum is the maximum", tokend.MaxPageSize * 10, tokend.MaxPageSize},
	} {
		t.Run(c.name, func(t *testing.T) {
			page, err := s.Tokens(ctx, tokend.TokenFilter{Now: t0, Limit: c.limit})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Items) != c.want || page.NextCursor == "" {
				t.Errorf("first page has %d items, cursor %q; want %d and a cursor", len(page.Items), page.NextCursor, c.want)
			}
		})
	}
	// The events of all those creates page the same way.
	page, err := s.Events(ctx, tokend.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != tokend.DefaultPageSize || page.NextCursor == "" {
		t.Errorf("first page of events has %d items, cursor %q; want %d and a cursor", len(page.Items), page.NextCursor, tokend.DefaultPageSize)
	}
	page, err = s.Events(ctx, tokend.EventFilter{Limit: tokend.MaxPageSize + 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != tokend.MaxPageSize || page.NextCursor == "" {
		t.Errorf("events with limit above the maximum: %d items, cursor %q; want %d and a cursor", len(page.Items), page.NextCursor, tokend.MaxPageSize)
	}
}

func testListBadCursor(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	// Two of each, so that a page of one has a real cursor to misuse.
	mustCreateApp(t, s, newApp("app_a"))
	mustCreateApp(t, s, newApp("app_b"))
	mustCreateToken(t, s, newToken("tok_0001", "app_a", "one"))
	mustCreateToken(t, s, newToken("tok_0002", "app_a", "two"))
	tp, err := s.Tokens(ctx, tokend.TokenFilter{Now: t0, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	ap, err := s.Apps(ctx, tokend.AppFilter{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	ep, err := s.Events(ctx, tokend.EventFilter{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if tp.NextCursor == "" || ap.NextCursor == "" || ep.NextCursor == "" {
		t.Fatalf("want cursors from pages of one, got %q %q %q", tp.NextCursor, ap.NextCursor, ep.NextCursor)
	}

	lists := []struct {
		name   string
		kind   string
		list   func(cursor string) error
		others []string // real cursors of the other lists
	}{
		{"tokens", tokend.CursorTokens, func(c string) error {
			_, err := s.Tokens(ctx, tokend.TokenFilter{Now: t0, Cursor: c})
			return err
		}, []string{ap.NextCursor, ep.NextCursor}},
		{"apps", tokend.CursorApps, func(c string) error {
			_, err := s.Apps(ctx, tokend.AppFilter{Cursor: c})
			return err
		}, []string{tp.NextCursor, ep.NextCursor}},
		{"events", tokend.CursorEvents, func(c string) error {
			_, err := s.Events(ctx, tokend.EventFilter{Cursor: c})
			return err
		}, []string{tp.NextCursor, ap.NextCursor}},
	}
	for _, l := range lists {
		cursors := map[string]string{
			"not base64":            "!!not a cursor!!",
			"base64 of nonsense":    "bm9uc2Vuc2U",
			"padded base64":         "bm9uc2Vuc2U=",
			"SQL in a cursor":       "' OR 1=1 --",
			"another list's cursor": l.others[0],
			"a third list's cursor": l.others[1],
		}
		// Crafted cursors of the right kind: only what a store could have
		// given out passes, so no out-of-range time or odd byte reaches a
		// query (PostgreSQL answered 500 for the first).
		crafted := func(body string) string { return base64.RawURLEncoding.EncodeToString([]byte(l.kind + ":" + body)) }
		for what, body := range map[string]string{
			"the minimum int64":       "-9223372036854775808:tok_a",
			"the maximum int64":       "9223372036854775807:tok_a",
			"a time before year 1":    "-62135596800000001:tok_a",
			"a time after year 9999":  "253402300800000000:tok_a",
			"a leading zero":          "01:tok_a",
			"a plus sign":             "+1:tok_a",
			"NUL in the id":           "1:tok_\x00",
			"invalid UTF-8 in the id": "1:tok_\xff",
			"an id of another shape":  "1:' OR 1=1 --",
			"no id":                   "1:",
			"an event id of zero":     "0",
			"a negative event id":     "-1",
			"an event id past int64":  "9223372036854775808",
			"an event id with a zero": "01",
			"an event id with NUL":    "1\x00",
		} {
			cursors["crafted, "+what] = crafted(body)
		}
		for what, c := range cursors {
			t.Run(l.name+", "+what, func(t *testing.T) {
				wantInvalidField(t, fmt.Sprintf("%s with cursor %q", l.name, c), l.list(c), "cursor")
			})
		}
	}
}

func testListBadStatus(t *testing.T, s tokend.Store) {
	_, err := s.Tokens(t.Context(), tokend.TokenFilter{Now: t0, Status: "sleeping"})
	wantInvalidField(t, "Tokens with an unknown status", err, "status")
	_, err = s.CountTokens(t.Context(), tokend.TokenFilter{Now: t0, Status: "sleeping"})
	wantInvalidField(t, "CountTokens with an unknown status", err, "status")
}

func testListProductOnly(t *testing.T, s tokend.Store) {
	sys := newApp(tokend.SystemAppID)
	sys.System = true
	mustCreateApp(t, s, sys)
	mustCreateApp(t, s, newApp("app_a"))
	for i, tok := range []tokend.Token{
		newToken("tok_admin", tokend.SystemAppID, "owner"),
		newToken("tok_a_one", "app_a", "one"),
		newToken("tok_admin_off", tokend.SystemAppID, "paused admin"),
		newToken("tok_a_two", "app_a", "two"),
	} {
		if tok.ID == "tok_admin_off" {
			tok.Status = tokend.StatusDisabled
		}
		tok.CreatedAt = at(time.Duration(i) * time.Minute)
		mustCreateToken(t, s, tok)
	}
	cases := []listCase{
		{"every app's tokens without it", tokend.TokenFilter{}, []string{"tok_a_two", "tok_admin_off", "tok_a_one", "tok_admin"}},
		{"product tokens only", tokend.TokenFilter{ProductOnly: true}, []string{"tok_a_two", "tok_a_one"}},
		{"combines with status", tokend.TokenFilter{ProductOnly: true, Status: tokend.StatusDisabled}, []string{}},
		{"combines with the system app: nothing", tokend.TokenFilter{ProductOnly: true, AppID: tokend.SystemAppID}, []string{}},
		{"combines with a product app", tokend.TokenFilter{ProductOnly: true, AppID: "app_a", Query: "two"}, []string{"tok_a_two"}},
	}
	checkLists(t, s, t0, cases)
}

// checkLists runs each case's filter at now (unless it names its own Now)
// through Tokens and CountTokens, wanting its ids in order.
func checkLists(t *testing.T, s tokend.Store, now time.Time, cases []listCase) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.f.Now.IsZero() {
				c.f.Now = now
			}
			page, err := s.Tokens(t.Context(), c.f)
			if err != nil {
				t.Fatalf("Tokens: %v", err)
			}
			if d := diff(c.want, tokenIDs(page.Items)); d != "" {
				t.Errorf("ids (-want +got):\n%s", d)
			}
			n, err := s.CountTokens(t.Context(), c.f)
			if err != nil || n != len(c.want) {
				t.Errorf("CountTokens = %d, %v; want %d", n, err, len(c.want))
			}
		})
	}
}

type listCase struct {
	name string
	f    tokend.TokenFilter
	want []string
}

// Decoys are listed apart: a filter without Decoy leaves them out, so that
// the scheduler's notices and stale-token policy (which list tokens) never
// see them; Decoy lists only them.
func testListDecoys(t *testing.T, s tokend.Store) {
	sys := newApp(tokend.SystemAppID)
	sys.System = true
	mustCreateApp(t, s, sys)
	mustCreateApp(t, s, newApp("app_a"))
	soon := ptr(t0.Add(time.Hour))
	for i, tok := range []tokend.Token{
		newToken("tok_real", "app_a", "deploy"),
		newToken("tok_decoy", "app_a", "deploy key"),
		newToken("tok_decoy_old", "app_a", "deploy key old"),
		newToken("tok_admin_decoy", tokend.SystemAppID, "root"),
		newToken("tok_admin", tokend.SystemAppID, "owner"),
	} {
		tok.Decoy = strings.Contains(tok.ID, "decoy")
		tok.ExpiresAt = soon
		if tok.ID == "tok_decoy_old" {
			tok.Status = tokend.StatusDisabled
		}
		tok.CreatedAt = at(time.Duration(i) * time.Minute)
		mustCreateToken(t, s, tok)
	}
	cases := []listCase{
		{"no filter leaves decoys out", tokend.TokenFilter{}, []string{"tok_admin", "tok_real"}},
		{"decoys only", tokend.TokenFilter{Decoy: true}, []string{"tok_admin_decoy", "tok_decoy_old", "tok_decoy"}},
		{"decoys of one app", tokend.TokenFilter{Decoy: true, AppID: "app_a"}, []string{"tok_decoy_old", "tok_decoy"}},
		{"decoys by status", tokend.TokenFilter{Decoy: true, Status: tokend.StatusActive}, []string{"tok_admin_decoy", "tok_decoy"}},
		{"decoys by name", tokend.TokenFilter{Decoy: true, Query: "deploy"}, []string{"tok_decoy_old", "tok_decoy"}},
		{"decoys are product tokens or not", tokend.TokenFilter{Decoy: true, ProductOnly: true}, []string{"tok_decoy_old", "tok_decoy"}},
		{"a name search leaves decoys out", tokend.TokenFilter{Query: "deploy"}, []string{"tok_real"}},
		{"an id search leaves decoys out", tokend.TokenFilter{Query: "tok_decoy"}, []string{}},
		{"expiring soon (the notices) leaves decoys out", tokend.TokenFilter{Status: tokend.StatusActive, ExpiresBefore: t0.Add(2 * time.Hour)},
			[]string{"tok_admin", "tok_real"}},
		{"unused (the stale-token policy) leaves decoys out", tokend.TokenFilter{Status: tokend.StatusActive, UnusedFor: tokend.Duration(time.Minute)},
			[]string{"tok_admin", "tok_real"}},
	}
	checkLists(t, s, t0.Add(time.Hour-time.Second), cases)
}
