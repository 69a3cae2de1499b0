package verify

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/secret"
)

func decoy(t *tokend.Token) {
	t.ID, t.AppID, t.Name, t.Masked, t.OwnerID = "tok_decoy", "app_d", "deploy key", "tkd_…Zz9Q", "acct_7"
	t.Decoy = true
}

// A decoy is answered exactly as an unknown secret, whatever the decoy's
// status, expiry or restrictions, and whatever the request asks.
func TestDecoyAnswersAsAnUnknownSecret(t *testing.T) {
	past := newClock().Now().Add(-time.Hour)
	edits := map[string]func(*tokend.Token){
		"active":          func(*tokend.Token) {},
		"revoked":         func(t *tokend.Token) { t.Status = tokend.StatusRevoked },
		"disabled":        func(t *tokend.Token) { t.Status = tokend.StatusDisabled },
		"expired":         func(t *tokend.Token) { t.ExpiresAt = &past },
		"rate limited":    func(t *tokend.Token) { t.RateLimit = &tokend.RateLimit{Limit: 1, Window: tokend.Duration(time.Hour)} },
		"max uses":        func(t *tokend.Token) { t.MaxUses = ptr(int64(1)) },
		"ip restricted":   ips("10.0.0.0/8"),
		"plugin":          origins(tokend.TypePlugin, "https://app.example.com"),
		"admin, scoped":   func(t *tokend.Token) { t.AppID = tokend.SystemAppID; t.Scope = &tokend.AdminScope{OwnerID: "acct_7"} },
		"with a metadata": func(t *tokend.Token) { t.Metadata = map[string]any{"plan": "gold"} },
	}
	reqs := []tokend.VerifyRequest{
		{},
		{Permissions: []string{"write"}, IP: "10.1.2.3", Origin: "https://app.example.com"},
		{IP: "192.0.2.1", UserAgent: "curl/8.5.0"},
	}
	for name, edit := range edits {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			sec := h.token(edit, decoy, edit)
			unknown, _ := secret.Generate("tkd")
			for i, r := range reqs {
				r.Token = sec
				got := h.verify(r)
				r.Token = unknown.Reveal()
				want := h.verify(r)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("request %d: decoy answered %+v, unknown %+v", i, got, want)
				}
				if want.Code != tokend.CodeNotFound {
					t.Fatalf("unknown secret: %s", want.Code)
				}
			}
		})
	}
}

// A decoy is cached for the negative TTL as an unknown secret is (one
// storage read, then none until the negative TTL ends), never for the
// positive TTL; nothing of its use is recorded but the event.
func TestDecoyIsCachedForTheNegativeTTLAndRecordsNoUsage(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.NegativeTTL = 5 * time.Second; o.CacheTTL = time.Hour })
	sec := h.token(decoy)
	for range 10 {
		if c := h.code(sec); c != tokend.CodeNotFound {
			t.Fatalf("code = %s", c)
		}
	}
	if n := h.store.lookups.Load(); n != 1 {
		t.Fatalf("store lookups within the negative TTL = %d, want 1", n)
	}
	h.clock.Advance(5*time.Second - 1)
	h.code(sec)
	if n := h.store.lookups.Load(); n != 1 {
		t.Fatalf("store lookups just before the negative TTL = %d, want 1", n)
	}
	h.clock.Advance(1)
	h.code(sec)
	if n := h.store.lookups.Load(); n != 2 {
		t.Fatalf("store lookups after the negative TTL = %d, want 2 (a decoy is never cached as a token)", n)
	}
	if n := h.e.tokenStates(); n != 0 {
		t.Errorf("token states = %d, want 0: a decoy has no usage, limits or activity", n)
	}
	if err := h.e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	batches, evs := h.store.recorded()
	if len(batches) != 0 {
		t.Errorf("usage recorded for a decoy: %+v", batches)
	}
	if acts := h.store.activityOf("tok_decoy"); len(acts) != 0 {
		t.Errorf("activity recorded for a decoy: %+v", acts)
	}
	if len(evs) != 1 || evs[0].Action != tokend.ActionTokenDecoyUsed {
		t.Fatalf("events = %+v, want one token.decoy_used", evs)
	}
}

