package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

var eventTests = []test{
	{name: "round trip keeps every field", run: testEventRoundTrip},
	{name: "filters", run: testEventFilters},
	{name: "pages through every event newest first", run: testEventPages},
	{name: "a reader following the log misses no event of concurrent writers", run: testEventFollow},
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

// Many writers at once, and a reader polling the newest page meanwhile:
// every event the reader finds for the first time has a higher id than
// every event it had found before, and in the end it has found them all.
func testEventFollow(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	const writers, each = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				ev := newEvent(tokend.ActionTokenUpdate, "app_a", fmt.Sprintf("tok_%d_%d", w, i))
				if err := s.AppendEvent(ctx, ev); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	writing := make(chan struct{})
	go func() { wg.Wait(); close(writing) }()

	seen := map[int64]bool{}
	var highest int64
	for done := false; !done; {
		select {
		case <-writing:
			done = true // one last poll after every writer committed
		default:
		}
		// Newest first, down to the highest id of the previous poll: what
		// a client following the audit log reads.
		var fresh []int64
		cursor := ""
		for {
			page, err := s.Events(ctx, tokend.EventFilter{Limit: tokend.MaxPageSize, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			stop := false
			for _, ev := range page.Items {
				if ev.ID <= highest {
					stop = true
					break
				}
				fresh = append(fresh, ev.ID)
			}
			if stop || page.NextCursor == "" {
				break
			}
			cursor = page.NextCursor
		}
		for _, id := range fresh {
			seen[id] = true
			highest = max(highest, id)
		}
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	page, err := s.Events(ctx, tokend.EventFilter{Limit: tokend.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	all := page.Items
	for page.NextCursor != "" {
		if page, err = s.Events(ctx, tokend.EventFilter{Limit: tokend.MaxPageSize, Cursor: page.NextCursor}); err != nil {
			t.Fatal(err)
		}
		all = append(all, page.Items...)
	}
	if len(all) != writers*each {
		t.Fatalf("%d events stored, want %d", len(all), writers*each)
	}
	var missed []int64
	for _, ev := range all {
		if !seen[ev.ID] {
			missed = append(missed, ev.ID)
		}
	}
	if len(missed) > 0 {
		t.Errorf("the following reader never saw %d of %d events (ids %v): they became visible after a higher id", len(missed), len(all), missed)
	}
}
