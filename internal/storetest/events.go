package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

var eventTests = []test{
	{name: "round trip keeps every field", run: testEventRoundTrip},
	{name: "filters", run: testEventFilters},
	{name: "pages through every event newest first", run: testEventPages},
}

func testEventRoundTrip(t *testing.T, s tokend.Store) {
	full := newEvent(tokend.ActionTokenUpdate, "app_a", "tok_1")
	full.Details = map[string]any{
		"name":        map[string]any{"from": "old", "to": "new"},
		"permissions": map[string]any{"from": []any{"a:read"}, "to": []any{"a:read", "a:write"}},
		"count":       float64(2),
	}
	noDetails := newEvent(tokend.ActionSystemBootstrap, "", "")
	noDetails.Actor, noDetails.ActorName, noDetails.IP = "system", "tokend", ""
	emptyDetails := newEvent(tokend.ActionAppCreate, "app_a", "")
	emptyDetails.Details = map[string]any{}
	emptyDetails.Time = at(time.Microsecond)

	in := []tokend.Event{full, noDetails, emptyDetails}
	for _, ev := range in {
		if err := s.AppendEvent(t.Context(), ev); err != nil {
			t.Fatalf("AppendEvent: %v", err)
		}
	}
	got := eventsOf(t, s, tokend.EventFilter{})
	want := slices.Clone(in)
	slices.Reverse(want)
	if d := diff(want, got, ignoreEventID); d != "" {
		t.Errorf("events, newest first (-want +got):\n%s", d)
	}
	for i := 1; i < len(got); i++ {
		if got[i].ID >= got[i-1].ID {
			t.Errorf("event ids %d then %d: want them to grow in append order", got[i].ID, got[i-1].ID)
		}
	}
}

// auditTrail is a dozen events of two apps and three tokens, a minute
// apart except for two pairs that share a time.
func auditTrail() []tokend.Event {
	specs := []struct {
		action, app, token string
		min                int
	}{
		{tokend.ActionAppCreate, "app_a", "", 0},
		{tokend.ActionTokenCreate, "app_a", "tok_1", 1},
		{tokend.ActionTokenCreate, "app_a", "tok_2", 2},
		{tokend.ActionAppCreate, "app_b", "", 3},
		{tokend.ActionTokenCreate, "app_b", "tok_3", 3},
		{tokend.ActionTokenUpdate, "app_a", "tok_1", 4},
		{tokend.ActionTokenRotate, "app_a", "tok_1", 5},
		{tokend.ActionTokenUpdate, "app_b", "tok_3", 6},
		{tokend.ActionTokenRevoke, "app_a", "tok_2", 6},
		{tokend.ActionTokenDelete, "app_a", "tok_2", 7},
		{tokend.ActionAppUpdate, "app_b", "", 8},
		{tokend.ActionTokenOldSecret, "app_a", "tok_1", 9},
	}
	var evs []tokend.Event
	for _, sp := range specs {
		ev := newEvent(sp.action, sp.app, sp.token)
		ev.Time = at(time.Duration(sp.min) * time.Minute)
		evs = append(evs, ev)
	}
	return evs
}

func appendAll(t *testing.T, s tokend.Store, evs []tokend.Event) {
	t.Helper()
	for _, ev := range evs {
		if err := s.AppendEvent(t.Context(), ev); err != nil {
			t.Fatalf("AppendEvent: %v", err)
		}
	}
}

func testEventFilters(t *testing.T, s tokend.Store) {
	trail := auditTrail()
	appendAll(t, s, trail)

	cases := []struct {
		name string
		f    tokend.EventFilter
		keep func(ev tokend.Event) bool
	}{
		{"no filter", tokend.EventFilter{}, func(tokend.Event) bool { return true }},
		{"token", tokend.EventFilter{TokenID: "tok_1"}, func(ev tokend.Event) bool { return ev.TokenID == "tok_1" }},
		{"app", tokend.EventFilter{AppID: "app_b"}, func(ev tokend.Event) bool { return ev.AppID == "app_b" }},
		{"action", tokend.EventFilter{Action: tokend.ActionTokenCreate}, func(ev tokend.Event) bool { return ev.Action == tokend.ActionTokenCreate }},
		{"since is inclusive", tokend.EventFilter{Since: at(6 * time.Minute)}, func(ev tokend.Event) bool { return !ev.Time.Before(at(6 * time.Minute)) }},
		{"until is exclusive", tokend.EventFilter{Until: at(3 * time.Minute)}, func(ev tokend.Event) bool { return ev.Time.Before(at(3 * time.Minute)) }},
		{"since and until", tokend.EventFilter{Since: at(3 * time.Minute), Until: at(6 * time.Minute)}, func(ev tokend.Event) bool {
			return !ev.Time.Before(at(3*time.Minute)) && ev.Time.Before(at(6*time.Minute))
		}},
		{"filters combine", tokend.EventFilter{AppID: "app_a", Action: tokend.ActionTokenUpdate, Since: at(time.Minute)}, func(ev tokend.Event) bool {
			return ev.AppID == "app_a" && ev.Action == tokend.ActionTokenUpdate
		}},
		{"nothing matches", tokend.EventFilter{TokenID: "tok_3", Action: tokend.ActionTokenRotate}, func(tokend.Event) bool { return false }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := []tokend.Event{}
			for _, ev := range slices.Backward(trail) {
				if c.keep(ev) {
					want = append(want, ev)
				}
			}
			page, err := s.Events(t.Context(), c.f)
			if err != nil {
				t.Fatalf("Events: %v", err)
			}
			if d := diff(want, page.Items, ignoreEventID); d != "" {
				t.Errorf("events (-want +got):\n%s", d)
			}
			if page.NextCursor != "" {
				t.Errorf("NextCursor = %q on the only page", page.NextCursor)
			}
		})
	}
}

func testEventPages(t *testing.T, s tokend.Store) {
	trail := auditTrail()
	appendAll(t, s, trail)
	want := slices.Clone(trail)
	slices.Reverse(want)
	for _, limit := range []int{1, 4, 5, 12, 13} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			got := allPages(t, limit, func(cursor string) (tokend.Page[tokend.Event], error) {
				return s.Events(t.Context(), tokend.EventFilter{Limit: limit, Cursor: cursor})
			})
			if d := diff(want, got, ignoreEventID); d != "" {
				t.Errorf("events over all pages (-want +got):\n%s", d)
			}
		})
	}
	t.Run("within a filter", func(t *testing.T) {
		got := allPages(t, 2, func(cursor string) (tokend.Page[tokend.Event], error) {
			return s.Events(t.Context(), tokend.EventFilter{AppID: "app_a", Limit: 2, Cursor: cursor})
		})
		var wantA []tokend.Event
		for _, ev := range want {
			if ev.AppID == "app_a" {
				wantA = append(wantA, ev)
			}
		}
		if d := diff(wantA, got, ignoreEventID); d != "" {
			t.Errorf("events of app_a over all pages (-want +got):\n%s", d)
		}
	})
}
