package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tokend/tokend"
)

// The outbox (tokend.EventStore): every write stores the notices of its
// audit event with it, or, when it fails, neither.
var notificationTests = []test{
	{name: "a failed change leaves no event", run: testNotifyFailedChange},
	{name: "a committed change stores exactly its notices", run: testNotifyCommitted},
	{name: "revoking every token puts the count in the data", run: testNotifyRevokeAll},
	{name: "filters", run: testNotifyFilters},
	{name: "pages through every event newest first", run: testNotifyPages},
	{name: "scope keeps the events of the scope's tokens", run: testNotifyScope},
	{name: "RaiseOnce raises once per mark", run: testRaiseOnce},
	{name: "RaiseOnce from 8 goroutines raises once", run: testRaiseOnceConcurrent},
	{name: "a commit that wrote events calls the outbox hook", run: testOutboxHook},
}

// testOutboxHook: a dispatcher in the same process hears of new events at
// their commit, not at its next poll.
func testOutboxHook(t *testing.T, s tokend.Store) {
	h, ok := s.(interface{ SetOutboxHook(func()) })
	if !ok {
		t.Skipf("%T has no outbox hook", s)
	}
	var calls atomic.Int32
	h.SetOutboxHook(func() { calls.Add(1) })
	ctx := t.Context()
	if err := s.AppendEvent(ctx, newEvent("token.update", "app_a", "tok_aaaa")); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("hook called %d times after a commit without events", n)
	}
	ev := newEvent("token.update", "app_a", "tok_aaaa")
	ev.Notices = []tokend.Notice{{Type: tokend.EventTokenUpdated, Data: map[string]any{"id": "tok_aaaa"}}}
	if err := s.AppendEvent(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("hook called %d times after a commit with an event, want 1", n)
	}
}

func eventStore(t *testing.T, s tokend.Store) tokend.EventStore {
	t.Helper()
	es, ok := s.(tokend.EventStore)
	if !ok {
		t.Fatalf("%T is not a tokend.EventStore", s)
	}
	return es
}

// noticed is newEvent with one notice of type typ per name in typs.
func noticed(action, appID, tokenID string, typs ...string) tokend.Event {
	ev := newEvent(action, appID, tokenID)
	for _, typ := range typs {
		ev.Notices = append(ev.Notices, tokend.Notice{Type: typ, Data: map[string]any{"id": tokenID, "n": float64(len(ev.Notices))}})
	}
	return ev
}

func notificationsOf(t *testing.T, s tokend.Store, f tokend.NotificationFilter) []tokend.Notification {
	t.Helper()
	if f.Limit == 0 {
		f.Limit = tokend.MaxPageSize
	}
	return allPages(t, f.Limit, func(cursor string) (tokend.Page[tokend.Notification], error) {
		f.Cursor = cursor
		return eventStore(t, s).Notifications(t.Context(), f)
	})
}

func types(ns []tokend.Notification) []string {
	out := []string{}
	for _, n := range ns {
		out = append(out, n.Type)
	}
	return out
}

func testNotifyFailedChange(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	mustCreateApp(t, s, newApp("app_a"))
	mustCreateToken(t, s, newToken("tok_aaaa", "app_a", "one"))

	_, err := s.UpdateToken(ctx, "tok_aaaa", func(tok *tokend.Token) (tokend.Event, error) {
		tok.Name = "changed"
		return noticed(tokend.ActionTokenUpdate, "app_a", "tok_aaaa", tokend.EventTokenUpdated), errBoom
	})
	wantErrIs(t, "UpdateToken with a failing updater", err, errBoom)

	dup := newToken("tok_bbbb", "app_a", "one")
	err = s.CreateToken(ctx, dup, noticed(tokend.ActionTokenCreate, "app_a", "tok_bbbb", tokend.EventTokenCreated))
	wantErrIs(t, "CreateToken with a taken name", err, tokend.ErrConflict)

	err = s.DeleteToken(ctx, "tok_aaaa", 7, noticed(tokend.ActionTokenDelete, "app_a", "tok_aaaa", tokend.EventTokenDeleted))
	wantErrIs(t, "DeleteToken with a stale version", err, tokend.ErrStale)

	err = s.DeleteToken(ctx, "tok_zzzz", 0, noticed(tokend.ActionTokenDelete, "app_a", "tok_zzzz", tokend.EventTokenDeleted))
	wantErrIs(t, "DeleteToken of no token", err, tokend.ErrNotFound)

	if got := notificationsOf(t, s, tokend.NotificationFilter{}); len(got) != 0 {
		t.Errorf("events after failed changes: %v, want none", types(got))
	}
}

