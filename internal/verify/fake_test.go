package verify

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/testclock"
	"github.com/tokend/tokend/secret"
)

// fakeStore keeps credentials by secret hash and records what the engine
// writes. Only the methods the engine calls are implemented; any other call
// panics on the nil embedded interface, which is what a test wants.
type fakeStore struct {
	tokend.Store

	mu      sync.Mutex
	creds   map[[32]byte]tokend.Credential
	batches []tokend.UsageBatch
	events  []tokend.Event
	// activity is every RecordActivity batch written.
	activity [][]tokend.Activity

	lookups    atomic.Int64
	decoyReads atomic.Int64 // DecoySecrets calls
	lookupErr  error        // answered by TokenBySecret when set
	usageErr   error        // answered by RecordUsage when set
	eventErr   error
	takeErr    error // answered by TakeUse when set
	usageCalls atomic.Int64
	actCalls   atomic.Int64
	actErr     error                        // answered by RecordActivity when set
	refuseAct  func(a tokend.Activity) bool // refuses a batch holding such a row
	takes      atomic.Int64
	// networks is every RecordNetworks batch written; netErr is answered
	// by RecordNetworks when set.
	networks [][]tokend.NetworkUse
	netErr   error
	// refuse, when set, makes RecordUsage refuse a batch holding a row it
	// answers true for, as a database refuses a bad value.
	refuse func(c *tokend.UsageCount, l *tokend.LastUse) bool
}

// TakeUse counts a use of every credential of the token, as the one row a
// real store keeps.
func (s *fakeStore) TakeUse(ctx context.Context, id string) (bool, error) {
	s.takes.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.takeErr != nil {
		return false, s.takeErr
	}
	ok := false
	for k, c := range s.creds {
		if c.Token.ID != id || c.Token.MaxUses == nil {
			continue
		}
		if c.Token.UseCount >= *c.Token.MaxUses {
			return false, nil
		}
		c.Token.UseCount++
		s.creds[k] = c
		ok = true
	}
	return ok, nil
}

func newFakeStore() *fakeStore {
	return &fakeStore{creds: make(map[[32]byte]tokend.Credential)}
}

func (s *fakeStore) TokenBySecret(ctx context.Context, hash []byte) (tokend.Credential, error) {
	s.lookups.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lookupErr != nil {
		return tokend.Credential{}, s.lookupErr
	}
	c, ok := s.creds[[32]byte(hash)]
	if !ok {
		return tokend.Credential{}, tokend.ErrNotFound
	}
	return c, nil
}

// DecoySecrets answers the hash of every decoy credential, as a real store
// reads a decoy's current and retired secrets.
func (s *fakeStore) DecoySecrets(ctx context.Context) ([]tokend.DecoySecret, error) {
	s.decoyReads.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lookupErr != nil {
		return nil, s.lookupErr
	}
	var out []tokend.DecoySecret
	for k, c := range s.creds {
		if c.Token.Decoy {
			out = append(out, tokend.DecoySecret{Hash: bytes.Clone(k[:]), Token: c.Token})
		}
	}
	return out, nil
}

// SecretHashes answers every credential's hash (of the tokens named, when
// any are), as a real store reads current and retired secrets.
func (s *fakeStore) SecretHashes(ctx context.Context, ids []string, fn func([]byte)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lookupErr != nil {
		return s.lookupErr
	}
	for k, c := range s.creds {
		if ids == nil || slices.Contains(ids, c.Token.ID) {
			fn(k[:])
		}
	}
	return nil
}

func (s *fakeStore) CountSecrets(ctx context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.creds), s.lookupErr
}

func (s *fakeStore) RecordUsage(ctx context.Context, b tokend.UsageBatch) error {
	s.usageCalls.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.usageErr != nil {
		return s.usageErr
	}
	if s.refuse != nil {
		for i := range b.Counts {
			if s.refuse(&b.Counts[i], nil) {
				return fmt.Errorf("fake: a row of the batch is refused")
			}
		}
		for i := range b.Last {
			if s.refuse(nil, &b.Last[i]) {
				return fmt.Errorf("fake: a row of the batch is refused")
			}
		}
	}
	s.batches = append(s.batches, b)
	return nil
}

func (s *fakeStore) RecordActivity(ctx context.Context, rows []tokend.Activity) error {
	s.actCalls.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.actErr != nil {
		return s.actErr
	}
	for _, a := range rows {
		if s.refuseAct != nil && s.refuseAct(a) {
			return fmt.Errorf("fake: an activity row of the batch is refused")
		}
		// What PostgreSQL refuses in text.
		if strings.ContainsRune(a.IP+a.Method+a.Path, 0) {
			return fmt.Errorf("fake: NUL in text")
		}
	}
	s.activity = append(s.activity, slices.Clone(rows))
	return nil
}

