package verify

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/secret"
)

// rotatedHarness has one token rotated without grace: old is its secret
// replaced by rotation, new the current one. edit changes the token, cred
// the retired secret's credential.
func rotatedHarness(t *testing.T, opts func(o *Options), edit func(t *tokend.Token), cred func(c *tokend.Credential)) (h *harness, old, cur string) {
	t.Helper()
	if opts == nil {
		opts = func(*Options) {}
	}
	h = newHarness(t, opts)
	old = h.token(func(t *tokend.Token) {
		t.ID, t.AppID, t.Version = "tok_rot", "app_r", 2
		if edit != nil {
			edit(t)
		}
	})
	newSec, _ := secret.Generate("tkd")
	cur = newSec.Reveal()
	h.store.set(func(s *fakeStore) {
		c := s.creds[h.hasher.Sum(old)]
		retired := tokend.Credential{Token: c.Token, Retired: true, GraceUntil: h.clock.Now(), RotatedSecretPolicy: tokend.RotatedNotify}
		if cred != nil {
			cred(&retired)
		}
		s.creds[h.hasher.Sum(cur)] = tokend.Credential{Token: c.Token}
		s.creds[h.hasher.Sum(old)] = retired
	})
	return h, old, cur
}

// A dead token answers as dead whichever of its secrets is presented: only a
// token alive under its new secret answers ROTATED.
func TestRotatedOnlyForALiveToken(t *testing.T) {
	past := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name string
		edit func(t *tokend.Token)
		want tokend.Code
	}{
		{"active", nil, tokend.CodeRotated},
		{"revoked", func(t *tokend.Token) { t.Status = tokend.StatusRevoked }, tokend.CodeRevoked},
		{"disabled", func(t *tokend.Token) { t.Status = tokend.StatusDisabled }, tokend.CodeDisabled},
		{"expired", func(t *tokend.Token) { t.ExpiresAt = &past }, tokend.CodeExpired},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, old, _ := rotatedHarness(t, nil, c.edit, nil)
			if got := h.code(old); got != c.want {
				t.Errorf("old secret of a %s token: %s, want %s", c.name, got, c.want)
			}
			h.e.Flush(context.Background())
			_, evs := h.store.recorded()
			if raised := len(evs) == 1; raised != (c.want == tokend.CodeRotated) {
				t.Errorf("events = %+v; want token.rotated_secret_used only for ROTATED", evs)
			}
		})
	}
}

// Within its grace the old secret verifies; at its end it answers ROTATED,
// and the new secret stays VALID throughout.
func TestRotatedAfterGraceOnly(t *testing.T) {
	var grace time.Time
	h, old, cur := rotatedHarness(t, nil, nil, func(c *tokend.Credential) {
		grace = c.GraceUntil.Add(time.Hour)
		c.GraceUntil = grace
	})
	if got := h.code(old); got != tokend.CodeValid {
		t.Errorf("old secret in its grace: %s, want VALID", got)
	}
	h.clock.Set(grace)
	if got := h.code(old); got != tokend.CodeRotated {
		t.Errorf("old secret at the end of its grace: %s, want ROTATED", got)
	}
	if got := h.code(cur); got != tokend.CodeValid {
		t.Errorf("new secret: %s, want VALID", got)
	}
	if got := (tokend.VerifyResult{Code: tokend.CodeRotated}).Code.Status(); got != 401 {
		t.Errorf("ROTATED answers %d at the doors, want 401", got)
	}
}

func TestEventText(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	for _, c := range []struct{ name, in, want string }{
		{"kept", "Mozilla/5.0 (X11; Linux x86_64)", "Mozilla/5.0 (X11; Linux x86_64)"},
		{"empty", "", ""},
		{"NUL dropped", "curl\x00/8", ""},
		{"newline dropped", "curl/8\r\nX-Evil: 1", ""},
		{"bidi override dropped", "curl/8 \u202egnp.exe", ""},
		{"invalid UTF-8 dropped", "curl/\xff8", ""},
		{"cut on a character boundary", long, strings.Repeat("é", 128)},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := eventText(c.in)
			if got != c.want {
				t.Errorf("eventText(%q) = %q, want %q", c.in, got, c.want)
			}
			if len(got) > maxEventText || !utf8.ValidString(got) {
				t.Errorf("eventText(%q) = %q: over %d bytes or not UTF-8", c.in, got, maxEventText)
			}
		})
	}
	// A cut that would split a character keeps the whole characters only.
	odd := "a" + long
	if got := eventText(odd); len(got) != 255 || !utf8.ValidString(got) {
		t.Errorf("cut of an odd length = %d bytes, valid %v; want 255, valid", len(got), utf8.ValidString(got))
	}
}

// The event tells when, from where, with which user agent and at which door
// the old secret came, and when its grace ended; a user agent that is no
// line of text is left out.
func TestRotatedEventFields(t *testing.T) {
	h, old, _ := rotatedHarness(t, nil, nil, nil)
	grace := h.clock.Now()
	h.clock.Advance(time.Minute)
	h.verify(tokend.VerifyRequest{Token: old, IP: "2001:db8::7%eth0", UserAgent: "evil\u202e/1", Endpoint: tokend.EndpointForwardAuth})
	h.e.Flush(context.Background())
	_, evs := h.store.recorded()
	if len(evs) != 1 {
		t.Fatalf("events = %+v, want 1", evs)
	}
	ev := evs[0]
	d := ev.Notices[0].Data
	want := map[string]any{
		"token_id": "tok_rot", "app_id": "app_r", "name": "test", "ip": "2001:db8::7",
		"endpoint": tokend.EndpointForwardAuth, "policy": "notify",
		"at":          h.clock.Now().UTC().Format(time.RFC3339Nano),
		"grace_until": grace.UTC().Format(time.RFC3339),
	}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("data[%s] = %v, want %v", k, d[k], v)
		}
	}
	if _, ok := d["user_agent"]; ok {
		t.Errorf("a user agent with a bidi override was kept: %q", d["user_agent"])
	}
	if ev.IP != "2001:db8::7" || ev.Details["endpoint"] != tokend.EndpointForwardAuth {
		t.Errorf("audit row = %+v", ev)
	}
}