func testNotifyCommitted(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	mustCreateApp(t, s, newApp("app_a"))
	tok := newToken("tok_aaaa", "app_a", "one")
	create := noticed(tokend.ActionTokenCreate, "app_a", tok.ID, tokend.EventTokenCreated)
	if err := s.CreateToken(ctx, tok, create); err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	disable := noticed(tokend.ActionTokenDisable, "app_a", tok.ID, tokend.EventTokenDisabled, tokend.EventTokenInactive)
	disable.Time = at(time.Minute)
	disable.Actor, disable.ActorName = "system", "tokend"
	if _, err := s.UpdateToken(ctx, tok.ID, func(x *tokend.Token) (tokend.Event, error) {
		x.Status = tokend.StatusDisabled
		return disable, nil
	}); err != nil {
		t.Fatalf("UpdateToken: %v", err)
	}
	// An audit event without notices raises none.
	if err := s.AppendEvent(ctx, newEvent(tokend.ActionAppUpdate, "app_a", "")); err != nil {
		t.Fatalf("AppendEvent: %v", err)
	}
	leak := noticed(tokend.ActionTokenOldSecret, "app_a", tok.ID, tokend.EventTokenRotatedSecretUsed)
	leak.Time = at(2 * time.Minute)
	if err := s.AppendEvent(ctx, leak); err != nil {
		t.Fatalf("AppendEvent: %v", err)
	}
	del := noticed(tokend.ActionTokenDelete, "app_a", tok.ID, tokend.EventTokenDeleted)
	del.Time = at(3 * time.Minute)
	del.Actor, del.ActorName = "owner:acct_1", "Acme"
	if err := s.DeleteToken(ctx, tok.ID, 0, del); err != nil {
		t.Fatalf("DeleteToken: %v", err)
	}

	got := notificationsOf(t, s, tokend.NotificationFilter{})
	ada := tokend.EventActor{Type: "user", ID: "u_ada", Name: "Ada"}
	sys := tokend.EventActor{Type: "system", ID: "system", Name: "tokend"}
	data := func(n int) map[string]any { return map[string]any{"id": tok.ID, "n": float64(n)} }
	want := []tokend.Notification{
		{Type: tokend.EventTokenDeleted, OccurredAt: at(3 * time.Minute), AppID: "app_a", TokenID: tok.ID, Actor: tokend.EventActor{Type: "owner", ID: "acct_1", Name: "Acme"}, Data: data(0)},
		{Type: tokend.EventTokenRotatedSecretUsed, OccurredAt: at(2 * time.Minute), AppID: "app_a", TokenID: tok.ID, Actor: ada, Data: data(0)},
		{Type: tokend.EventTokenInactive, OccurredAt: at(time.Minute), AppID: "app_a", TokenID: tok.ID, Actor: sys, Data: data(1)},
		{Type: tokend.EventTokenDisabled, OccurredAt: at(time.Minute), AppID: "app_a", TokenID: tok.ID, Actor: sys, Data: data(0)},
		{Type: tokend.EventTokenCreated, OccurredAt: t0, AppID: "app_a", TokenID: tok.ID, Actor: ada, Data: data(0)},
	}
	if d := diff(want, got, cmpopts.IgnoreFields(tokend.Notification{}, "Seq", "ID")); d != "" {
		t.Errorf("events, newest first (-want +got):\n%s", d)
	}
	ids := map[string]bool{}
	for i, n := range got {
		if !strings.HasPrefix(n.ID, "evt_") || !tokend.ValidID(n.ID) || ids[n.ID] {
			t.Errorf("event id %q: want a distinct evt_ id", n.ID)
		}
		ids[n.ID] = true
		if i > 0 && n.Seq >= got[i-1].Seq {
			t.Errorf("seq %d after %d: want it to fall, newest first", n.Seq, got[i-1].Seq)
		}
	}
}

