package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/sqlite"
	"github.com/tokend/tokend/internal/storetest"
	"github.com/tokend/tokend/internal/testclock"
)

var t0 = time.Date(2026, time.March, 14, 9, 26, 53, 0, time.UTC)

// env is a store, a receiver and a dispatcher on a
// test clock.
type env struct {
	t       testing.TB
	store   *sqlite.Store
	secrets *Secrets
	clock   *testclock.Clock
	d       *Dispatcher
	mu      sync.Mutex
	got     []*http.Request
	bodies  [][]byte
	answer  func(n int) int // status of the n-th request (from 1)
	url     string
	mailer  *fakeMailer
	slow    chan struct{} // a request to /slow waits until it is closed
}

func newEnv(t testing.TB) *env {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokend.db")
	st, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	secrets, _ := NewSecrets([]byte("test pepper"))
	e := &env{t: t, store: st, secrets: secrets, clock: testclock.New(t0), answer: func(int) int { return 200 }, mailer: &fakeMailer{}, slow: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/slow" {
			<-e.slow
		}
		e.mu.Lock()
		e.got = append(e.got, r)
		e.bodies = append(e.bodies, body)
		n := len(e.got)
		e.mu.Unlock()
		code := e.answer(n)
		w.WriteHeader(code)
		if code >= 400 {
			fmt.Fprintf(w, "down\x00 for \xff maintenance \u202e%s", strings.Repeat("x", 5000))
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { closeOnce(e.slow) })
	e.url = srv.URL + "/hook"
	e.d = New(Options{
		Store: st, Secrets: secrets, Mailer: e.mailer, AllowHTTP: true, AllowPrivate: true,
		Now: e.clock.Now, Version: "1.2.3",
	})
	return e
}

// hook creates an endpoint and answers its key.
func (e *env) hook(id string, mod func(w *tokend.Webhook)) []byte {
	e.t.Helper()
	shown, sealed, err := e.secrets.NewSecret()
	if err != nil {
		e.t.Fatal(err)
	}
	w := tokend.Webhook{ID: id, URL: e.url, Events: []string{"*"}, Enabled: true, Secret: sealed, CreatedAt: t0, UpdatedAt: t0, Version: 1}
	if mod != nil {
		mod(&w)
	}
	if err := e.store.CreateWebhook(e.t.Context(), w, tokend.Event{Time: t0, Actor: "system", Action: "webhook.create"}); err != nil {
		e.t.Fatal(err)
	}
	key, _ := ParseSecret(shown)
	return key
}

// emit writes an event to the outbox, as a change does.
func (e *env) emit(id, typ string, data map[string]any) {
	e.t.Helper()
	if data == nil {
		data = map[string]any{"id": "tok_1"}
	}
	storetest.Emit(e.t, e.store, tokend.Notification{
		ID: id, Type: typ, OccurredAt: t0, AppID: "app_shop", TokenID: "tok_1",
		Actor: tokend.EventActor{Type: "user", ID: "u_ada", Name: "Ada"}, Data: data,
	})
}

func (e *env) requests() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.got)
}

func (e *env) deliveries() []tokend.Delivery {
	e.t.Helper()
	p, err := e.store.Deliveries(e.t.Context(), tokend.DeliveryFilter{Limit: 100})
	if err != nil {
		e.t.Fatal(err)
	}
	return p.Items
}