// One event per token per hour, whatever the number of presentations; a
// change to the token (its version moves: re-enabled, rotated again) starts
// the hour afresh.
func TestRotatedEventHourlyBoundResetByAChange(t *testing.T) {
	h, old, _ := rotatedHarness(t, nil, nil, nil)
	count := func() int {
		h.e.Flush(context.Background())
		_, evs := h.store.recorded()
		return len(evs)
	}
	for range 5 {
		h.code(old)
	}
	if n := count(); n != 1 {
		t.Fatalf("five uses in a minute raised %d events, want 1", n)
	}
	h.clock.Advance(59 * time.Minute)
	h.code(old)
	if n := count(); n != 1 {
		t.Fatalf("a use 59 minutes later raised another event: %d", n)
	}
	// The token is changed (disabled and enabled again, say): version 3.
	h.store.set(func(s *fakeStore) {
		c := s.creds[h.hasher.Sum(old)]
		c.Token.Version = 3
		s.creds[h.hasher.Sum(old)] = c
	})
	h.e.TokenChanged("tok_rot")
	h.code(old)
	if n := count(); n != 2 {
		t.Fatalf("a use after a change to the token raised %d events in all, want 2", n)
	}
	h.code(old)
	if n := count(); n != 2 {
		t.Fatalf("a second use after the change raised another event: %d", n)
	}
	h.clock.Advance(time.Hour)
	h.code(old)
	if n := count(); n != 3 {
		t.Fatalf("a use an hour later: %d events in all, want 3", n)
	}
}

// ROTATED is a failure the throttle counts, like REVOKED: someone trying
// old secrets from one address gets throttled.
func TestRotatedCountsAsAFailure(t *testing.T) {
	h, old, _ := rotatedHarness(t, func(o *Options) { o.FailureLimit = 3 }, nil, nil)
	peer := tokend.PeerKey(tokend.DoorVerify, "192.0.2.9")
	for range 3 {
		h.verify(tokend.VerifyRequest{Token: old, Peer: peer})
	}
	if res := h.verify(tokend.VerifyRequest{Token: h.token(), Peer: peer}); res.Reason != ReasonClientThrottled {
		t.Fatalf("after 3 ROTATED from one peer, a new token: %+v, want throttled", res)
	}
}

// disableLog is an Options.Disable that records its calls.
type disableLog struct {
	mu    sync.Mutex
	calls []tokend.Event
	err   error
	done  chan struct{}
}

func (d *disableLog) disable(ctx context.Context, id string, ev tokend.Event) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return d.err
	}
	if id != ev.TokenID {
		return errors.New("id and event disagree")
	}
	d.calls = append(d.calls, ev)
	if d.done != nil {
		close(d.done)
		d.done = nil
	}
	return nil
}

func (d *disableLog) got() []tokend.Event {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]tokend.Event(nil), d.calls...)
}

// With the app's policy disable, the use goes to Options.Disable (with its
// event, never through the plain event queue), at once: Run is woken, not
// left to its next tick. A failed call is kept for the next flush.
func TestRotatedDisablePolicy(t *testing.T) {
	dl := &disableLog{done: make(chan struct{})}
	h, old, _ := rotatedHarness(t, func(o *Options) {
		o.Disable = dl.disable
		o.FlushInterval = time.Hour // only the nudge can wake Run
	}, nil, func(c *tokend.Credential) { c.RotatedSecretPolicy = tokend.RotatedDisable })
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { h.e.Run(ctx); close(stopped) }()
	defer func() { cancel(); <-stopped }()

	done := dl.done
	if got := h.verify(tokend.VerifyRequest{Token: old, IP: "192.0.2.5", Endpoint: tokend.EndpointVerify}).Code; got != tokend.CodeRotated {
		t.Fatalf("old secret: %s, want ROTATED", got)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Disable was not called within 10s of the use")
	}
	calls := dl.got()
	if len(calls) != 1 || calls[0].TokenID != "tok_rot" || calls[0].Notices[0].Type != tokend.EventTokenRotatedSecretUsed ||
		calls[0].Notices[0].Data["policy"] != "disable" || calls[0].IP != "192.0.2.5" {
		t.Fatalf("Disable calls = %+v", calls)
	}
	if _, evs := h.store.recorded(); len(evs) != 0 {
		t.Errorf("the event was also queued on its own: %+v", evs)
	}
}

func TestRotatedDisableRetriedAfterAFailure(t *testing.T) {
	dl := &disableLog{err: tokend.Unavailable(errors.New("down"))}
	h, old, _ := rotatedHarness(t, func(o *Options) { o.Disable = dl.disable }, nil,
		func(c *tokend.Credential) { c.RotatedSecretPolicy = tokend.RotatedDisable })
	h.code(old)
	if err := h.e.Flush(context.Background()); err == nil {
		t.Fatal("Flush hid the failure to disable")
	}
	dl.mu.Lock()
	dl.err = nil
	dl.mu.Unlock()
	if err := h.e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if calls := dl.got(); len(calls) != 1 {
		t.Fatalf("after the retry, Disable calls = %d, want 1", len(calls))
	}
}