func TestDecoyEventTellsWhoPresentedItAndNeverTheSecret(t *testing.T) {
	var logs bytes.Buffer
	h := newHarness(t, func(o *Options) { o.Logger = newTextLogger(&logs) })
	sec := h.token(decoy)
	at := h.clock.Now()
	res := h.verify(tokend.VerifyRequest{Token: sec, IP: "192.0.2.7", Peer: tokend.PeerKey(tokend.DoorVerify, "198.51.100.2"),
		UserAgent: "python-requests/2.31", Origin: "https://evil.example", Endpoint: tokend.EndpointVerify})
	if res.Code != tokend.CodeNotFound {
		t.Fatalf("code = %s", res.Code)
	}
	if _, evs := h.store.recorded(); len(evs) != 0 {
		t.Fatalf("events written on the hot path: %+v", evs)
	}
	if err := h.e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, evs := h.store.recorded()
	if len(evs) != 1 {
		t.Fatalf("events = %+v", evs)
	}
	ev := evs[0]
	if ev.Action != tokend.ActionTokenDecoyUsed || ev.TokenID != "tok_decoy" || ev.AppID != "app_d" || ev.IP != "192.0.2.7" ||
		ev.Actor != "system" || !ev.Time.Equal(at) {
		t.Errorf("audit row = %+v", ev)
	}
	if len(ev.Notices) != 1 || ev.Notices[0].Type != tokend.EventTokenDecoyUsed {
		t.Fatalf("notices = %+v", ev.Notices)
	}
	want := map[string]any{
		"token_id": "tok_decoy", "app_id": "app_d", "name": "deploy key", "masked": "tkd_…Zz9Q", "owner_id": "acct_7",
		"at": at.UTC().Format(time.RFC3339Nano), "ip": "192.0.2.7", "peer": "198.51.100.2",
		"user_agent": "python-requests/2.31", "origin": "https://evil.example", "endpoint": tokend.EndpointVerify,
	}
	if d := ev.Notices[0].Data; !reflect.DeepEqual(d, want) {
		t.Errorf("event data = %v\nwant %v", d, want)
	}
	if !reflect.DeepEqual(ev.Details, want) {
		t.Errorf("audit details = %v", ev.Details)
	}
	if strings.Contains(fmt.Sprint(ev)+logs.String(), sec[4:20]) {
		t.Error("the event or the log holds the secret")
	}
	if !strings.Contains(logs.String(), "decoy token was presented") {
		t.Errorf("no warning logged: %s", logs.String())
	}
}

// A user agent or origin is kept only when it is one line of text, and cut
// to 256 bytes between characters.
func TestDecoyEventKeepsOnlyCleanText(t *testing.T) {
	long := strings.Repeat("a", 255) + "é" + "tail"
	cases := []struct{ in, want string }{
		{"Mozilla/5.0 (X11; Linux x86_64)", "Mozilla/5.0 (X11; Linux x86_64)"},
		{"evil\x00agent", ""},
		{"line\nbreak", ""},
		{"bidi \u202eoverride", ""},
		{"bad \xff utf-8", ""},
		{long, strings.Repeat("a", 255)},
		{strings.Repeat("b", 300), strings.Repeat("b", 256)},
	}
	for i, c := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			h := newHarness(t)
			sec := h.token(decoy)
			h.verify(tokend.VerifyRequest{Token: sec, UserAgent: c.in, Origin: c.in, Endpoint: tokend.EndpointForwardAuth})
			h.e.Flush(context.Background())
			_, evs := h.store.recorded()
			if len(evs) != 1 {
				t.Fatalf("events = %d", len(evs))
			}
			d := evs[0].Notices[0].Data
			for _, k := range []string{"user_agent", "origin"} {
				got, ok := d[k]
				if c.want == "" && ok {
					t.Errorf("%s kept: %q", k, got)
				}
				if c.want != "" && got != c.want {
					t.Errorf("%s = %q, want %q", k, got, c.want)
				}
			}
		})
	}
}

