package storetest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

var appTests = []test{
	{name: "round trip keeps every field", run: testAppRoundTrip},
	{name: "create writes its event", run: testAppCreateEvent},
	{name: "existing id conflicts", run: testAppIDConflict},
	{name: "a name another app has conflicts, whatever its case", run: testAppNameTaken},
	{name: "a name that only looks different conflicts: spaces, Unicode forms and case", run: testAppNameLookalike},
	{name: "concurrent creates of one name: one wins", run: testAppNameRace},
	{name: "missing app is not found", run: testAppNotFound},
	{name: "update bumps version and writes the event", run: testAppUpdate},
	{name: "update error changes nothing and writes no event", run: testAppUpdateError},
	{name: "list is oldest first through all pages", run: testAppList},
	{name: "delete removes its tokens, secrets and usage but not other apps", run: testAppDelete},
}

func testAppRoundTrip(t *testing.T, s tokend.Store) {
	full := newApp("app_full")
	full.MaxTokenLifetime = ptr(tokend.Duration(90 * 24 * time.Hour))
	full.ExpiryNotice = ptr(tokend.Duration(14 * 24 * time.Hour))
	full.System = true
	full.MaxTokensPerOwner = ptr(25)
	full.OwnerRateLimit = &tokend.RateLimit{Limit: 600, Window: tokend.Duration(time.Minute)}
	full.UpdatedAt = at(time.Hour)
	full.Version = 7
	full.LeakPolicy = tokend.LeakNotify
	full.RotatedSecretPolicy = tokend.RotatedDisable

	nilPerms := newApp("app_nil")
	nilPerms.Permissions = nil

	emptyPerms := newApp("app_empty")
	emptyPerms.Permissions = []string{}

	for _, a := range []tokend.App{full, nilPerms, emptyPerms} {
		t.Run(a.ID, func(t *testing.T) {
			mustCreateApp(t, s, a)
			got, err := s.App(t.Context(), a.ID)
			if err != nil {
				t.Fatalf("App: %v", err)
			}
			if d := diff(a, got); d != "" {
				t.Errorf("App answered a different app (-want +got):\n%s", d)
			}
		})
	}
}

func testAppCreateEvent(t *testing.T, s tokend.Store) {
	ev := newEvent(tokend.ActionAppCreate, "app_a", "")
	ev.Details = map[string]any{"name": "App app_a"}
	if err := s.CreateApp(t.Context(), newApp("app_a"), ev); err != nil {
		t.Fatal(err)
	}
	got := eventsOf(t, s, tokend.EventFilter{AppID: "app_a"})
	if d := diff([]tokend.Event{ev}, got, ignoreEventID); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
	if len(got) == 1 && got[0].ID <= 0 {
		t.Errorf("event id = %d, want a positive id from the store", got[0].ID)
	}
}

func testAppIDConflict(t *testing.T, s tokend.Store) {
	mustCreateApp(t, s, newApp("app_a"))
	again := newApp("app_a")
	again.Name = "Another"
	err := s.CreateApp(t.Context(), again, newEvent(tokend.ActionAppCreate, "app_a", ""))
	wantErrIs(t, "CreateApp with a taken id", err, tokend.ErrConflict)
	if n := countEvents(t, s); n != 1 {
		t.Errorf("%d events after a refused create, want 1", n)
	}
	got, err := s.App(t.Context(), "app_a")
	if err != nil || got.Name != "App app_a" {
		t.Errorf("App after a refused create = %+v, %v; want the first app unchanged", got, err)
	}
}

