package httpapi_test

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

// TestListSortSearchAndStale: the list's sort, order, search by id or the
// secret's last 4, and unused_for, with every bad value a 422 on its field.
func TestListSortSearchAndStale(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			h := newHarness(t, st.opts)
			app := h.createApp(tokend.AppInput{Name: "shop"})
			names := []string{"delta", "alpha", "echo", "charlie", "bravo"}
			toks := map[string]tokend.Token{}
			secrets := map[string]string{}
			for _, n := range names {
				tok, sec := h.createToken(tokend.TokenInput{AppID: app.ID, Name: n})
				toks[n], secrets[n] = tok, sec
			}
			list := func(q string) []string {
				t.Helper()
				var got []string
				cursor := ""
				for range 20 {
					var page tokend.Page[tokend.Token]
					r := h.do("GET", "/v1/tokens?limit=2&app_id="+app.ID+"&"+q+"&cursor="+cursor, h.owner, nil)
					if r.status != 200 {
						t.Fatalf("list %s = %d %s", q, r.status, r.body)
					}
					r.json(t, &page)
					for _, tok := range page.Items {
						got = append(got, tok.Name)
					}
					if page.NextCursor == "" {
						return got
					}
					cursor = url.QueryEscape(page.NextCursor)
				}
				t.Fatal("pagination does not end")
				return nil
			}
			sorted := slices.Sorted(slices.Values(names))
			if got := list("sort=name"); !slices.Equal(got, sorted) {
				t.Errorf("sort=name: %v, want %v", got, sorted)
			}
			slices.Reverse(sorted)
			if got := list("sort=name&order=desc"); !slices.Equal(got, sorted) {
				t.Errorf("sort=name&order=desc: %v, want %v", got, sorted)
			}
			if got := list("sort=created_at&order=asc"); !slices.Equal(got, names) {
				t.Errorf("oldest first: %v, want %v", got, names)
			}

			// Used 40 days ago: stale for 30 days, not for 90.
			err := h.store.RecordUsage(t.Context(), tokend.UsageBatch{Last: []tokend.LastUse{{TokenID: toks["echo"].ID, At: time.Now().Add(-40 * 24 * time.Hour), IP: "192.0.2.1", Uses: 1}}})
			if err != nil {
				t.Fatal(err)
			}
			if got := list("unused_for=30d"); !slices.Equal(got, []string{"echo"}) {
				t.Errorf("unused_for=30d: %v", got)
			}
			if got := list("unused_for=90d"); len(got) != 0 {
				t.Errorf("unused_for=90d: %v", got)
			}
			if got := list("q=" + toks["charlie"].ID); !slices.Equal(got, []string{"charlie"}) {
				t.Errorf("q=<id of charlie>: %v", got)
			}
			last4 := secrets["bravo"][len(secrets["bravo"])-4:]
			if got := list("q=" + last4); !slices.Contains(got, "bravo") {
				t.Errorf("q=%s (last 4 of bravo's secret): %v", last4, got)
			}
			if !strings.HasSuffix(toks["bravo"].Masked, last4) {
				t.Errorf("masked %q does not end with %q", toks["bravo"].Masked, last4)
			}

			var first tokend.Page[tokend.Token]
			h.do("GET", "/v1/tokens?limit=1&sort=name", h.owner, nil).json(t, &first)
			for _, c := range []struct{ q, field string }{
				{"sort=secret_hash", ""}, {"order=up", ""}, {"sort=NAME", ""},
				{"unused_for=30", "unused_for"}, {"unused_for=12h", "unused_for"}, {"unused_for=0d", "unused_for"},
				{"unused_for=36501d", "unused_for"}, {"unused_for=-1d", "unused_for"},
				{"sort=expires_at&cursor=" + url.QueryEscape(first.NextCursor), "cursor"},
				{"sort=name&order=desc&cursor=" + url.QueryEscape(first.NextCursor), "cursor"},
			} {
				r := h.do("GET", "/v1/tokens?"+c.q, h.owner, nil)
				if r.status != 422 {
					t.Errorf("%s = %d %s, want 422", c.q, r.status, r.body)
					continue
				}
				if p := r.problem(t); c.field != "" && !slices.Contains(fields(p), c.field) {
					t.Errorf("%s: no error on %q: %s", c.q, c.field, r.body)
				}
			}
		})
	}
}

// TestAppStalePolicy: disable_unused_after is set on create, changed and
// removed by PATCH, and refused out of 1d to 36500d.
func TestAppStalePolicy(t *testing.T) {
	h := newHarness(t)
	r := h.do("POST", "/v1/apps", h.owner, map[string]any{"name": "shop", "disable_unused_after": "90d"})
	if r.status != 201 {
		t.Fatalf("create = %d %s", r.status, r.body)
	}
	var app tokend.App
	r.json(t, &app)
	if app.DisableUnusedAfter == nil || app.DisableUnusedAfter.String() != "90d" {
		t.Fatalf("disable_unused_after = %v, want 90d", app.DisableUnusedAfter)
	}
	for _, bad := range []string{"12h", "0d", "36501d", "soon"} {
		for _, req := range []struct{ method, path string }{{"POST", "/v1/apps"}, {"PATCH", "/v1/apps/" + app.ID}} {
			r := h.do(req.method, req.path, h.owner, map[string]any{"name": "x" + strings.ReplaceAll(bad, "0", "o"), "disable_unused_after": bad})
			if r.status != 422 {
				t.Errorf("%s disable_unused_after=%s = %d %s", req.method, bad, r.status, r.body)
				continue
			}
			if p := r.problem(t); bad != "soon" && !slices.Contains(fields(p), "disable_unused_after") {
				t.Errorf("%s %s: no error on disable_unused_after: %s", req.method, bad, r.body)
			}
		}
	}
	r = h.do("PATCH", "/v1/apps/"+app.ID, h.owner, map[string]any{"disable_unused_after": "30d"})
	r.json(t, &app)
	if r.status != 200 || app.DisableUnusedAfter == nil || app.DisableUnusedAfter.String() != "30d" {
		t.Fatalf("PATCH 30d = %d %s", r.status, r.body)
	}
	r = h.do("PATCH", "/v1/apps/"+app.ID, h.owner, `{"disable_unused_after":null}`)
	app = tokend.App{}
	r.json(t, &app)
	if r.status != 200 || app.DisableUnusedAfter != nil {
		t.Fatalf("PATCH null = %d %s", r.status, r.body)
	}
	var events tokend.Page[tokend.Event]
	h.do("GET", "/v1/audit?action=app.update&app_id="+app.ID, h.owner, nil).json(t, &events)
	if len(events.Items) != 2 || fmt.Sprint(events.Items[0].Details["disable_unused_after"]) != "map[from:30d to:<nil>]" {
		t.Errorf("audit of the policy's changes: %+v", events.Items)
	}
}
