package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

// The networks a token is used from (Store.RecordNetworks, TokenNetworks)
// and the token.new_network event the store raises for a new one.
var networkTests = []test{
	{name: "a token's first network raises nothing", run: testNetworkFirstUse},
	{name: "a new network raises one event with the previous networks", run: testNetworkNew},
	{name: "a known network raises nothing and moves last seen forward", run: testNetworkKnown},
	{name: "a network not seen for 30 days is new again", run: testNetworkStale},
	{name: "a token keeps its 10 most recently seen networks", run: testNetworkTrim},
	{name: "uses of a deleted or unknown token are dropped", run: testNetworkDeleted},
	{name: "concurrent flushes of one new network raise one event", run: testNetworkConcurrent},
}

const netA, netB, netC = "203.0.113.0/24", "198.51.100.0/24", "2001:db8:1::/48"

// netEvent is the raise of the tests: tokend.NewNetwork.Event with the
// token's id and name as its data.
func netEvent(n tokend.NewNetwork) tokend.Event {
	return n.Event(map[string]any{"id": n.Token.ID, "name": n.Token.Name})
}

func recordNetworks(t *testing.T, s tokend.Store, uses ...tokend.NetworkUse) {
	t.Helper()
	if err := s.RecordNetworks(t.Context(), uses, netEvent); err != nil {
		t.Fatalf("RecordNetworks: %v", err)
	}
}

func use(id, network, ip string, first, last time.Time) tokend.NetworkUse {
	return tokend.NetworkUse{TokenID: id, Network: network, IP: ip, First: first, Last: last}
}

func networksOf(t *testing.T, s tokend.Store, id string) []tokend.TokenNetwork {
	t.Helper()
	got, err := s.TokenNetworks(t.Context(), id)
	if err != nil {
		t.Fatalf("TokenNetworks(%s): %v", id, err)
	}
	return got
}

func newNetworkEvents(t *testing.T, s tokend.Store, id string) []tokend.Notification {
	t.Helper()
	return notificationsOf(t, s, tokend.NotificationFilter{Type: tokend.EventTokenNewNetwork, TokenID: id})
}

func networkToken(t *testing.T, s tokend.Store, ids ...string) {
	t.Helper()
	mustCreateApp(t, s, newApp("app_a"))
	for _, id := range ids {
		mustCreateToken(t, s, newToken(id, "app_a", "name of "+id))
	}
}

func testNetworkFirstUse(t *testing.T, s tokend.Store) {
	networkToken(t, s, "tok_one1")
	recordNetworks(t, s, use("tok_one1", netA, "203.0.113.7", t0, at(time.Second)))
	want := []tokend.TokenNetwork{{Network: netA, FirstSeen: t0, LastSeen: at(time.Second)}}
	if d := diff(want, networksOf(t, s, "tok_one1")); d != "" {
		t.Errorf("networks (-want +got):\n%s", d)
	}
	if evs := newNetworkEvents(t, s, "tok_one1"); len(evs) != 0 {
		t.Errorf("first use raised %d token.new_network, want none", len(evs))
	}
}