func testAppNameTaken(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	shop := newApp("app_shop")
	shop.Name = "Shop"
	mustCreateApp(t, s, shop)
	other := newApp("app_other")
	mustCreateApp(t, s, other)
	events := countEvents(t, s)

	again := newApp("app_again")
	again.Name = "shop"
	err := s.CreateApp(ctx, again, newEvent(tokend.ActionAppCreate, again.ID, ""))
	wantErrIs(t, "CreateApp with a taken name", err, tokend.ErrConflict)
	var te *tokend.Error
	if !errors.As(err, &te) || !strings.Contains(te.Message, "app_shop") || len(te.Fields) != 1 || te.Fields[0].Field != "name" {
		t.Errorf("the refusal does not name the app that has the name, on the field name: %#v", err)
	}
	if _, err := s.App(ctx, again.ID); !errors.Is(err, tokend.ErrNotFound) {
		t.Errorf("the refused app was stored: %v", err)
	}
	_, err = s.UpdateApp(ctx, other.ID, func(a *tokend.App) (tokend.Event, error) {
		a.Name = "SHOP"
		return newEvent(tokend.ActionAppUpdate, a.ID, ""), nil
	})
	wantErrIs(t, "renaming an app to a taken name", err, tokend.ErrConflict)
	if n := countEvents(t, s); n != events {
		t.Errorf("%d events after refused writes, want %d", n, events)
	}
	// An app keeps its own name, in another case too; other edits of an
	// app whose name is taken (from before the rule) pass.
	if _, err := s.UpdateApp(ctx, shop.ID, func(a *tokend.App) (tokend.Event, error) {
		a.Name = "SHOP"
		return newEvent(tokend.ActionAppUpdate, a.ID, ""), nil
	}); err != nil {
		t.Errorf("renaming an app to its own name in capitals: %v", err)
	}
	if _, err := s.UpdateApp(ctx, other.ID, func(a *tokend.App) (tokend.Event, error) {
		a.Name = "Shop floor"
		return newEvent(tokend.ActionAppUpdate, a.ID, ""), nil
	}); err != nil {
		t.Errorf("renaming an app to a free name: %v", err)
	}
}

// Names that read as one on a screen are one name: around and repeated
// spaces, a composed or decomposed accent, full-width letters, and the case
// of letters beyond ASCII (SQLite's lower() folds ASCII only).
func testAppNameLookalike(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	for i, taken := range []string{"Shop", "Café", "Müller GmbH", "Shop floor"} {
		a := newApp(fmt.Sprintf("app_taken%d", i))
		a.Name = taken
		mustCreateApp(t, s, a)
	}
	for i, name := range []string{
		"Shop ", " shop", "\tSHOP", "Ｓｈｏｐ", "ſhop", // ſ folds to s
		"Cafe\u0301", "CAFÉ", "MÜLLER GMBH", "Shop  floor",
	} {
		a := newApp(fmt.Sprintf("app_alike%d", i))
		a.Name = name
		err := s.CreateApp(ctx, a, newEvent(tokend.ActionAppCreate, a.ID, ""))
		if !errors.Is(err, tokend.ErrConflict) {
			t.Errorf("CreateApp(%q) = %v; want a conflict with the app of that name", name, err)
		}
	}
	other := newApp("app_other")
	other.Name = "Café au lait"
	mustCreateApp(t, s, other)
}

func testAppNameRace(t *testing.T, s tokend.Store) {
	const n = 8
	errs := make(chan error, n)
	var start sync.WaitGroup
	start.Add(1)
	for i := range n {
		go func() {
			start.Wait()
			a := newApp(fmt.Sprintf("app_race%d", i))
			a.Name = "Race"
			errs <- s.CreateApp(t.Context(), a, newEvent(tokend.ActionAppCreate, a.ID, ""))
		}()
	}
	start.Done()
	won := 0
	for range n {
		err := <-errs
		switch {
		case err == nil:
			won++
		case !errors.Is(err, tokend.ErrConflict):
			t.Errorf("a create lost with %v, want a conflict", err)
		}
	}
	if won != 1 {
		t.Errorf("%d of %d concurrent creates of one name won, want 1", won, n)
	}
}

