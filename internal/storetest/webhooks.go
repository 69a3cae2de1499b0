package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tokend/tokend"
)

// Emit puts n in the outbox of s, undispatched, as a change does: an
// audit event (of action "test.emit") carrying n as its Notice.
func Emit(t testing.TB, s tokend.Store, n tokend.Notification) {
	t.Helper()
	actor := n.Actor.Type + ":" + n.Actor.ID
	if n.Actor.Type == "" || n.Actor.Type == "system" {
		actor = "system"
	}
	ev := tokend.Event{
		Time: n.OccurredAt, Actor: actor, ActorName: n.Actor.Name, Action: "test.emit",
		AppID: n.AppID, TokenID: n.TokenID,
		Notices: []tokend.Notice{{ID: n.ID, Type: n.Type, Data: n.Data}},
	}
	if err := s.AppendEvent(t.Context(), ev); err != nil {
		t.Fatalf("emit %s: %v", n.ID, err)
	}
}

// RunWebhooks runs the conformance group of tokend.WebhookStore.
func RunWebhooks(t *testing.T, newStore func(t *testing.T) tokend.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s tokend.Store, ws tokend.WebhookStore)
	}{
		{"round trip", testWebhookRoundTrip},
		{"list and filter by app", testWebhookList},
		{"update and delete with versions", testWebhookUpdateDelete},
		{"dispatch takes each event once and makes its deliveries", testDispatch},
		{"a delivery exists once per event and endpoint", testDispatchOnce},
		{"concurrent dispatchers create each delivery once", testDispatchConcurrent},
		{"claim in event order, hold the lease, lapse", testClaimLease},
		{"concurrent claimers never hold one delivery at once", testClaimConcurrent},
		{"finish records the attempt and failing_since", testFinishAttempt},
		{"a stale attempt does not overwrite a newer one", testFinishStale},
		{"retry makes a delivery due again", testRetryDelivery},
		{"deleting an endpoint deletes its deliveries", testDeleteWebhookDeliveries},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			ws, ok := s.(tokend.WebhookStore)
			if !ok {
				t.Fatalf("%T does not implement tokend.WebhookStore", s)
			}
			tt.run(t, s, ws)
		})
	}
}

func newWebhook(id, appID string) tokend.Webhook {
	return tokend.Webhook{
		ID: id, URL: "https://hooks.example.com/" + id, Description: "hook " + id, AppID: appID,
		Events: []string{tokend.EventTokenCreated, tokend.EventTokenRevoked}, Enabled: true,
		CreatedBy: "user:u_ada", CreatedAt: t0, UpdatedAt: t0, Version: 1,
		Secret: []byte("sealed secret of " + id),
	}
}

func mustCreateWebhook(t *testing.T, ws tokend.WebhookStore, w tokend.Webhook) {
	t.Helper()
	if err := ws.CreateWebhook(t.Context(), w, newEvent("webhook.create", w.AppID, "")); err != nil {
		t.Fatalf("CreateWebhook(%s): %v", w.ID, err)
	}
}

func notification(id string, appID, tokenID string) tokend.Notification {
	return tokend.Notification{
		ID: id, Type: tokend.EventTokenCreated, OccurredAt: t0, AppID: appID, TokenID: tokenID,
		Actor: tokend.EventActor{Type: "user", ID: "u_ada", Name: "Ada"},
		Data:  map[string]any{"id": tokenID, "name": "ci"},
	}
}

// fanTo answers a fan that makes one delivery of every event to each of
// the endpoints.
func fanTo(ids ...string) func(tokend.Notification) ([]tokend.Delivery, error) {
	return func(n tokend.Notification) ([]tokend.Delivery, error) {
		var ds []tokend.Delivery
		for _, id := range ids {
			ds = append(ds, tokend.Delivery{ID: "dlv_" + n.ID + "_" + id, Kind: tokend.DeliveryWebhook, WebhookID: id, CreatedAt: t0})
		}
		return ds, nil
	}
}