func testNotifyRevokeAll(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	mustCreateApp(t, s, newApp("app_a"))
	mustCreateToken(t, s, newToken("tok_aaaa", "app_a", "one"))
	mustCreateToken(t, s, newToken("tok_bbbb", "app_a", "two"))
	ev := newEvent(tokend.ActionAppRevokeAll, "app_a", "")
	data := map[string]any{"app_id": "app_a"}
	ev.Notices = []tokend.Notice{{Type: tokend.EventAppTokensRevoked, Data: data}}
	// Each revoked token's own event, from the token as stored after.
	ev.EachToken = func(t tokend.Token) []tokend.Notice {
		return []tokend.Notice{{Type: tokend.EventTokenRevoked, Data: map[string]any{"id": t.ID, "status": string(t.Status)}}}
	}
	if n, err := s.RevokeAppTokens(ctx, "app_a", at(time.Minute), ev); err != nil || n != 2 {
		t.Fatalf("RevokeAppTokens = %d, %v; want 2", n, err)
	}
	got := notificationsOf(t, s, tokend.NotificationFilter{Type: tokend.EventAppTokensRevoked})
	if len(got) != 1 {
		t.Fatalf("app.tokens_revoked events: %d, want 1", len(got))
	}
	if d := diff(map[string]any{"app_id": "app_a", "count": float64(2)}, got[0].Data); d != "" {
		t.Errorf("data (-want +got):\n%s", d)
	}
	if _, set := data["count"]; set {
		t.Errorf("the store wrote the count into the caller's map")
	}
	each := notificationsOf(t, s, tokend.NotificationFilter{Type: tokend.EventTokenRevoked})
	if len(each) != 2 {
		t.Fatalf("token.revoked events: %+v, want one per revoked token", each)
	}
	for _, n := range each {
		if n.TokenID != n.Data["id"] || n.AppID != "app_a" || n.Data["status"] != string(tokend.StatusRevoked) {
			t.Errorf("token.revoked of a revoke-all: %+v", n)
		}
	}
	// Nothing left to revoke: audited, but no event.
	if n, err := s.RevokeAppTokens(ctx, "app_a", at(2*time.Minute), ev); err != nil || n != 0 {
		t.Fatalf("RevokeAppTokens again = %d, %v; want 0", n, err)
	}
	if got := notificationsOf(t, s, tokend.NotificationFilter{}); len(got) != 3 {
		t.Errorf("events after revoking nothing: %d, want the 3 of the first revocation", len(got))
	}
}

// notices is a dozen events of two apps and three tokens, a minute apart
// except for two pairs that share a time, each with a notice.
func notices() []tokend.Event {
	var evs []tokend.Event
	for _, ev := range auditTrail() {
		typ := tokend.EventTokenUpdated
		switch ev.Action {
		case tokend.ActionTokenCreate:
			typ = tokend.EventTokenCreated
		case tokend.ActionTokenRevoke:
			typ = tokend.EventTokenRevoked
		case tokend.ActionAppCreate, tokend.ActionAppUpdate:
			typ = tokend.EventAppTokensRevoked
		}
		ev.Notices = []tokend.Notice{{Type: typ, Data: map[string]any{}}}
		evs = append(evs, ev)
	}
	return evs
}