func testAppNotFound(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	_, err := s.App(ctx, "app_nope")
	wantErrIs(t, "App", err, tokend.ErrNotFound)

	called := false
	_, err = s.UpdateApp(ctx, "app_nope", func(a *tokend.App) (tokend.Event, error) {
		called = true
		return newEvent(tokend.ActionAppUpdate, a.ID, ""), nil
	})
	wantErrIs(t, "UpdateApp", err, tokend.ErrNotFound)
	if called {
		t.Error("UpdateApp called fn for a missing app")
	}
	err = s.DeleteApp(ctx, "app_nope", 0, newEvent(tokend.ActionAppDelete, "app_nope", ""))
	wantErrIs(t, "DeleteApp", err, tokend.ErrNotFound)
	_, err = s.RevokeAppTokens(ctx, "app_nope", t0, newEvent(tokend.ActionAppRevokeAll, "app_nope", ""))
	wantErrIs(t, "RevokeAppTokens", err, tokend.ErrNotFound)
	if n := countEvents(t, s); n != 0 {
		t.Errorf("%d events after operations on a missing app, want 0", n)
	}
}

func testAppUpdate(t *testing.T, s tokend.Store) {
	a := newApp("app_a")
	mustCreateApp(t, s, a)

	ev := newEvent(tokend.ActionAppUpdate, "app_a", "")
	ev.Time = at(time.Minute)
	ev.Details = map[string]any{"name": map[string]any{"from": "App app_a", "to": "Shop"}}
	got, err := s.UpdateApp(t.Context(), "app_a", func(cur *tokend.App) (tokend.Event, error) {
		if d := diff(a, *cur); d != "" {
			t.Errorf("fn got a different app than stored (-want +got):\n%s", d)
		}
		cur.Name = "Shop"
		cur.Permissions = append(cur.Permissions, "invoices:read")
		cur.MaxTokenLifetime = ptr(tokend.Duration(30 * 24 * time.Hour))
		cur.UpdatedAt = at(time.Minute)
		return ev, nil
	})
	if err != nil {
		t.Fatalf("UpdateApp: %v", err)
	}
	want := a
	want.Name = "Shop"
	want.Permissions = []string{"orders:read", "orders:write", "invoices:read"}
	want.MaxTokenLifetime = ptr(tokend.Duration(30 * 24 * time.Hour))
	want.UpdatedAt = at(time.Minute)
	want.Version = a.Version + 1
	if d := diff(want, got); d != "" {
		t.Errorf("UpdateApp answered (-want +got):\n%s", d)
	}
	stored, err := s.App(t.Context(), "app_a")
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(want, stored); d != "" {
		t.Errorf("stored app (-want +got):\n%s", d)
	}
	evs := eventsOf(t, s, tokend.EventFilter{AppID: "app_a", Action: tokend.ActionAppUpdate})
	if d := diff([]tokend.Event{ev}, evs, ignoreEventID); d != "" {
		t.Errorf("update events (-want +got):\n%s", d)
	}
}

func testAppUpdateError(t *testing.T, s tokend.Store) {
	a := newApp("app_a")
	mustCreateApp(t, s, a)
	_, err := s.UpdateApp(t.Context(), "app_a", func(cur *tokend.App) (tokend.Event, error) {
		cur.Name = "half-done"
		cur.Permissions[0] = "mutated:in_place"
		return newEvent(tokend.ActionAppUpdate, "app_a", ""), errBoom
	})
	if err != errBoom {
		t.Errorf("UpdateApp error = %v, want fn's error as is", err)
	}
	got, err := s.App(t.Context(), "app_a")
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(a, got); d != "" {
		t.Errorf("app changed by a failed update (-want +got):\n%s", d)
	}
	if n := countEvents(t, s); n != 1 {
		t.Errorf("%d events, want only the create", n)
	}
}

