package verify

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tokend/tokend"
)

func trackingHarness(t *testing.T) *harness {
	return newHarness(t, func(o *Options) { o.TrackNetworks = true })
}

// flushNetworks flushes and answers the networks the flush handed to the
// store, as "token network ip", nil when it handed none.
func (h *harness) flushNetworks() []string {
	h.t.Helper()
	before := len(h.store.networkBatches())
	if err := h.e.Flush(context.Background()); err != nil {
		h.t.Fatalf("Flush: %v", err)
	}
	batches := h.store.networkBatches()
	var out []string
	for _, b := range batches[before:] {
		for _, u := range b {
			out = append(out, u.TokenID+" "+u.Network+" "+u.IP)
		}
	}
	return out
}

func TestNetworksQueuedForTheFlush(t *testing.T) {
	h := trackingHarness(t)
	sec := h.token(func(tok *tokend.Token) { tok.ID = "tok_net1" })
	verifyFrom := func(ip string) {
		t.Helper()
		if res := h.verify(tokend.VerifyRequest{Token: sec, IP: ip}); !res.Valid {
			t.Fatalf("verify from %q: %s", ip, res.Code)
		}
	}
	steps := []struct {
		name string
		ips  []string
		want []string
	}{
		{"a new network is queued once, with its first address", []string{"203.0.113.7", "203.0.113.7", "203.0.113.7"},
			[]string{"tok_net1 203.0.113.0/24 203.0.113.7"}},
		{"the same network again is not queued within a minute", []string{"203.0.113.7", "203.0.113.99"}, nil},
		{"another /24 is queued, the same /24 not", []string{"198.51.100.9", "198.51.100.20", "203.0.113.7"},
			[]string{"tok_net1 198.51.100.0/24 198.51.100.9"}},
		{"an IPv4-mapped address counts as its IPv4 /24", []string{"::ffff:192.0.2.10", "192.0.2.11"},
			[]string{"tok_net1 192.0.2.0/24 ::ffff:192.0.2.10"}},
		{"IPv6 is counted by /48", []string{"2001:db8:1:2::1", "2001:db8:1:ffff::2", "2001:db8:2::1"},
			[]string{"tok_net1 2001:db8:1::/48 2001:db8:1:2::1", "tok_net1 2001:db8:2::/48 2001:db8:2::1"}},
		{"no address, or one that does not parse, notes nothing", []string{"", "not an address", "203.0.113.7\x00", "1.2.3.4/24"}, nil},
	}
	for _, s := range steps {
		for _, ip := range s.ips {
			verifyFrom(ip)
		}
		if d := cmp.Diff(s.want, h.flushNetworks()); d != "" {
			t.Errorf("%s (-want +got):\n%s", s.name, d)
		}
	}
	// A minute on, the networks in use have their last seen queued.
	h.clock.Advance(networkTouch)
	verifyFrom("203.0.113.8")
	verifyFrom("203.0.113.8")
	if d := cmp.Diff([]string{"tok_net1 203.0.113.0/24 203.0.113.8"}, h.flushNetworks()); d != "" {
		t.Errorf("a minute later (-want +got):\n%s", d)
	}
}

func TestNetworksOnlyOfValidAnswers(t *testing.T) {
	h := trackingHarness(t)
	readOnly := h.token(func(tok *tokend.Token) { tok.Access = tokend.AccessReadOnly })
	revoked := h.token(func(tok *tokend.Token) { tok.Status = tokend.StatusRevoked })
	limited := h.token(func(tok *tokend.Token) { tok.AllowedIPs = []string{"10.0.0.0/8"} })
	for _, r := range []tokend.VerifyRequest{
		{Token: readOnly, IP: "203.0.113.7", Permissions: []string{"orders:write"}},
		{Token: revoked, IP: "203.0.113.7"},
		{Token: limited, IP: "203.0.113.7"},
		{Token: "tkd_unknown", IP: "203.0.113.7"},
	} {
		if res := h.verify(r); res.Valid {
			t.Fatalf("%+v answered VALID", r)
		}
	}
	if got := h.flushNetworks(); got != nil {
		t.Errorf("refused verifications queued networks: %v", got)
	}
}

func TestNetworksNotTrackedWhenOff(t *testing.T) {
	h := newHarness(t)
	sec := h.token()
	h.verify(tokend.VerifyRequest{Token: sec, IP: "203.0.113.7"})
	if got := h.flushNetworks(); got != nil {
		t.Errorf("tracking off queued %v", got)
	}
}