// Whoever holds a decoy cannot flood the audit log, the webhooks or the
// owners' mail: one event per decoy and peer per 10 minutes, at most
// DecoyEventsPerHour per decoy per hour, a warning when some are left out.
func TestDecoyEventsAreBounded(t *testing.T) {
	var logs bytes.Buffer
	h := newHarness(t, func(o *Options) { o.Logger = newTextLogger(&logs) })
	sec := h.token(decoy)
	other := h.token(decoy, func(t *tokend.Token) { t.ID = "tok_decoy2" })
	peer := func(i int) string { return tokend.PeerKey(tokend.DoorVerify, fmt.Sprintf("198.51.100.%d", i)) }
	count := func() (n map[string]int) {
		t.Helper()
		if err := h.e.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		_, evs := h.store.recorded()
		n = map[string]int{}
		for _, ev := range evs {
			n[ev.TokenID]++
		}
		return n
	}
	// The same peer, again and again: one event.
	for range 100 {
		h.verify(tokend.VerifyRequest{Token: sec, Peer: peer(1)})
	}
	if n := count()["tok_decoy"]; n != 1 {
		t.Fatalf("events from one peer = %d, want 1", n)
	}
	// One warning per decoy per interval, not one per presentation.
	if n := strings.Count(logs.String(), "events about it are suppressed"); n != 1 {
		t.Errorf("warnings about suppressed presentations = %d, want 1: %s", n, logs.String())
	}
	// Many peers: at most DecoyEventsPerHour in the hour.
	for i := range 100 {
		h.verify(tokend.VerifyRequest{Token: sec, Peer: peer(10 + i)})
	}
	if n := count()["tok_decoy"]; n != DecoyEventsPerHour {
		t.Fatalf("events from 101 peers = %d, want %d", n, DecoyEventsPerHour)
	}
	// Another decoy has its own bound.
	h.verify(tokend.VerifyRequest{Token: other, Peer: peer(1)})
	if n := count()["tok_decoy2"]; n != 1 {
		t.Fatalf("events of another decoy = %d, want 1", n)
	}
	// Ten minutes on, the first peer is told again once the hour allows:
	// an hour on, it is.
	h.clock.Advance(DecoyPeerInterval)
	h.verify(tokend.VerifyRequest{Token: sec, Peer: peer(1)})
	if n := count()["tok_decoy"]; n != DecoyEventsPerHour {
		t.Fatalf("events past the hourly cap = %d, want %d", n, DecoyEventsPerHour)
	}
	h.clock.Advance(time.Hour)
	h.verify(tokend.VerifyRequest{Token: sec, Peer: peer(1)})
	h.verify(tokend.VerifyRequest{Token: sec, Peer: peer(1)})
	if n := count()["tok_decoy"]; n != DecoyEventsPerHour+1 {
		t.Fatalf("events an hour later = %d, want %d", n, DecoyEventsPerHour+1)
	}
	// In process (no peer), the client address is the peer.
	h.verify(tokend.VerifyRequest{Token: other, IP: "203.0.113.1", Endpoint: tokend.EndpointMiddleware})
	h.verify(tokend.VerifyRequest{Token: other, IP: "203.0.113.2", Endpoint: tokend.EndpointMiddleware})
	h.verify(tokend.VerifyRequest{Token: other, IP: "203.0.113.2", Endpoint: tokend.EndpointMiddleware})
	if n := count()["tok_decoy2"]; n != 3 {
		t.Fatalf("events of in-process presentations = %d, want 3", n)
	}
}