// verify checks a request as a receiver would, with key.
func verify(r *http.Request, body, key []byte) error {
	id, ts := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp")
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%s.%s", id, ts, body)
	want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	for _, s := range strings.Fields(r.Header.Get("webhook-signature")) {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return errors.New("no signature matches")
}

func TestDeliverySigned(t *testing.T) {
	e := newEnv(t)
	key := e.hook("whk_a", nil)
	e.emit("evt_1", tokend.EventTokenCreated, map[string]any{"id": "tok_1", "name": "ci"})
	e.d.Round(t.Context())
	if e.requests() != 1 {
		t.Fatalf("%d requests, want 1", e.requests())
	}
	r, body := e.got[0], e.bodies[0]
	if err := verify(r, body, key); err != nil {
		t.Error(err)
	}
	if r.Header.Get("webhook-id") != "evt_1" || r.Header.Get("webhook-timestamp") != strconv.FormatInt(t0.Unix(), 10) {
		t.Errorf("headers %v", r.Header)
	}
	if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("User-Agent") != "tokend/1.2.3" || r.Method != http.MethodPost {
		t.Errorf("%s with headers %v", r.Method, r.Header)
	}
	var n tokend.Notification
	if err := json.Unmarshal(body, &n); err != nil || n.ID != "evt_1" || n.Type != tokend.EventTokenCreated || n.Data["name"] != "ci" || n.Actor.ID != "u_ada" {
		t.Errorf("body %s: %+v, %v", body, n, err)
	}
	ds := e.deliveries()
	if len(ds) != 1 || ds[0].Status != tokend.DeliveryDelivered || ds[0].Attempts != 1 || *ds[0].LastStatus != 200 {
		t.Errorf("deliveries %+v", ds)
	}
	// Nothing more to do.
	e.d.Round(t.Context())
	if e.requests() != 1 || e.d.Deliveries("delivered") != 1 {
		t.Errorf("%d requests, %d delivered", e.requests(), e.d.Deliveries("delivered"))
	}
}

func TestDeliveryRetriedOnScheduleThenDelivered(t *testing.T) {
	e := newEnv(t)
	e.hook("whk_a", nil)
	e.answer = func(n int) int {
		if n <= 2 {
			return 503
		}
		return 204
	}
	e.emit("evt_1", tokend.EventTokenRevoked, nil)
	e.d.Round(t.Context())
	d := e.deliveries()[0]
	if d.Status != tokend.DeliveryPending || d.NextAt == nil || d.LastStatus == nil || *d.LastStatus != 503 {
		t.Fatalf("after a 503: %+v", d)
	}
	if wait := d.NextAt.Sub(t0); wait < 4*time.Second || wait > 6*time.Second {
		t.Errorf("first retry after %v, want 5s ±20%%", wait)
	}
	if !strings.HasPrefix(d.LastError, "HTTP 503: down") || len(d.LastError) > maxError || !utf8.ValidString(d.LastError) || strings.ContainsAny(d.LastError, "\x00\u202e") {
		t.Errorf("stored error %q", d.LastError)
	}
	// Not due yet.
	e.clock.Advance(3 * time.Second)
	e.d.Round(t.Context())
	if e.requests() != 1 {
		t.Fatalf("retried before due: %d requests", e.requests())
	}
	e.clock.Advance(4 * time.Second)
	e.d.Round(t.Context())
	d = e.deliveries()[0]
	if e.requests() != 2 || d.Attempts != 2 || d.NextAt.Sub(e.clock.Now()) < 4*time.Minute {
		t.Fatalf("second attempt: %d requests, %+v", e.requests(), d)
	}
	e.clock.Set(*d.NextAt)
	e.d.Round(t.Context())
	full, err := e.store.Delivery(t.Context(), d.ID)
	if err != nil || full.Status != tokend.DeliveryDelivered || len(full.History) != 3 || full.History[2].NextRetryAt != nil || full.History[0].NextRetryAt == nil {
		t.Fatalf("after success: %+v, %v", full, err)
	}
	if e.got[0].Header.Get("webhook-id") != e.got[2].Header.Get("webhook-id") {
		t.Error("webhook-id changed between retries")
	}
	if w, _ := e.store.Webhook(t.Context(), "whk_a"); w.FailingSince != nil {
		t.Errorf("failing_since after a success: %v", w.FailingSince)
	}
}

// An endpoint that refuses connections fails the attempt, without a
// status, and the delivery waits for its retry.
func TestDeliveryToAClosedEndpoint(t *testing.T) {
	e := newEnv(t)
	e.hook("whk_a", func(w *tokend.Webhook) { w.URL = "http://127.0.0.1:1/hook" })
	e.emit("evt_1", tokend.EventTokenCreated, nil)
	e.d.Round(t.Context())
	d := e.deliveries()[0]
	if d.Status != tokend.DeliveryPending || d.LastStatus != nil || !strings.Contains(d.LastError, "refused") || d.NextAt == nil {
		t.Errorf("after a refused connection: %+v", d)
	}
	if e.d.Deliveries("retry") != 1 {
		t.Errorf("retry count %d", e.d.Deliveries("retry"))
	}
}

func TestDeliveryGivesUpAndEndpointIsDisabled(t *testing.T) {
	e := newEnv(t)
	e.hook("whk_a", nil)
	e.answer = func(int) int { return 500 }
	e.emit("evt_1", tokend.EventTokenCreated, nil)
	for range 40 {
		e.d.Round(t.Context())
		d := e.deliveries()[0]
		if d.Status != tokend.DeliveryPending {
			break
		}
		e.clock.Set(*d.NextAt)
	}
	d := e.deliveries()[0]
	if d.Status != tokend.DeliveryFailed || e.clock.Now().Sub(t0) > DefaultGiveUpAfter || e.clock.Now().Sub(t0) < DefaultGiveUpAfter-12*time.Hour {
		t.Fatalf("after %v: %+v", e.clock.Now().Sub(t0), d)
	}
	if w, _ := e.store.Webhook(t.Context(), "whk_a"); !w.Enabled {
		t.Fatal("disabled before 5 days of failures")
	}
	// Five days after the first failure, the next failure disables it.
	e.clock.Set(t0.Add(DefaultDisableAfter))
	e.emit("evt_2", tokend.EventTokenCreated, nil)
	e.d.Round(t.Context())
	w, _ := e.store.Webhook(t.Context(), "whk_a")
	if w.Enabled || w.DisabledReason != "failing" || w.Version != 2 {
		t.Fatalf("after 5 days of failures: %+v", w)
	}
	evs, _ := e.store.Events(t.Context(), tokend.EventFilter{Action: ActionWebhookDisable})
	if len(evs.Items) != 1 || evs.Items[0].Actor != "system" {
		t.Errorf("audit events %+v", evs.Items)
	}
	// A disabled endpoint gets nothing more.
	before := e.requests()
	e.emit("evt_3", tokend.EventTokenCreated, nil)
	e.d.Round(t.Context())
	if e.requests() != before {
		t.Error("a disabled endpoint got an event")
	}
}

func TestSecretRotationSignsWithBoth(t *testing.T) {
	e := newEnv(t)
	_, oldSealed, _ := e.secrets.NewSecret()
	var oldKey []byte
	oldKey, _ = e.secrets.Open(oldSealed)
	newKey := e.hook("whk_a", func(w *tokend.Webhook) {
		w.PreviousSecret = oldSealed
		until := t0.Add(24 * time.Hour)
		w.PreviousSecretUntil = &until
	})
	e.emit("evt_1", tokend.EventTokenRotated, nil)
	e.d.Round(t.Context())
	if len(strings.Fields(e.got[0].Header.Get("webhook-signature"))) != 2 {
		t.Fatalf("signatures %q", e.got[0].Header.Get("webhook-signature"))
	}
	for _, k := range [][]byte{newKey, oldKey} {
		if err := verify(e.got[0], e.bodies[0], k); err != nil {
			t.Error(err)
		}
	}
	// After the 24 hours, the new key alone.
	e.clock.Set(t0.Add(24 * time.Hour))
	e.emit("evt_2", tokend.EventTokenRotated, nil)
	e.d.Round(t.Context())
	if len(strings.Fields(e.got[1].Header.Get("webhook-signature"))) != 1 || verify(e.got[1], e.bodies[1], newKey) != nil {
		t.Errorf("after the previous secret expired: %q", e.got[1].Header.Get("webhook-signature"))
	}
}

func TestFanOut(t *testing.T) {
	e := newEnv(t)
	mk := func(id string) tokend.Webhook {
		w, _ := e.store.Webhook(t.Context(), id)
		return w
	}
	e.store.CreateApp(t.Context(), tokend.App{ID: "app_shop", Name: "Shop", TokenPrefix: "shop", CreatedAt: t0, UpdatedAt: t0, Version: 1}, tokend.Event{Time: t0, Action: "app.create"})
	e.store.CreateApp(t.Context(), tokend.App{ID: "app_blog", Name: "Blog", TokenPrefix: "blog", CreatedAt: t0, UpdatedAt: t0, Version: 1}, tokend.Event{Time: t0, Action: "app.create"})
	e.hook("whk_all", nil)
	e.hook("whk_shop_created", func(w *tokend.Webhook) { w.AppID, w.Events = "app_shop", []string{tokend.EventTokenCreated} })
	e.hook("whk_blog", func(w *tokend.Webhook) { w.AppID = "app_blog" })
	e.hook("whk_off", func(w *tokend.Webhook) { w.Enabled = false })
	n := tokend.Notification{ID: "evt_1", Type: tokend.EventTokenCreated, AppID: "app_shop"}
	for id, want := range map[string]bool{"whk_all": true, "whk_shop_created": true, "whk_blog": false, "whk_off": false} {
		if got := Hears(mk(id), n); got != want {
			t.Errorf("%s hears token.created of app_shop: %v, want %v", id, got, want)
		}
	}
	n.Type = tokend.EventTokenRevoked
	if Hears(mk("whk_shop_created"), n) || !Hears(mk("whk_all"), n) {
		t.Error("subscription to types not kept")
	}
	// A test event goes to the endpoint it names, and not even to that
	// one once it is disabled (the service refuses the test then; one
	// disabled meanwhile gets nothing either).
	test := tokend.Notification{ID: "evt_2", Type: tokend.EventWebhookTest, Data: map[string]any{"webhook_id": "whk_shop_created"}}
	for id, want := range map[string]bool{"whk_all": false, "whk_shop_created": true} {
		if got := Hears(mk(id), test); got != want {
			t.Errorf("%s hears the test of whk_shop_created: %v, want %v", id, got, want)
		}
	}
	test.Data["webhook_id"] = "whk_off"
	if Hears(mk("whk_off"), test) {
		t.Error("a disabled endpoint hears its test event")
	}
}

type fakeMailer struct {
	mu   sync.Mutex
	sent []string
	fail int
}

func (m *fakeMailer) Recipients(_ context.Context, n tokend.Notification) ([]string, error) {
	return []string{"ada@example.com", "bob@example.com", "ada@example.com"}, nil
}

func (m *fakeMailer) Send(_ context.Context, to string, n tokend.Notification) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail > 0 {
		m.fail--
		return errors.New("421 try later")
	}
	m.sent = append(m.sent, to+" "+n.Type)
	return nil
}