// A token used from more networks than it keeps holds the last ones in its
// set, and queues at most as many per flush: one more waits for its next
// use a minute on.
func TestNetworkSetIsBounded(t *testing.T) {
	h := trackingHarness(t)
	sec := h.token(func(tok *tokend.Token) { tok.ID = "tok_many" })
	from := func(i int) {
		if res := h.verify(tokend.VerifyRequest{Token: sec, IP: fmt.Sprintf("10.%d.0.1", i)}); !res.Valid {
			t.Fatalf("verify from network %d: %s", i, res.Code)
		}
		h.clock.Advance(time.Millisecond)
	}
	for round := range 3 {
		for i := range tokend.MaxTokenNetworks {
			from(round*tokend.MaxTokenNetworks + i)
		}
		want := tokend.MaxTokenNetworks
		if round == 1 {
			// Within the hour of round 0: the hour's new networks
			// are all taken; the uses pass, unrecorded.
			want = 0
		}
		if got := h.flushNetworks(); len(got) != want {
			t.Errorf("round %d queued %d networks, want %d", round, len(got), want)
		}
		if round == 1 {
			h.clock.Advance(time.Hour)
		}
	}
	st := h.e.tokens.shard[h.e.tokens.shardIndex("tok_many")].byID["tok_many"]
	if s := st.nets.Load(); s == nil || len(s.nets) != tokend.MaxTokenNetworks || s.last.prefix.String() != "10.29.0.0/24" {
		t.Fatalf("network set = %+v, want the %d last", s, tokend.MaxTokenNetworks)
	}
	// The most recent ones are known, and so not refused by the hour's
	// bound; the first one is new to the set, and refused.
	h.clock.Advance(networkTouch)
	h.verify(tokend.VerifyRequest{Token: sec, IP: "10.25.0.1"})
	h.verify(tokend.VerifyRequest{Token: sec, IP: "10.0.0.1"})
	if d := cmp.Diff([]string{"tok_many 10.25.0.0/24 10.25.0.1"}, h.flushNetworks()); d != "" {
		t.Errorf("a known network's last seen, an unknown one over the bound (-want +got):\n%s", d)
	}
	// An hour on, eleven new networks: ten are taken in, the eleventh
	// waits for the next hour.
	h.clock.Advance(time.Hour)
	for i := 100; i <= 110; i++ {
		from(i)
	}
	if got := h.flushNetworks(); len(got) != tokend.MaxTokenNetworks {
		t.Errorf("eleven new networks queued %d, want %d", len(got), tokend.MaxTokenNetworks)
	}
	h.clock.Advance(time.Hour)
	from(110)
	if d := cmp.Diff([]string{"tok_many 10.110.0.0/24 10.110.0.1"}, h.flushNetworks()); d != "" {
		t.Errorf("an hour on (-want +got):\n%s", d)
	}
}

// Networks the store could not take for an outage are written by the next
// flush; a restart (a new engine on the same store) queues a network again,
// for the store to decide.
func TestNetworksKeptThroughAnOutage(t *testing.T) {
	h := trackingHarness(t)
	sec := h.token(func(tok *tokend.Token) { tok.ID = "tok_out1" })
	h.store.set(func(s *fakeStore) { s.netErr = tokend.Unavailable(fmt.Errorf("database down")) })
	h.verify(tokend.VerifyRequest{Token: sec, IP: "203.0.113.7"})
	if err := h.e.Flush(context.Background()); err == nil {
		t.Fatal("Flush during an outage answered no error")
	}
	h.store.set(func(s *fakeStore) { s.netErr = nil })
	if d := cmp.Diff([]string{"tok_out1 203.0.113.0/24 203.0.113.7"}, h.flushNetworks()); d != "" {
		t.Errorf("after the outage (-want +got):\n%s", d)
	}
	restarted := New(Options{Store: h.store, Hasher: h.hasher, Now: h.clock.Now, TrackNetworks: true})
	if res, _ := restarted.Verify(context.Background(), tokend.VerifyRequest{Token: sec, IP: "203.0.113.7"}); !res.Valid {
		t.Fatal(res.Code)
	}
	if err := restarted.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	b := h.store.networkBatches()
	if last := b[len(b)-1]; len(last) != 1 || last[0].Network != "203.0.113.0/24" {
		t.Errorf("after a restart: %+v, want the network queued again", last)
	}
}