// setupDeliveries makes app_shop, endpoint whk_a, and n events dispatched
// to it, and answers the events' ids in order.
func setupDeliveries(t *testing.T, s tokend.Store, ws tokend.WebhookStore, n int) []string {
	t.Helper()
	mustCreateApp(t, s, newApp("app_shop"))
	mustCreateWebhook(t, ws, newWebhook("whk_a", ""))
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("evt_%04d", i)
		Emit(t, s, notification(ids[i], "app_shop", fmt.Sprintf("tok_%04d", i)))
	}
	total := 0
	for {
		got, err := ws.DispatchEvents(t.Context(), 50, fanTo("whk_a"))
		if err != nil {
			t.Fatalf("DispatchEvents: %v", err)
		}
		if got == 0 {
			break
		}
		total += got
	}
	if total != n {
		t.Fatalf("dispatched %d events, want %d", total, n)
	}
	return ids
}

func testWebhookRoundTrip(t *testing.T, s tokend.Store, ws tokend.WebhookStore) {
	ctx := t.Context()
	mustCreateApp(t, s, newApp("app_shop"))
	w := newWebhook("whk_a", "app_shop")
	w.PreviousSecret = []byte("old sealed")
	w.PreviousSecretUntil = ptr(at(24 * time.Hour))
	w.FailingSince = ptr(at(time.Minute))
	w.Events = []string{"*"}
	mustCreateWebhook(t, ws, w)
	got, err := ws.Webhook(ctx, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(w, got); diff != "" {
		t.Errorf("read back (-want +got):\n%s", diff)
	}
	g := newWebhook("whk_g", "")
	g.Events = nil
	mustCreateWebhook(t, ws, g)
	if got, err = ws.Webhook(ctx, g.ID); err != nil || got.AppID != "" || got.Events == nil || got.PreviousSecret != nil || got.PreviousSecretUntil != nil {
		t.Errorf("endpoint of every app: %+v, %v", got, err)
	}
	if _, err := ws.Webhook(ctx, "whk_none"); !errors.Is(err, tokend.ErrNotFound) {
		t.Errorf("missing endpoint: %v, want ErrNotFound", err)
	}
	if err := ws.CreateWebhook(ctx, newWebhook("whk_x", "app_none"), newEvent("webhook.create", "", "")); !errors.Is(err, tokend.ErrNotFound) {
		t.Errorf("endpoint of a missing app: %v, want ErrNotFound", err)
	}
	if err := ws.CreateWebhook(ctx, newWebhook("whk_a", ""), newEvent("webhook.create", "", "")); !errors.Is(err, tokend.ErrConflict) {
		t.Errorf("duplicate id: %v, want ErrConflict", err)
	}
}

func testWebhookList(t *testing.T, s tokend.Store, ws tokend.WebhookStore) {
	ctx := t.Context()
	mustCreateApp(t, s, newApp("app_shop"))
	mustCreateApp(t, s, newApp("app_blog"))
	for i, app := range []string{"app_shop", "", "app_blog", "app_shop"} {
		w := newWebhook(fmt.Sprintf("whk_%d", i), app)
		w.CreatedAt = at(time.Duration(i) * time.Second)
		mustCreateWebhook(t, ws, w)
	}
	ids := func(f tokend.WebhookFilter) []string {
		t.Helper()
		var out []string
		for {
			p, err := ws.Webhooks(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range p.Items {
				out = append(out, w.ID)
			}
			if p.NextCursor == "" {
				return out
			}
			f.Cursor = p.NextCursor
		}
	}
	if got, want := ids(tokend.WebhookFilter{Limit: 1}), []string{"whk_0", "whk_1", "whk_2", "whk_3"}; !cmp.Equal(got, want) {
		t.Errorf("all, a page of one at a time: %v, want %v", got, want)
	}
	if got, want := ids(tokend.WebhookFilter{AppID: "app_shop"}), []string{"whk_0", "whk_1", "whk_3"}; !cmp.Equal(got, want) {
		t.Errorf("app_shop's (and every app's): %v, want %v", got, want)
	}
	if _, err := ws.Webhooks(ctx, tokend.WebhookFilter{Cursor: "garbage"}); err == nil {
		t.Error("a bad cursor was accepted")
	}
}

func testWebhookUpdateDelete(t *testing.T, s tokend.Store, ws tokend.WebhookStore) {
	ctx := t.Context()
	mustCreateWebhook(t, ws, newWebhook("whk_a", ""))
	got, err := ws.UpdateWebhook(ctx, "whk_a", func(w *tokend.Webhook) (tokend.Event, error) {
		w.Enabled, w.DisabledReason, w.URL = false, "failing", "https://other.example.com/"
		w.Version = 99 // the store's to keep
		return newEvent("webhook.disable", "", ""), nil
	})
	if err != nil || got.Version != 2 || got.Enabled || got.DisabledReason != "failing" {
		t.Fatalf("UpdateWebhook: %+v, %v", got, err)
	}
	if read, _ := ws.Webhook(ctx, "whk_a"); !cmp.Equal(read, got) {
		t.Errorf("read after update %+v, want %+v", read, got)
	}
	if _, err := ws.UpdateWebhook(ctx, "whk_a", func(w *tokend.Webhook) (tokend.Event, error) {
		w.URL = "https://changed.example.com/"
		return tokend.Event{}, errBoom
	}); !errors.Is(err, errBoom) {
		t.Errorf("updater's error: %v", err)
	}
	if read, _ := ws.Webhook(ctx, "whk_a"); read.URL != got.URL {
		t.Errorf("a refused update was stored: %s", read.URL)
	}
	if _, err := ws.UpdateWebhook(ctx, "whk_none", func(*tokend.Webhook) (tokend.Event, error) { return tokend.Event{}, nil }); !errors.Is(err, tokend.ErrNotFound) {
		t.Errorf("update of a missing endpoint: %v", err)
	}
	if err := ws.DeleteWebhook(ctx, "whk_a", 1, newEvent("webhook.delete", "", "")); !errors.Is(err, tokend.ErrStale) {
		t.Errorf("delete at an old version: %v, want ErrStale", err)
	}
	if err := ws.DeleteWebhook(ctx, "whk_a", 2, newEvent("webhook.delete", "", "")); err != nil {
		t.Errorf("delete: %v", err)
	}
	if err := ws.DeleteWebhook(ctx, "whk_a", 0, newEvent("webhook.delete", "", "")); !errors.Is(err, tokend.ErrNotFound) {
		t.Errorf("delete again: %v, want ErrNotFound", err)
	}
	evs, err := s.Events(ctx, tokend.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range evs.Items {
		actions = append(actions, e.Action)
	}
	if want := []string{"webhook.delete", "webhook.disable", "webhook.create"}; !cmp.Equal(actions, want) {
		t.Errorf("audit events %v, want %v", actions, want)
	}
}

func testDispatch(t *testing.T, s tokend.Store, ws tokend.WebhookStore) {
	ctx := t.Context()
	mustCreateApp(t, s, newApp("app_shop"))
	mustCreateWebhook(t, ws, newWebhook("whk_a", ""))
	for i := range 3 {
		Emit(t, s, notification(fmt.Sprintf("evt_%d", i), "app_shop", "tok_1"))
	}
	var seen []tokend.Notification
	fan := func(n tokend.Notification) ([]tokend.Delivery, error) {
		seen = append(seen, n)
		return []tokend.Delivery{
			{ID: "dlv_w" + n.ID, Kind: tokend.DeliveryWebhook, WebhookID: "whk_a", CreatedAt: t0},
			{ID: "dlv_m" + n.ID, Kind: tokend.DeliveryMail, Recipient: "ada@example.com", CreatedAt: t0},
		}, nil
	}
	if n, err := ws.DispatchEvents(ctx, 2, fan); err != nil || n != 2 {
		t.Fatalf("DispatchEvents(2): %d, %v", n, err)
	}
	if n, err := ws.DispatchEvents(ctx, 10, fan); err != nil || n != 1 {
		t.Fatalf("DispatchEvents again: %d, %v", n, err)
	}
	if n, err := ws.DispatchEvents(ctx, 10, fan); err != nil || n != 0 {
		t.Fatalf("DispatchEvents of nothing: %d, %v", n, err)
	}
	want := notification("evt_0", "app_shop", "tok_1")
	if len(seen) != 3 || seen[0].Seq == 0 || seen[1].Seq <= seen[0].Seq || seen[2].Seq <= seen[1].Seq {
		t.Fatalf("fan saw %+v, want 3 events in seq order", seen)
	}
	if diff := cmp.Diff(want, seen[0], cmpopts.IgnoreFields(tokend.Notification{}, "Seq")); diff != "" {
		t.Errorf("event as fan saw it (-want +got):\n%s", diff)
	}
	// A fan that fails dispatches nothing.
	Emit(t, s, notification("evt_9", "app_shop", "tok_1"))
	if _, err := ws.DispatchEvents(ctx, 10, func(tokend.Notification) ([]tokend.Delivery, error) { return nil, errBoom }); !errors.Is(err, errBoom) {
		t.Errorf("fan's error: %v", err)
	}
	p, err := ws.Deliveries(ctx, tokend.DeliveryFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 6 {
		t.Fatalf("%d deliveries, want 6", len(p.Items))
	}
	d, err := ws.Delivery(ctx, "dlv_wevt_1")
	if err != nil {
		t.Fatal(err)
	}
	wantD := tokend.Delivery{
		ID: "dlv_wevt_1", Kind: tokend.DeliveryWebhook, WebhookID: "whk_a", EventSeq: seen[1].Seq, EventID: "evt_1",
		EventType: tokend.EventTokenCreated, TokenID: "tok_1", Status: tokend.DeliveryPending, NextAt: ptr(t0), CreatedAt: t0,
	}
	if diff := cmp.Diff(wantD, d, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("delivery (-want +got):\n%s", diff)
	}
	if p, err := ws.Deliveries(ctx, tokend.DeliveryFilter{WebhookID: "whk_a", Status: tokend.DeliveryPending, Limit: 2}); err != nil || len(p.Items) != 2 || p.NextCursor == "" {
		t.Errorf("first page of whk_a's: %d, %q, %v", len(p.Items), p.NextCursor, err)
	} else if p2, err := ws.Deliveries(ctx, tokend.DeliveryFilter{WebhookID: "whk_a", Limit: 2, Cursor: p.NextCursor}); err != nil || len(p2.Items) != 1 || p2.NextCursor != "" {
		t.Errorf("second page of whk_a's: %d, %q, %v", len(p2.Items), p2.NextCursor, err)
	}
}

func testDispatchOnce(t *testing.T, s tokend.Store, ws tokend.WebhookStore) {
	ctx := t.Context()
	mustCreateWebhook(t, ws, newWebhook("whk_a", ""))
	Emit(t, s, notification("evt_1", "", ""))
	fan := func(n tokend.Notification) ([]tokend.Delivery, error) {
		return []tokend.Delivery{
			{ID: "dlv_1", Kind: tokend.DeliveryWebhook, WebhookID: "whk_a", CreatedAt: t0},
			{ID: "dlv_2", Kind: tokend.DeliveryWebhook, WebhookID: "whk_a", CreatedAt: t0},
			{ID: "dlv_3", Kind: tokend.DeliveryMail, Recipient: "ada@example.com", CreatedAt: t0},
			{ID: "dlv_4", Kind: tokend.DeliveryMail, Recipient: "ada@example.com", CreatedAt: t0},
			{ID: "dlv_5", Kind: tokend.DeliveryWebhook, WebhookID: "whk_deleted", CreatedAt: t0},
		}, nil
	}
	if n, err := ws.DispatchEvents(ctx, 10, fan); err != nil || n != 1 {
		t.Fatalf("DispatchEvents: %d, %v", n, err)
	}
	p, err := ws.Deliveries(ctx, tokend.DeliveryFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 2 {
		t.Errorf("%d deliveries, want one to the endpoint and one to the address: %+v", len(p.Items), p.Items)
	}
}

func testDispatchConcurrent(t *testing.T, s tokend.Store, ws tokend.WebhookStore) {
	DispatchRace(t, s, slices.Repeat([]tokend.WebhookStore{ws}, 8))
}

// DispatchRace has one goroutine per store (several may be one store)
// dispatch 60 events of s's outbox at once: each event is taken once and
// gets its delivery once. Dialects run it with several instances on one
// database.
func DispatchRace(t *testing.T, s tokend.Store, stores []tokend.WebhookStore) {
	t.Helper()
	mustCreateWebhook(t, stores[0], newWebhook("whk_a", ""))
	const events = 60
	for i := range events {
		Emit(t, s, notification(fmt.Sprintf("evt_%03d", i), "", ""))
	}
	var (
		mu    sync.Mutex
		total int
		wg    sync.WaitGroup
	)
	errs := make(chan error, len(stores))
	for _, ws := range stores {
		wg.Go(func() {
			for {
				n, err := ws.DispatchEvents(t.Context(), 5, fanTo("whk_a"))
				if err != nil {
					errs <- err
					return
				}
				if n == 0 {
					return
				}
				mu.Lock()
				total += n
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("DispatchEvents: %v", err)
	}
	if total != events {
		t.Errorf("events taken %d times, want %d", total, events)
	}
	ids := map[string]bool{}
	f := tokend.DeliveryFilter{Limit: tokend.MaxPageSize}
	for {
		p, err := stores[0].Deliveries(t.Context(), f)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range p.Items {
			if ids[d.EventID] {
				t.Errorf("event %s delivered twice", d.EventID)
			}
			ids[d.EventID] = true
		}
		if f.Cursor = p.NextCursor; f.Cursor == "" {
			break
		}
	}
	if len(ids) != events {
		t.Errorf("%d events have a delivery, want %d", len(ids), events)
	}
}

func testClaimLease(t *testing.T, s tokend.Store, ws tokend.WebhookStore) {
	ctx := t.Context()
	ids := setupDeliveries(t, s, ws, 3)
	if got, err := ws.ClaimDeliveries(ctx, at(-time.Second), time.Minute, 10); err != nil || len(got) != 0 {
		t.Fatalf("claim before due: %d, %v", len(got), err)
	}
	got, err := ws.ClaimDeliveries(ctx, t0, time.Minute, 2)
	if err != nil || len(got) != 2 {
		t.Fatalf("claim 2: %d, %v", len(got), err)
	}
	for i, c := range got {
		if c.Event.ID != ids[i] || c.Delivery.EventID != ids[i] || c.Delivery.WebhookID != "whk_a" || c.Webhook != nil || c.Event.Data["name"] != "ci" {
			t.Errorf("claimed %d: %+v", i, c)
		}
	}
	rest, err := ws.ClaimDeliveries(ctx, at(time.Second), time.Minute, 10)
	if err != nil || len(rest) != 1 || rest[0].Event.ID != ids[2] {
		t.Fatalf("claim the rest: %+v, %v", rest, err)
	}
	if again, err := ws.ClaimDeliveries(ctx, at(59*time.Second), time.Minute, 10); err != nil || len(again) != 0 {
		t.Errorf("claimed while leased: %d, %v", len(again), err)
	}
	lapsed, err := ws.ClaimDeliveries(ctx, at(time.Minute), time.Minute, 10)
	if err != nil || len(lapsed) != 2 || lapsed[0].Event.ID != ids[0] {
		t.Errorf("lapsed leases: %d, %v", len(lapsed), err)
	}
}

func testClaimConcurrent(t *testing.T, s tokend.Store, ws tokend.WebhookStore) {
	ClaimRace(t, s, slices.Repeat([]tokend.WebhookStore{ws}, 8))
}

// ClaimRace has one goroutine per store (several may be one store) claim
// 40 due deliveries at once, under a lease that outlasts the test: each is
// claimed once, never by two at a time. Dialects run it with several
// instances on one database.
func ClaimRace(t *testing.T, s tokend.Store, stores []tokend.WebhookStore) {
	t.Helper()
	const n = 40
	setupDeliveries(t, s, stores[0], n)
	var (
		mu   sync.Mutex
		held = map[string]int{}
		wg   sync.WaitGroup
	)
	errs := make(chan error, len(stores))
	for _, ws := range stores {
		wg.Go(func() {
			for {
				got, err := ws.ClaimDeliveries(t.Context(), t0, time.Hour, 3)
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, c := range got {
					held[c.Delivery.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("ClaimDeliveries: %v", err)
	}
	if len(held) != n {
		t.Errorf("%d deliveries claimed, want %d", len(held), n)
	}
	for id, k := range held {
		if k != 1 {
			t.Errorf("%s claimed %d times", id, k)
		}
	}
}

func testFinishAttempt(t *testing.T, s tokend.Store, ws tokend.WebhookStore) {
	ctx := t.Context()
	setupDeliveries(t, s, ws, 2)
	got, err := ws.ClaimDeliveries(ctx, t0, time.Minute, 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("claim: %d, %v", len(got), err)
	}
	fail := got[0].Delivery
	next := at(5 * time.Second)
	fail.Status, fail.NextAt, fail.LastStatus, fail.LastError = tokend.DeliveryPending, &next, ptr(503), "HTTP 503"
	a := tokend.DeliveryAttempt{N: 1, At: at(time.Second), HTTPStatus: ptr(503), DurationMS: 12, Error: "HTTP 503", NextRetryAt: &next}
	if err := ws.FinishAttempt(ctx, fail, a); err != nil {
		t.Fatal(err)
	}
	w, _ := ws.Webhook(ctx, "whk_a")
	if w.FailingSince == nil || !w.FailingSince.Equal(at(time.Second)) {
		t.Errorf("failing_since after a failure: %v", w.FailingSince)
	}
	d, err := ws.Delivery(ctx, fail.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Attempts != 1 || d.Status != tokend.DeliveryPending || !d.NextAt.Equal(next) || *d.LastStatus != 503 || len(d.History) != 1 {
		t.Errorf("after a failed attempt: %+v", d)
	} else if diff := cmp.Diff(a, d.History[0]); diff != "" {
		t.Errorf("attempt (-want +got):\n%s", diff)
	}
	// The lease is released: due again at next.
	if c, err := ws.ClaimDeliveries(ctx, next, time.Minute, 10); err != nil || len(c) != 1 || c[0].Delivery.ID != fail.ID {
		t.Errorf("claim after a released lease: %+v, %v", c, err)
	}
	// A second failure keeps the first failure's time.
	a2 := tokend.DeliveryAttempt{N: 2, At: at(10 * time.Second), DurationMS: 10000, Error: "timeout"}
	fail.Status, fail.NextAt, fail.LastStatus, fail.LastError = tokend.DeliveryFailed, nil, nil, "timeout"
	if err := ws.FinishAttempt(ctx, fail, a2); err != nil {
		t.Fatal(err)
	}
	if w, _ := ws.Webhook(ctx, "whk_a"); w.FailingSince == nil || !w.FailingSince.Equal(at(time.Second)) {
		t.Errorf("failing_since after a second failure: %v", w.FailingSince)
	}
	ok := got[1].Delivery
	ok.Status, ok.NextAt, ok.LastStatus, ok.DeliveredAt = tokend.DeliveryDelivered, nil, ptr(204), ptr(at(11*time.Second))
	if err := ws.FinishAttempt(ctx, ok, tokend.DeliveryAttempt{N: 1, At: at(11 * time.Second), HTTPStatus: ptr(204)}); err != nil {
		t.Fatal(err)
	}
	if w, _ := ws.Webhook(ctx, "whk_a"); w.FailingSince != nil {
		t.Errorf("failing_since after a success: %v", w.FailingSince)
	}
	if d, _ := ws.Delivery(ctx, ok.ID); d.Status != tokend.DeliveryDelivered || d.DeliveredAt == nil || d.NextAt != nil {
		t.Errorf("delivered: %+v", d)
	}
	if c, err := ws.ClaimDeliveries(ctx, at(time.Hour), time.Minute, 10); err != nil || len(c) != 0 {
		t.Errorf("claimed a finished delivery: %+v, %v", c, err)
	}
	if err := ws.FinishAttempt(ctx, tokend.Delivery{ID: "dlv_none", Status: tokend.DeliveryDelivered}, tokend.DeliveryAttempt{N: 1, At: t0}); !errors.Is(err, tokend.ErrNotFound) {
		t.Errorf("finish of a missing delivery: %v", err)
	}
}

// A worker whose lease lapsed mid-attempt while another claimed the
// delivery and recorded its attempt: the first one's late finish must not
// undo the second's (a delivered delivery made pending or failed again,
// the endpoint marked failing), and answers ErrStale. A finish after a
// lapse that no one else claimed is still recorded.
func testFinishStale(t *testing.T, s tokend.Store, ws tokend.WebhookStore) {
	ctx := t.Context()
	setupDeliveries(t, s, ws, 2)
	first, err := ws.ClaimDeliveries(ctx, t0, time.Minute, 10)
	if err != nil || len(first) != 2 {
		t.Fatalf("claim: %d, %v", len(first), err)
	}
	second, err := ws.ClaimDeliveries(ctx, at(2*time.Minute), time.Minute, 1)
	if err != nil || len(second) != 1 || second[0].Delivery.ID != first[0].Delivery.ID {
		t.Fatalf("claim after the lease lapsed: %+v, %v", second, err)
	}
	ok := second[0].Delivery
	ok.Status, ok.NextAt, ok.LastStatus, ok.DeliveredAt = tokend.DeliveryDelivered, nil, ptr(204), ptr(at(2*time.Minute))
	if err := ws.FinishAttempt(ctx, ok, tokend.DeliveryAttempt{N: 1, At: at(2 * time.Minute), HTTPStatus: ptr(204)}); err != nil {
		t.Fatal(err)
	}
	stale := first[0].Delivery
	next := at(3 * time.Minute)
	stale.Status, stale.NextAt, stale.LastStatus, stale.LastError = tokend.DeliveryPending, &next, ptr(503), "HTTP 503"
	err = ws.FinishAttempt(ctx, stale, tokend.DeliveryAttempt{N: 1, At: at(150 * time.Second), HTTPStatus: ptr(503), Error: "HTTP 503", NextRetryAt: &next})
	if !errors.Is(err, tokend.ErrStale) {
		t.Errorf("late finish of a lapsed lease: %v, want ErrStale", err)
	}
	d, err := ws.Delivery(ctx, ok.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != tokend.DeliveryDelivered || d.DeliveredAt == nil || d.NextAt != nil || d.Attempts != 1 || *d.LastStatus != 204 || len(d.History) != 1 {
		t.Errorf("a stale finish overwrote the delivered state: %+v", d)
	}
	if w, _ := ws.Webhook(ctx, "whk_a"); w.FailingSince != nil {
		t.Errorf("a stale failure marked the endpoint failing since %v", w.FailingSince)
	}
	// The other delivery's lease lapsed too, but no one claimed it since.
	late := first[1].Delivery
	late.Status, late.LastStatus, late.DeliveredAt = tokend.DeliveryDelivered, ptr(200), ptr(at(3*time.Minute))
	if err := ws.FinishAttempt(ctx, late, tokend.DeliveryAttempt{N: 1, At: at(3 * time.Minute), HTTPStatus: ptr(200)}); err != nil {
		t.Errorf("finish after an unclaimed lapse: %v", err)
	}
	if d, _ := ws.Delivery(ctx, late.ID); d.Status != tokend.DeliveryDelivered {
		t.Errorf("finish after an unclaimed lapse not recorded: %+v", d)
	}
}

func testRetryDelivery(t *testing.T, s tokend.Store, ws tokend.WebhookStore) {
	ctx := t.Context()
	setupDeliveries(t, s, ws, 1)
	c, err := ws.ClaimDeliveries(ctx, t0, time.Minute, 1)
	if err != nil || len(c) != 1 {
		t.Fatal(c, err)
	}
	d := c[0].Delivery
	d.Status, d.NextAt, d.LastError = tokend.DeliveryFailed, nil, "gave up"
	if err := ws.FinishAttempt(ctx, d, tokend.DeliveryAttempt{N: 1, At: t0, Error: "gave up"}); err != nil {
		t.Fatal(err)
	}
	got, err := ws.RetryDelivery(ctx, d.ID, at(time.Hour), newEvent("delivery.retry", "", ""))
	if err != nil || got.Status != tokend.DeliveryPending || !got.NextAt.Equal(at(time.Hour)) || got.Attempts != 1 || len(got.History) != 1 {
		t.Fatalf("RetryDelivery: %+v, %v", got, err)
	}
	if c, err := ws.ClaimDeliveries(ctx, at(time.Hour), time.Minute, 1); err != nil || len(c) != 1 {
		t.Errorf("claim after retry: %+v, %v", c, err)
	}
	// Held by a worker: a retry now would let a second worker claim it
	// and send it twice.
	if _, err := ws.RetryDelivery(ctx, d.ID, at(time.Hour+time.Second), newEvent("delivery.retry", "", "")); !errors.Is(err, tokend.ErrConflict) {
		t.Errorf("retry of a leased delivery: %v, want a conflict", err)
	}
	if c, err := ws.ClaimDeliveries(ctx, at(time.Hour+time.Second), time.Minute, 1); err != nil || len(c) != 0 {
		t.Errorf("a leased delivery claimed again after a refused retry: %+v, %v", c, err)
	}
	if _, err := ws.RetryDelivery(ctx, d.ID, at(time.Hour+2*time.Minute), newEvent("delivery.retry", "", "")); err != nil {
		t.Errorf("retry once the lease lapsed: %v", err)
	}
	if _, err := ws.RetryDelivery(ctx, "dlv_none", t0, newEvent("delivery.retry", "", "")); !errors.Is(err, tokend.ErrNotFound) {
		t.Errorf("retry of a missing delivery: %v", err)
	}
}

func testDeleteWebhookDeliveries(t *testing.T, s tokend.Store, ws tokend.WebhookStore) {
	ctx := t.Context()
	setupDeliveries(t, s, ws, 2)
	if err := ws.DeleteWebhook(ctx, "whk_a", 0, newEvent("webhook.delete", "", "")); err != nil {
		t.Fatal(err)
	}
	if p, err := ws.Deliveries(ctx, tokend.DeliveryFilter{}); err != nil || len(p.Items) != 0 {
		t.Errorf("deliveries after delete: %+v, %v", p.Items, err)
	}
	if c, err := ws.ClaimDeliveries(ctx, t0, time.Minute, 10); err != nil || len(c) != 0 {
		t.Errorf("claimed after delete: %+v, %v", c, err)
	}
}