func testNetworkNew(t *testing.T, s tokend.Store) {
	networkToken(t, s, "tok_one1")
	recordNetworks(t, s, use("tok_one1", netA, "203.0.113.7", t0, t0))
	// One batch with two new networks: each is new, the second with both
	// before it.
	recordNetworks(t, s,
		use("tok_one1", netC, "2001:db8:1::9", at(2*time.Minute), at(2*time.Minute)),
		use("tok_one1", netB, "198.51.100.9", at(time.Minute), at(time.Minute)))
	evs := newNetworkEvents(t, s, "tok_one1")
	if len(evs) != 2 {
		t.Fatalf("token.new_network events: %d, want 2", len(evs))
	}
	b, c := evs[1], evs[0] // newest first
	if b.Data["network"] != netB || b.Data["ip"] != "198.51.100.9" || b.Data["name"] != "name of tok_one1" ||
		!b.OccurredAt.Equal(at(time.Minute)) || b.Actor.Type != "system" || b.AppID != "app_a" {
		t.Errorf("event of %s: %+v", netB, b)
	}
	if got := fmt.Sprint(previousNetworks(b)); got != "["+netA+"]" {
		t.Errorf("previous networks of %s = %s, want [%s]", netB, got, netA)
	}
	if got := fmt.Sprint(previousNetworks(c)); got != "["+netB+" "+netA+"]" {
		t.Errorf("previous networks of %s = %s, want the most recent first", netC, got)
	}
	audit, err := s.Events(t.Context(), tokend.EventFilter{TokenID: "tok_one1", Action: tokend.ActionTokenNewNetwork})
	if err != nil || len(audit.Items) != 2 || audit.Items[1].IP != "198.51.100.9" {
		t.Errorf("audit rows of token.new_network: %+v (%v), want 2, with the address", audit.Items, err)
	}
	got := networksOf(t, s, "tok_one1")
	if len(got) != 3 || got[0].Network != netC || got[1].Network != netB || got[2].Network != netA {
		t.Errorf("networks = %+v, want %s, %s, %s", got, netC, netB, netA)
	}
}

func previousNetworks(n tokend.Notification) []string {
	var out []string
	list, _ := n.Data["previous_networks"].([]any)
	for _, p := range list {
		m, _ := p.(map[string]any)
		out = append(out, fmt.Sprint(m["network"]))
	}
	return out
}

func testNetworkKnown(t *testing.T, s tokend.Store) {
	networkToken(t, s, "tok_one1")
	recordNetworks(t, s, use("tok_one1", netA, "203.0.113.7", t0, t0))
	recordNetworks(t, s, use("tok_one1", netB, "198.51.100.9", at(time.Minute), at(time.Minute)))
	// Again, 29 days later, from both; then a batch that arrives late.
	later := at(29 * 24 * time.Hour)
	recordNetworks(t, s,
		use("tok_one1", netA, "203.0.113.8", later, later.Add(time.Minute)),
		use("tok_one1", netB, "198.51.100.20", later, later))
	recordNetworks(t, s, use("tok_one1", netA, "203.0.113.7", at(time.Hour), at(time.Hour)))
	if evs := newNetworkEvents(t, s, "tok_one1"); len(evs) != 1 {
		t.Errorf("token.new_network events: %d, want only the one of %s", len(evs), netB)
	}
	want := []tokend.TokenNetwork{
		{Network: netA, FirstSeen: t0, LastSeen: later.Add(time.Minute)},
		{Network: netB, FirstSeen: at(time.Minute), LastSeen: later},
	}
	if d := diff(want, networksOf(t, s, "tok_one1")); d != "" {
		t.Errorf("networks (-want +got):\n%s", d)
	}
}

func testNetworkStale(t *testing.T, s tokend.Store) {
	networkToken(t, s, "tok_one1")
	recordNetworks(t, s, use("tok_one1", netA, "203.0.113.7", t0, t0))
	recordNetworks(t, s, use("tok_one1", netB, "198.51.100.9", at(time.Minute), at(time.Minute)))
	back := at(time.Minute + tokend.NewNetworkWindow + time.Second)
	recordNetworks(t, s, use("tok_one1", netB, "198.51.100.9", back, back))
	evs := newNetworkEvents(t, s, "tok_one1")
	if len(evs) != 2 || !evs[0].OccurredAt.Equal(back) {
		t.Fatalf("token.new_network events: %d, want 2, the second at %v", len(evs), back)
	}
	if got := fmt.Sprint(previousNetworks(evs[0])); got != "["+netA+"]" {
		t.Errorf("previous networks = %s, want [%s] (not the network itself)", got, netA)
	}
	got := networksOf(t, s, "tok_one1")
	if len(got) != 2 || got[0].Network != netB || !got[0].FirstSeen.Equal(back) {
		t.Errorf("networks = %+v, want %s first seen again at %v", got, netB, back)
	}
}