// The common path, a token used again from its last address or another of
// its network, allocates nothing.
func TestNetworksAllocateNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts mean nothing under the race detector")
	}
	h := trackingHarness(t)
	sec := h.token()
	r := tokend.VerifyRequest{Token: sec, IP: "192.0.2.1"}
	h.verify(r)
	if n := testing.AllocsPerRun(1000, func() { h.verify(r) }); n != 0 {
		t.Errorf("the same address allocates %v times, want 0", n)
	}
	other := tokend.VerifyRequest{Token: sec, IP: "192.0.2.77"}
	if n := testing.AllocsPerRun(1000, func() { h.verify(other) }); n != 0 {
		t.Errorf("another address of the network allocates %v times, want 0", n)
	}
	// Networks the token knows, in turn: a token behind forward auth,
	// used by many end users. Verification itself allocates there (the
	// last use's address changes); tracking adds nothing to it.
	inTurn := func(h *harness, sec string) float64 {
		a := tokend.VerifyRequest{Token: sec, IP: "192.0.2.77"}
		b := tokend.VerifyRequest{Token: sec, IP: "198.51.100.7"}
		h.verify(a)
		h.verify(b)
		i := 0
		return testing.AllocsPerRun(1000, func() {
			if i++; i%2 == 0 {
				h.verify(a)
			} else {
				h.verify(b)
			}
		})
	}
	plain := newHarness(t)
	if on, off := inTurn(h, sec), inTurn(plain, plain.token()); on != off {
		t.Errorf("known networks in turn allocate %v times with tracking, %v without", on, off)
	}
}

// A network whose use the queue dropped (full) is queued again at its next
// use, however soon: it is not marked as queued.
func TestNetworkDroppedIsQueuedAgain(t *testing.T) {
	h := trackingHarness(t)
	defer func(n int) { maxPendingNetworks = n }(maxPendingNetworks)
	maxPendingNetworks = 1
	a := h.token(func(tok *tokend.Token) { tok.ID = "tok_a" })
	b := h.token(func(tok *tokend.Token) { tok.ID = "tok_b" })
	h.verify(tokend.VerifyRequest{Token: a, IP: "203.0.113.7"})
	h.verify(tokend.VerifyRequest{Token: b, IP: "198.51.100.9"}) // dropped: the queue is full
	if d := cmp.Diff([]string{"tok_a 203.0.113.0/24 203.0.113.7"}, h.flushNetworks()); d != "" {
		t.Fatalf("first flush (-want +got):\n%s", d)
	}
	h.clock.Advance(time.Second) // well within networkTouch
	h.verify(tokend.VerifyRequest{Token: b, IP: "198.51.100.9"})
	if d := cmp.Diff([]string{"tok_b 198.51.100.0/24 198.51.100.9"}, h.flushNetworks()); d != "" {
		t.Errorf("the dropped network's next use (-want +got):\n%s", d)
	}
}

// TestIdleTokensLetGoOfTheirNetworks: the flush lets go of the network set
// of a token not validly used for networkIdle, and only of such a token;
// its next use queues its network again, as after a restart (the store
// knows it, and raises nothing).
func TestIdleTokensLetGoOfTheirNetworks(t *testing.T) {
	h := trackingHarness(t)
	idle := h.token(func(tok *tokend.Token) { tok.ID = "tok_idle" })
	busy := h.token(func(tok *tokend.Token) { tok.ID = "tok_busy" })
	use := func(sec string) {
		t.Helper()
		if res := h.verify(tokend.VerifyRequest{Token: sec, IP: "203.0.113.7"}); !res.Valid {
			t.Fatalf("verify: %s", res.Code)
		}
	}
	nets := func(sec string) *netSet {
		return h.e.cache.get(ptr(h.hasher.Sum(sec)), h.clock.Now().UnixNano(), int64(24*time.Hour)).state.nets.Load()
	}
	use(idle)
	use(busy)
	if got := h.flushNetworks(); len(got) != 2 {
		t.Fatalf("first uses queued %q; want both tokens' network", got)
	}
	// The busy token is used every 50 s, within networkTouch: its set
	// stays. The sweep runs at most once every networkTouch, so the idle
	// token's set goes within networkIdle+networkTouch (here at 200 s).
	for range 4 {
		h.clock.Advance(50 * time.Second)
		use(busy)
		h.flushNetworks()
	}
	if nets(busy) == nil {
		t.Fatal("the network set of a token in use was let go")
	}
	if nets(idle) != nil {
		t.Fatalf("the network set of a token idle for %v is kept", 200*time.Second)
	}
	use(idle)
	if d := cmp.Diff([]string{"tok_idle 203.0.113.0/24 203.0.113.7"}, h.flushNetworks()); d != "" {
		t.Errorf("the idle token's next use (-want +got):\n%s", d)
	}
	if nets(idle) == nil {
		t.Error("the idle token's next use made no set")
	}
}