func testNotifyFilters(t *testing.T, s tokend.Store) {
	trail := notices()
	appendAll(t, s, trail)
	cases := []struct {
		name string
		f    tokend.NotificationFilter
		keep func(ev tokend.Event) bool
	}{
		{"no filter", tokend.NotificationFilter{}, func(tokend.Event) bool { return true }},
		{"type", tokend.NotificationFilter{Type: tokend.EventTokenCreated}, func(ev tokend.Event) bool { return ev.Notices[0].Type == tokend.EventTokenCreated }},
		{"token", tokend.NotificationFilter{TokenID: "tok_1"}, func(ev tokend.Event) bool { return ev.TokenID == "tok_1" }},
		{"app", tokend.NotificationFilter{AppID: "app_b"}, func(ev tokend.Event) bool { return ev.AppID == "app_b" }},
		{"since is inclusive", tokend.NotificationFilter{Since: at(6 * time.Minute)}, func(ev tokend.Event) bool { return !ev.Time.Before(at(6 * time.Minute)) }},
		{"until is exclusive", tokend.NotificationFilter{Until: at(3 * time.Minute)}, func(ev tokend.Event) bool { return ev.Time.Before(at(3 * time.Minute)) }},
		{"filters combine", tokend.NotificationFilter{AppID: "app_a", Type: tokend.EventTokenUpdated, Since: at(5 * time.Minute)}, func(ev tokend.Event) bool {
			return ev.AppID == "app_a" && ev.Notices[0].Type == tokend.EventTokenUpdated && !ev.Time.Before(at(5*time.Minute))
		}},
		{"nothing matches", tokend.NotificationFilter{TokenID: "tok_3", Type: tokend.EventTokenRevoked}, func(tokend.Event) bool { return false }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := []string{}
			for _, ev := range slices.Backward(trail) {
				if c.keep(ev) {
					want = append(want, fmt.Sprintf("%s %s %s %s", ev.Notices[0].Type, ev.AppID, ev.TokenID, ev.Time.Format(time.RFC3339)))
				}
			}
			got := []string{}
			for _, n := range notificationsOf(t, s, c.f) {
				got = append(got, fmt.Sprintf("%s %s %s %s", n.Type, n.AppID, n.TokenID, n.OccurredAt.Format(time.RFC3339)))
			}
			if d := diff(want, got); d != "" {
				t.Errorf("events (-want +got):\n%s", d)
			}
		})
	}
}

func testNotifyPages(t *testing.T, s tokend.Store) {
	trail := notices()
	appendAll(t, s, trail)
	all := notificationsOf(t, s, tokend.NotificationFilter{})
	for _, limit := range []int{1, 3, 5, len(trail)} {
		paged := notificationsOf(t, s, tokend.NotificationFilter{Limit: limit})
		if d := diff(all, paged); d != "" {
			t.Errorf("pages of %d (-one page +pages):\n%s", limit, d)
		}
	}
	es := eventStore(t, s)
	for _, c := range []string{"nope", tokend.IDCursor(tokend.CursorEvents, 3), tokend.IDCursor(tokend.CursorNotifications, 0)} {
		_, err := es.Notifications(t.Context(), tokend.NotificationFilter{Cursor: c})
		wantInvalidField(t, "cursor "+c, err, "cursor")
	}
}

func testNotifyScope(t *testing.T, s tokend.Store) {
	mustCreateApp(t, s, newApp("app_a"))
	mine := newToken("tok_aaaa", "app_a", "mine")
	mine.OwnerID = "acct_1"
	theirs := newToken("tok_bbbb", "app_a", "theirs")
	theirs.OwnerID = "acct_2"
	for _, tok := range []tokend.Token{mine, theirs} {
		if err := s.CreateToken(t.Context(), tok, noticed(tokend.ActionTokenCreate, "app_a", tok.ID, tokend.EventTokenCreated)); err != nil {
			t.Fatalf("CreateToken: %v", err)
		}
	}
	appendAll(t, s, []tokend.Event{noticed(tokend.ActionAppRevokeAll, "app_a", "", tokend.EventAppTokensRevoked)})
	got := notificationsOf(t, s, tokend.NotificationFilter{Scope: &tokend.AdminScope{OwnerID: "acct_1"}})
	if len(got) != 1 || got[0].TokenID != mine.ID {
		t.Errorf("scoped events: %v, want only the created event of %s", got, mine.ID)
	}
	if got := notificationsOf(t, s, tokend.NotificationFilter{Scope: &tokend.AdminScope{}}); len(got) != 0 {
		t.Errorf("a scope without owner sees %d events, want none", len(got))
	}
}