func TestMailDeliveriesRetried(t *testing.T) {
	e := newEnv(t)
	e.mailer.fail = 1
	e.emit("evt_1", tokend.EventTokenExpiring, nil)
	e.emit("evt_2", tokend.EventTokenCreated, nil) // not mailed
	e.d.Round(t.Context())
	ds := e.deliveries()
	if len(ds) != 2 {
		t.Fatalf("%d deliveries, want one per address: %+v", len(ds), ds)
	}
	e.clock.Advance(10 * time.Second)
	e.d.Round(t.Context())
	e.mailer.mu.Lock()
	defer e.mailer.mu.Unlock()
	if len(e.mailer.sent) != 2 {
		t.Errorf("mailed %v", e.mailer.sent)
	}
}

// Deliveries of one endpoint are attempted in event order.
func TestDeliveriesInEventOrder(t *testing.T) {
	e := newEnv(t)
	e.d.o.Lease = 11 * time.Second // the shortest there is: still attempts
	e.hook("whk_a", nil)
	for i := range 30 {
		e.emit(fmt.Sprintf("evt_%02d", i), tokend.EventTokenUpdated, nil)
	}
	e.d.Round(t.Context())
	if e.requests() != 30 {
		t.Fatalf("%d requests", e.requests())
	}
	for i, r := range e.got {
		if got, want := r.Header.Get("webhook-id"), fmt.Sprintf("evt_%02d", i); got != want {
			t.Errorf("request %d is %s, want %s", i, got, want)
		}
	}
}