// A decoy is a guess for the failure throttle, as an unknown secret is; a
// throttled peer presenting a decoy still raises its event.
func TestDecoyCountsAsAFailure(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.FailureLimit = 3; o.FailureWindow = time.Minute })
	sec := h.token(decoy)
	unknown, _ := secret.Generate("tkd")
	attacker := tokend.PeerKey(tokend.DoorVerify, "198.51.100.66")
	for range 3 {
		if c := h.verify(tokend.VerifyRequest{Token: sec, Peer: attacker}).Code; c != tokend.CodeNotFound {
			t.Fatalf("code = %s", c)
		}
	}
	got := h.verify(tokend.VerifyRequest{Token: sec, Peer: attacker})
	want := h.verify(tokend.VerifyRequest{Token: unknown.Reveal(), Peer: attacker})
	if got.Reason != ReasonClientThrottled || !reflect.DeepEqual(got, want) {
		t.Fatalf("after 3 decoy presentations: %+v; unknown: %+v", got, want)
	}
}

// blockPeer makes peer fail its way past the failure throttle with unknown
// secrets, and answers what it gets for one more.
func blockPeer(t *testing.T, h *harness, peer string, limit int) tokend.VerifyResult {
	t.Helper()
	for range limit {
		unknown, _ := secret.Generate("tkd")
		h.verify(tokend.VerifyRequest{Token: unknown.Reveal(), Peer: peer})
	}
	unknown, _ := secret.Generate("tkd")
	res := h.verify(tokend.VerifyRequest{Token: unknown.Reveal(), Peer: peer})
	if res.Reason != ReasonClientThrottled {
		t.Fatalf("peer not blocked: %+v", res)
	}
	return res
}

// A peer past the failure throttle that presents a decoy it never
// presented before (so not in the cache) raises token.decoy_used, from the
// set of every decoy's secrets in memory: no storage read, the answer of
// any secret a blocked peer presents, the events bounded as ever. The
// review's repro: a sprayed dump of secrets with a decoy among them.
func TestBlockedPeerPresentingADecoyRaisesItsEvent(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.FailureLimit = 5; o.FailureWindow = time.Minute })
	current := h.token(decoy)
	retired := h.token(decoy) // another secret of the same decoy
	h.token(decoy, func(t *tokend.Token) { t.ID = "tok_decoy2" })
	real := h.token()
	if err := h.e.refreshDecoys(context.Background()); err != nil {
		t.Fatal(err)
	}
	attacker := tokend.PeerKey(tokend.DoorVerify, "198.51.100.66")
	want := blockPeer(t, h, attacker, 5)
	reads := h.store.lookups.Load()
	for _, sec := range []string{current, retired, current} {
		got := h.verify(tokend.VerifyRequest{Token: sec, Peer: attacker, IP: "192.0.2.1", UserAgent: "spray/1.0", Endpoint: tokend.EndpointVerify})
		if !reflect.DeepEqual(got, want) {
			t.Errorf("blocked peer's decoy: %+v, want what an unknown secret gets: %+v", got, want)
		}
	}
	// The real token's secret is not in the cache: refused too, silently.
	if got := h.verify(tokend.VerifyRequest{Token: real, Peer: attacker}); got.Reason != ReasonClientThrottled {
		t.Errorf("blocked peer's uncached real token: %+v", got)
	}
	if n := h.store.lookups.Load(); n != reads {
		t.Errorf("storage reads for a blocked peer = %d, want none", n-reads)
	}
	if err := h.e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, evs := h.store.recorded()
	if len(evs) != 1 || evs[0].Action != tokend.ActionTokenDecoyUsed || evs[0].TokenID != "tok_decoy" {
		t.Fatalf("events = %+v, want one token.decoy_used of tok_decoy (one per peer per %s)", evs, DecoyPeerInterval)
	}
	d := evs[0].Notices[0].Data
	if d["peer"] != "198.51.100.66" || d["ip"] != "192.0.2.1" || d["user_agent"] != "spray/1.0" || d["name"] != "deploy key" {
		t.Errorf("event data = %v", d)
	}
	// The bound holds: many blocked peers, at most DecoyEventsPerHour.
	for i := range 3 * DecoyEventsPerHour {
		p := tokend.PeerKey(tokend.DoorVerify, fmt.Sprintf("203.0.113.%d", i))
		blockPeer(t, h, p, 5)
		h.verify(tokend.VerifyRequest{Token: current, Peer: p})
	}
	h.e.Flush(context.Background())
	if _, evs := h.store.recorded(); len(evs) != DecoyEventsPerHour {
		t.Errorf("events from %d blocked peers = %d, want %d", 3*DecoyEventsPerHour, len(evs), DecoyEventsPerHour)
	}
	if n := h.store.lookups.Load(); n != reads+int64(3*DecoyEventsPerHour*5) {
		t.Errorf("storage reads = %d, want one per unknown secret that blocked a peer", n-reads)
	}
}