func testAppList(t *testing.T, s tokend.Store) {
	// Ids deliberately out of creation order, and some creation times shared,
	// so that the id only breaks ties.
	created := []struct {
		id string
		at time.Duration
	}{
		{"app_e", 0}, {"app_b", 0}, {"app_z", time.Second}, {"app_a", 2 * time.Second},
		{"app_c", 2 * time.Second}, {"app_y", 2 * time.Second}, {"app_d", 3 * time.Second},
	}
	for _, c := range created {
		a := newApp(c.id)
		a.CreatedAt = at(c.at)
		mustCreateApp(t, s, a)
	}
	want := []string{"app_b", "app_e", "app_z", "app_a", "app_c", "app_y", "app_d"}
	for _, limit := range []int{1, 3, 7, 100} {
		t.Run(name("limit %d", limit), func(t *testing.T) {
			apps := allPages(t, limit, func(cursor string) (tokend.Page[tokend.App], error) {
				return s.Apps(t.Context(), tokend.AppFilter{Limit: limit, Cursor: cursor})
			})
			var got []string
			for _, a := range apps {
				got = append(got, a.ID)
			}
			if d := diff(want, got); d != "" {
				t.Errorf("apps in order (-want +got):\n%s", d)
			}
		})
	}
}

func testAppDelete(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	mustCreateApp(t, s, newApp("app_a"))
	mustCreateApp(t, s, newApp("app_b"))
	mustCreateToken(t, s, newToken("tok_a1", "app_a", "one"))
	mustCreateToken(t, s, newToken("tok_a2", "app_a", "two"))
	mustCreateToken(t, s, newToken("tok_b1", "app_b", "one"))
	rotate(t, s, "tok_a1", "new secret of tok_a1", at(time.Minute), ptr(at(time.Hour)))
	err := s.RecordUsage(ctx, tokend.UsageBatch{Counts: []tokend.UsageCount{
		{TokenID: "tok_a1", Hour: t0.Truncate(time.Hour), Code: tokend.CodeValid, Count: 3},
	}})
	if err != nil {
		t.Fatal(err)
	}

	if err := s.DeleteApp(ctx, "app_a", 0, newEvent(tokend.ActionAppDelete, "app_a", "")); err != nil {
		t.Fatalf("DeleteApp: %v", err)
	}

	_, err = s.App(ctx, "app_a")
	wantErrIs(t, "App after delete", err, tokend.ErrNotFound)
	for _, id := range []string{"tok_a1", "tok_a2"} {
		_, err := s.Token(ctx, id)
		wantErrIs(t, "Token "+id+" of a deleted app", err, tokend.ErrNotFound)
	}
	for _, secret := range []string{"new secret of tok_a1", "secret of tok_a1", "secret of tok_a2"} {
		_, err := s.TokenBySecret(ctx, hashOf(secret))
		wantErrIs(t, "TokenBySecret("+secret+") of a deleted app", err, tokend.ErrNotFound)
	}
	page, err := s.Tokens(ctx, tokend.TokenFilter{AppID: "app_a", Now: t0})
	if err != nil || len(page.Items) != 0 {
		t.Errorf("Tokens of a deleted app = %v, %v; want none", tokenIDs(page.Items), err)
	}
	usage, err := s.Usage(ctx, "tok_a1", t0.Add(-24*time.Hour), t0.Add(24*time.Hour))
	if err != nil || len(usage) != 0 {
		t.Errorf("Usage of a token of a deleted app = %v, %v; want none", usage, err)
	}

	if _, err := s.App(ctx, "app_b"); err != nil {
		t.Errorf("the other app: %v", err)
	}
	if _, err := s.Token(ctx, "tok_b1"); err != nil {
		t.Errorf("the other app's token: %v", err)
	}
	if got := eventsOf(t, s, tokend.EventFilter{AppID: "app_a", Action: tokend.ActionAppDelete}); len(got) != 1 {
		t.Errorf("%d app.delete events, want 1", len(got))
	}
	if got := eventsOf(t, s, tokend.EventFilter{TokenID: "tok_a1"}); len(got) != 2 {
		t.Errorf("%d events of a token of the deleted app, want its 2 kept for audit", len(got))
	}
}