func testRaiseOnce(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	es := eventStore(t, s)
	mustCreateApp(t, s, newApp("app_a"))
	mustCreateToken(t, s, newToken("tok_aaaa", "app_a", "one"))
	mark := tokend.EventMark{TokenID: "tok_aaaa", Kind: "expiring:168h0m0s", At: at(7 * 24 * time.Hour)}
	ev := noticed("token.expiring", "app_a", "tok_aaaa", tokend.EventTokenExpiring)
	for i, want := range []bool{true, false, false} {
		raised, err := es.RaiseOnce(ctx, mark, ev)
		if err != nil || raised != want {
			t.Errorf("RaiseOnce #%d = %v, %v; want %v", i+1, raised, err, want)
		}
	}
	// Another kind, or another time (the expiry changed), is another mark.
	other := mark
	other.Kind = "expiring:24h0m0s"
	later := mark
	later.At = at(8 * 24 * time.Hour)
	for _, m := range []tokend.EventMark{other, later} {
		if raised, err := es.RaiseOnce(ctx, m, ev); err != nil || !raised {
			t.Errorf("RaiseOnce(%v) = %v, %v; want raised", m, raised, err)
		}
	}
	if got := notificationsOf(t, s, tokend.NotificationFilter{}); len(got) != 3 {
		t.Errorf("events: %v, want 3", types(got))
	}
	gone := mark
	gone.TokenID = "tok_gone"
	raised, err := es.RaiseOnce(ctx, gone, noticed("token.expiring", "app_a", "tok_gone", tokend.EventTokenExpiring))
	if raised || !errors.Is(err, tokend.ErrNotFound) {
		t.Errorf("RaiseOnce of a token that does not exist = %v, %v; want ErrNotFound", raised, err)
	}
	if got := notificationsOf(t, s, tokend.NotificationFilter{}); len(got) != 3 {
		t.Errorf("events after a refused raise: %v, want 3", types(got))
	}
}

func testRaiseOnceConcurrent(t *testing.T, s tokend.Store) {
	mustCreateApp(t, s, newApp("app_a"))
	mustCreateToken(t, s, newToken("tok_aaaa", "app_a", "one"))
	RaiseOnceRace(t, []tokend.EventStore{eventStore(t, s)}, "tok_aaaa")
}

// RaiseOnceRace raises one mark of the token from 8 goroutines spread over
// stores (several Store values of one database, where the dialect allows),
// and checks that exactly one raised it and that the outbox holds its
// event once.
func RaiseOnceRace(t *testing.T, stores []tokend.EventStore, tokenID string) {
	t.Helper()
	mark := tokend.EventMark{TokenID: tokenID, Kind: "expired", At: t0}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		raised int
		errs   []error
	)
	for i := range 8 {
		es := stores[i%len(stores)]
		wg.Go(func() {
			ev := noticed(tokend.ActionTokenUpdate, "app_a", tokenID, tokend.EventTokenExpired)
			ok, err := es.RaiseOnce(t.Context(), mark, ev)
			mu.Lock()
			defer mu.Unlock()
			if ok {
				raised++
			}
			if err != nil {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	if raised != 1 || len(errs) > 0 {
		t.Errorf("8 concurrent raises: %d raised, errors %v; want exactly 1 and no error", raised, errs)
	}
	page, err := stores[0].Notifications(t.Context(), tokend.NotificationFilter{Type: tokend.EventTokenExpired, TokenID: tokenID})
	if err != nil || len(page.Items) != 1 {
		t.Errorf("token.expired events: %d (%v), want 1", len(page.Items), err)
	}
}