// A read of the decoys that fails keeps the set read before.
func TestDecoySetSurvivesAFailedRead(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.FailureLimit = 1 })
	sec := h.token(decoy)
	if err := h.e.refreshDecoys(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.store.set(func(s *fakeStore) { s.lookupErr = fmt.Errorf("database down") })
	if err := h.e.refreshDecoys(context.Background()); err == nil {
		t.Fatal("a failed read answered no error")
	}
	h.store.set(func(s *fakeStore) { s.lookupErr = nil })
	peer := tokend.PeerKey(tokend.DoorAdmin, "198.51.100.1")
	blockPeer(t, h, peer, 1)
	h.verify(tokend.VerifyRequest{Token: sec, Peer: peer})
	h.e.Flush(context.Background())
	if _, evs := h.store.recorded(); len(evs) != 1 {
		t.Errorf("events = %+v, want the decoy's", evs)
	}
}

// Run reads the decoys' secrets at its start, again after invalidations (a
// burst of them costs one read, not one each), and on its own every
// DecoyRefreshInterval.
func TestRunKeepsTheDecoySetFresh(t *testing.T) {
	waitFor := func(t *testing.T, what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10s", what)
			}
			<-time.After(time.Millisecond)
		}
	}
	known := func(h *harness, sec string) bool {
		set := h.e.decoySecrets.Load()
		return set != nil && (*set)[h.hasher.Sum(sec)] != nil
	}
	run := func(h *harness) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { h.e.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
	}

	t.Run("at start and after invalidations", func(t *testing.T) {
		h := newHarness(t, func(o *Options) { o.FlushInterval = time.Hour })
		h.e.decoyEvery = time.Hour
		h.e.decoyDelay = 100 * time.Millisecond
		first := h.token(decoy)
		run(h)
		waitFor(t, "read at start", func() bool { return known(h, first) })
		reads := h.store.decoyReads.Load()
		second := h.token(decoy, func(t *tokend.Token) { t.ID = "tok_decoy2" })
		for i := range 1000 {
			if i%2 == 0 {
				h.e.TokenChanged("tok_decoy2")
			} else {
				h.e.AppChanged("app_d")
			}
		}
		waitFor(t, "read after invalidations", func() bool { return known(h, second) })
		// Debounced: a thousand invalidations in a burst, a few reads at
		// most (one, unless the burst outlasted the delay).
		if n := h.store.decoyReads.Load() - reads; n > 10 {
			t.Errorf("reads after 1000 invalidations = %d, want a few", n)
		}
		h.store.update("tok_decoy", func(t *tokend.Token) { t.Decoy = false }) // as if deleted
		h.e.Resync()
		waitFor(t, "read after a resync", func() bool { return !known(h, first) })
	})

	t.Run("every interval", func(t *testing.T) {
		h := newHarness(t, func(o *Options) { o.FlushInterval = time.Hour })
		h.e.decoyEvery = 5 * time.Millisecond
		h.e.decoyDelay = time.Hour
		run(h)
		waitFor(t, "read at start", func() bool { return h.store.decoyReads.Load() >= 1 })
		sec := h.token(decoy) // no invalidation told
		waitFor(t, "read on the interval", func() bool { return known(h, sec) })
	})
}