// activityOf answers every row written for the token, in write order.
func (s *fakeStore) activityOf(id string) []tokend.Activity {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []tokend.Activity
	for _, b := range s.activity {
		for _, a := range b {
			if a.TokenID == id {
				out = append(out, a)
			}
		}
	}
	return out
}

func (s *fakeStore) RecordNetworks(ctx context.Context, uses []tokend.NetworkUse, raise func(tokend.NewNetwork) tokend.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.netErr != nil {
		return s.netErr
	}
	s.networks = append(s.networks, slices.Clone(uses))
	return nil
}

// networkBatches answers every RecordNetworks batch written, each sorted
// by token and network.
func (s *fakeStore) networkBatches() [][]tokend.NetworkUse {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]tokend.NetworkUse, len(s.networks))
	for i, b := range s.networks {
		out[i] = slices.Clone(b)
		slices.SortFunc(out[i], func(x, y tokend.NetworkUse) int {
			return strings.Compare(x.TokenID+" "+x.Network, y.TokenID+" "+y.Network)
		})
	}
	return out
}

func (s *fakeStore) AppendEvent(ctx context.Context, ev tokend.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.eventErr != nil {
		return s.eventErr
	}
	s.events = append(s.events, ev)
	return nil
}

// put stores a credential under the hash of sec.
func (s *fakeStore) put(h *secret.Hasher, sec string, c tokend.Credential) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.creds[h.Sum(sec)] = c
}

// update changes the stored token of every credential with this id, as an
// UpdateToken would.
func (s *fakeStore) update(id string, fn func(t *tokend.Token)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, c := range s.creds {
		if c.Token.ID == id {
			fn(&c.Token)
			s.creds[k] = c
		}
	}
}

func (s *fakeStore) set(fn func(s *fakeStore)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s)
}

func (s *fakeStore) recorded() ([]tokend.UsageBatch, []tokend.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]tokend.UsageBatch(nil), s.batches...), append([]tokend.Event(nil), s.events...)
}

// clock is a fake time source that tests move by hand.
type clock = testclock.Clock

func newClock() *clock { return testclock.New(time.Date(2030, 5, 17, 10, 20, 30, 0, time.UTC)) }

// harness wires an engine to a fake store and clock, and counts HMACs.
type harness struct {
	t      testing.TB
	e      *Engine
	store  *fakeStore
	clock  *clock
	hasher *secret.Hasher
	hmacs  atomic.Int64
}

func newHarness(t testing.TB, edit ...func(o *Options)) *harness {
	t.Helper()
	h, err := secret.NewHasher([]byte("0123456789abcdef0123456789abcdef-test-pepper"))
	if err != nil {
		t.Fatal(err)
	}
	hs := &harness{t: t, store: newFakeStore(), clock: newClock(), hasher: h}
	o := Options{Store: hs.store, Hasher: h, Now: hs.clock.Now}
	for _, f := range edit {
		f(&o)
	}
	hs.e = New(o)
	sum := hs.e.sum
	hs.e.sum = func(s string) [32]byte {
		hs.hmacs.Add(1)
		return sum(s)
	}
	return hs
}

var tokenSeq atomic.Int64

// token stores a new active full_access standard token, changed by edit,
// and answers its secret.
func (h *harness) token(edit ...func(t *tokend.Token)) string {
	h.t.Helper()
	sec, err := secret.Generate("tkd")
	if err != nil {
		h.t.Fatal(err)
	}
	tok := tokend.Token{
		ID:     fmt.Sprintf("tok_%d", tokenSeq.Add(1)),
		AppID:  "app_1",
		Name:   "test",
		Type:   tokend.TypeStandard,
		Access: tokend.AccessFull,
		Status: tokend.StatusActive,
	}
	for _, f := range edit {
		f(&tok)
	}
	h.store.put(h.hasher, sec.Reveal(), tokend.Credential{Token: tok, Catalog: testCatalog})
	return sec.Reveal()
}

// testCatalog is the permission catalog of the harness's app.
var testCatalog = []string{
	"orders:read", "orders:list", "orders:write", "orders:delete", "users:read", "users:write", "x:read", "x:write",
}

// setCatalog changes the catalog of an app, as UpdateApp would.
func (s *fakeStore) setCatalog(appID string, catalog []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, c := range s.creds {
		if c.Token.AppID == appID {
			c.Catalog = catalog
			s.creds[k] = c
		}
	}
}

func (h *harness) verify(r tokend.VerifyRequest) tokend.VerifyResult {
	h.t.Helper()
	res, err := h.e.Verify(context.Background(), r)
	if err != nil {
		h.t.Fatalf("Verify: %v", err)
	}
	return res
}

func (h *harness) code(tok string) tokend.Code {
	h.t.Helper()
	return h.verify(tokend.VerifyRequest{Token: tok}).Code
}

func newTextLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