func testNetworkTrim(t *testing.T, s tokend.Store) {
	networkToken(t, s, "tok_one1")
	for i := range 12 {
		when := at(time.Duration(i) * time.Minute)
		recordNetworks(t, s, use("tok_one1", fmt.Sprintf("10.0.%d.0/24", i), fmt.Sprintf("10.0.%d.1", i), when, when))
	}
	// And three more in one batch.
	var batch []tokend.NetworkUse
	for i := 12; i < 15; i++ {
		when := at(time.Duration(i) * time.Minute)
		batch = append(batch, use("tok_one1", fmt.Sprintf("10.0.%d.0/24", i), "", when, when))
	}
	recordNetworks(t, s, batch...)
	got := networksOf(t, s, "tok_one1")
	if len(got) != tokend.MaxTokenNetworks {
		t.Fatalf("networks: %d, want %d", len(got), tokend.MaxTokenNetworks)
	}
	for i, n := range got {
		if want := fmt.Sprintf("10.0.%d.0/24", 14-i); n.Network != want {
			t.Errorf("networks[%d] = %s, want %s", i, n.Network, want)
		}
	}
	if evs := newNetworkEvents(t, s, "tok_one1"); len(evs) != 14 {
		t.Errorf("token.new_network events: %d, want 14 (all but the first)", len(evs))
	}
}

func testNetworkDeleted(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	networkToken(t, s, "tok_gone", "tok_live")
	recordNetworks(t, s, use("tok_gone", netA, "", t0, t0))
	if err := s.DeleteToken(ctx, "tok_gone", 0, newEvent(tokend.ActionTokenDelete, "app_a", "tok_gone")); err != nil {
		t.Fatal(err)
	}
	recordNetworks(t, s,
		use("tok_gone", netB, "", at(time.Minute), at(time.Minute)),
		use("tok_live", netA, "", at(time.Minute), at(time.Minute)),
		use("tok_never", netA, "", at(time.Minute), at(time.Minute)))
	if got := networksOf(t, s, "tok_gone"); len(got) != 0 {
		t.Errorf("networks of the deleted token = %v, want none", got)
	}
	if got := networksOf(t, s, "tok_live"); len(got) != 1 {
		t.Errorf("networks of the live token = %v, want its one", got)
	}
	if evs := newNetworkEvents(t, s, ""); len(evs) != 0 {
		t.Errorf("token.new_network events: %d, want none", len(evs))
	}
}

func testNetworkConcurrent(t *testing.T, s tokend.Store) {
	networkToken(t, s, "tok_race")
	NetworkRace(t, []tokend.Store{s}, "tok_race")
}

// NetworkRace records one token's new network from 8 goroutines spread over
// stores (several Store values of one database, as several instances are),
// each batch with another network the others share, and checks that the
// new network raised exactly one event and that no flush failed. The token
// must have no networks yet.
func NetworkRace(t *testing.T, stores []tokend.Store, tokenID string) {
	t.Helper()
	recordNetworks(t, stores[0], use(tokenID, netA, "203.0.113.7", t0, t0))
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for i := range 8 {
		s := stores[i%len(stores)]
		wg.Go(func() {
			when := at(time.Minute + time.Duration(i)*time.Millisecond)
			uses := []tokend.NetworkUse{use(tokenID, netB, "198.51.100.9", when, when), use(tokenID, netA, "203.0.113.7", when, when)}
			if i%2 == 1 {
				uses[0], uses[1] = uses[1], uses[0]
			}
			if err := s.RecordNetworks(t.Context(), uses, netEvent); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Errorf("8 concurrent flushes: errors %v", errs)
	}
	evs := newNetworkEvents(t, stores[0], tokenID)
	if len(evs) != 1 || evs[0].Data["network"] != netB {
		t.Errorf("token.new_network events: %d, want exactly 1, of %s", len(evs), netB)
	}
	got := networksOf(t, stores[0], tokenID)
	if len(got) != 2 || !got[0].LastSeen.Equal(at(time.Minute+7*time.Millisecond)) {
		t.Errorf("networks = %+v, want 2, last seen at the latest flush", got)
	}
}