func TestCleanError(t *testing.T) {
	for _, in := range []string{"a\x00b", "\xff\xfe", "bidi \u202e override", strings.Repeat("é", 2000), "line\nbreak"} {
		got := cleanError(in)
		if !utf8.ValidString(got) || len(got) > maxError || strings.ContainsAny(got, "\x00\n\u202e") {
			t.Errorf("cleanError(%q) = %q", in, got)
		}
	}
}

func TestRunStopsAndNudges(t *testing.T) {
	e := newEnv(t)
	e.d.o.PollInterval = time.Hour
	e.hook("whk_a", nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- e.d.Run(ctx) }()
	e.emit("evt_1", tokend.EventTokenCreated, nil)
	deadline := time.Now().Add(10 * time.Second)
	e.d.Nudge()
	for e.requests() == 0 && time.Now().Before(deadline) {
		<-time.After(5 * time.Millisecond) // poll, with a deadline
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if e.requests() != 1 {
		t.Errorf("%d requests after a nudge", e.requests())
	}
}

// BenchmarkDeliver measures events dispatched, signed and delivered to one
// local endpoint, on SQLite, per second.
func BenchmarkDeliver(b *testing.B) {
	e := newEnv(b)
	e.hook("whk_a", nil)
	for i := range b.N {
		e.emit(fmt.Sprintf("evt_%08d", i), tokend.EventTokenUpdated, nil)
	}
	b.ResetTimer()
	for e.requests() < b.N {
		e.d.Round(b.Context())
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func TestBudgetLeavesTheLeaseAnAttempt(t *testing.T) {
	for _, c := range []struct {
		lease time.Duration
		kind  string
		want  time.Duration
	}{
		{60 * time.Second, tokend.DeliveryWebhook, 45 * time.Second},
		{60 * time.Second, tokend.DeliveryMail, 25 * time.Second},
		{11 * time.Second, tokend.DeliveryWebhook, 500 * time.Millisecond},
		{11 * time.Second, tokend.DeliveryMail, 0},
	} {
		if got := budget(c.lease, c.kind); got != c.want {
			t.Errorf("budget(%s, %s) = %s, want %s", c.lease, c.kind, got, c.want)
		}
	}
}

func closeOnce(c chan struct{}) {
	select {
	case <-c:
	default:
		close(c)
	}
}

// Endpoints that hold their deliveries open hold back no other one, even
// when there are more of them than a small pool of workers (8 once).
func TestSlowEndpointHoldsBackNoOther(t *testing.T) {
	const slow = 12
	e := newEnv(t)
	e.d.o.PollInterval = 10 * time.Millisecond
	for i := range slow {
		e.hook(fmt.Sprintf("whk_slow%d", i), func(w *tokend.Webhook) { w.URL = strings.TrimSuffix(e.url, "/hook") + "/slow" })
	}
	e.hook("whk_fast", nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- e.d.Run(ctx) }()
	e.emit("evt_0", tokend.EventTokenCreated, nil)
	deadline := time.Now().Add(10 * time.Second)
	for e.requests() < 1 && time.Now().Before(deadline) {
		<-time.After(5 * time.Millisecond) // poll, with a deadline
	}
	// The slow endpoints hold evt_0 open; later events still reach the
	// fast one.
	for i := 1; i < 5; i++ {
		e.emit(fmt.Sprintf("evt_%d", i), tokend.EventTokenCreated, nil)
	}
	for e.requests() < 5 && time.Now().Before(deadline) {
		<-time.After(5 * time.Millisecond) // poll, with a deadline
	}
	if e.requests() != 5 {
		t.Errorf("%d requests answered while %d slow endpoints held one each, want the fast one's 5", e.requests(), slow)
	}
	closeOnce(e.slow)
	want := 5 * (slow + 1)
	for e.requests() < want && time.Now().Before(deadline) {
		<-time.After(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if e.requests() != want {
		t.Errorf("%d requests in all, want %d", e.requests(), want)
	}
}

// racingStore commits, once, an endpoint and then an event in the window
// between the dispatcher's reading of the endpoints and its taking of the
// outbox: as if a user created the endpoint, then a token, just then.
type racingStore struct {
	*sqlite.Store
	once sync.Once
	race func()
}

func (s *racingStore) DispatchEvents(ctx context.Context, limit int, fan func(tokend.Notification) ([]tokend.Delivery, error)) (int, error) {
	s.once.Do(s.race)
	return s.Store.DispatchEvents(ctx, limit, fan)
}

// An event that happened after an endpoint was created reaches it, even
// when the endpoint was created while the dispatcher was between reading
// the endpoints and taking the outbox.
func TestEndpointCreatedJustBeforeAnEventHearsIt(t *testing.T) {
	e := newEnv(t)
	e.hook("whk_a", nil)
	rs := &racingStore{Store: e.store, race: func() {
		e.hook("whk_new", nil)
		e.emit("evt_after", tokend.EventTokenCreated, nil)
	}}
	e.d.o.Store = rs
	e.d.Round(t.Context())
	got := map[string]bool{}
	for _, d := range e.deliveries() {
		got[d.WebhookID+" "+d.EventID] = true
	}
	if !got["whk_a evt_after"] || !got["whk_new evt_after"] {
		t.Errorf("deliveries %v; want evt_after to reach whk_a and whk_new", got)
	}
}

// A delivery claimed while its endpoint was enabled, and attempted after
// the endpoint was disabled or pointed elsewhere, goes by the endpoint as
// it is at the attempt: nothing to a disabled one, and the new address of
// a moved one.
func TestAttemptReadsTheEndpointAgain(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t)
	e.hook("whk_off", nil)
	e.hook("whk_moved", nil)
	e.emit("evt_1", tokend.EventTokenCreated, nil)
	e.d.dispatchAll(ctx)
	claimed, err := e.store.ClaimDeliveries(ctx, t0, time.Minute, 10)
	if err != nil || len(claimed) != 2 {
		t.Fatal(claimed, err)
	}
	// Hand the attempts the endpoints as they were at the claim: what a
	// dispatcher that did not read them again would go by.
	for i, c := range claimed {
		w, err := e.store.Webhook(ctx, c.Delivery.WebhookID)
		if err != nil {
			t.Fatal(err)
		}
		claimed[i].Webhook = &w
	}
	edit := func(id string, fn func(w *tokend.Webhook)) {
		_, err := e.store.UpdateWebhook(ctx, id, func(w *tokend.Webhook) (tokend.Event, error) {
			fn(w)
			return tokend.Event{Time: t0, Actor: "system", Action: "webhook.update"}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	edit("whk_off", func(w *tokend.Webhook) { w.Enabled = false })
	edit("whk_moved", func(w *tokend.Webhook) { w.URL = strings.TrimSuffix(e.url, "/hook") + "/moved" })
	for _, c := range claimed {
		e.d.attempt(ctx, c) // c.Webhook is the copy read before the edits
	}
	e.mu.Lock()
	var paths []string
	for _, r := range e.got {
		paths = append(paths, r.URL.Path)
	}
	e.mu.Unlock()
	if !slices.Equal(paths, []string{"/moved"}) {
		t.Errorf("requests to %v, want only the moved endpoint's new address", paths)
	}
	for _, d := range e.deliveries() {
		if d.WebhookID == "whk_off" && (d.Status != tokend.DeliveryFailed || d.LastError != "endpoint disabled; not sent") {
			t.Errorf("the disabled endpoint's delivery: %+v", d)
		}
	}
}
