package verify

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/secret"
)

// testPepper is the pepper of the filter tests.
var testPepper = []byte("0123456789abcdef0123456789abcdef-test-pepper")

func randomDigest(t testing.TB) [32]byte {
	var d [32]byte
	if _, err := rand.Read(d[:]); err != nil {
		t.Fatal(err)
	}
	return d
}

// Every digest added is found, also when adds run on several goroutines at
// once (the race detector watches the atomic words).
func TestBloomHasNoFalseNegatives(t *testing.T) {
	for _, n := range []int{0, 1, 1000, 100_000} {
		b := newBloom(n)
		in := make([][32]byte, max(n, 1000)*2) // past its build size
		for i := range in {
			in[i] = randomDigest(t)
		}
		var wg sync.WaitGroup
		const workers = 4
		for w := range workers {
			wg.Go(func() {
				for i := w; i < len(in); i += workers {
					b.add(&in[i])
				}
			})
		}
		wg.Wait()
		for i := range in {
			if !b.has(&in[i]) {
				t.Fatalf("n=%d: digest %d of %d added is not found", n, i, len(in))
			}
		}
	}
}

// Sized for n, the filter takes at most 2 bytes a digest (a small one
// takes its floor of filterMinBits), and at the size that asks for a
// rebuild it answers at most 1 % of random digests never added: counted,
// over enough lookups that the count means something.
func TestBloomSizeAndFalsePositiveRate(t *testing.T) {
	for _, n := range []int{10_000, 200_000} {
		b := newBloom(n)
		if got := float64(b.bytes()) / float64(n); got > 2.01 {
			t.Errorf("n=%d: %.2f bytes a digest at build, want ≤ 2", n, got)
		}
		full := false
		added := 0
		for !full {
			d := randomDigest(t)
			full = b.add(&d)
			added++
		}
		if added < n {
			t.Errorf("n=%d: a rebuild was asked for after %d adds, fewer than it was built for", n, added)
		}
		const probes = 400_000
		fp := 0
		for range probes {
			d := randomDigest(t)
			if b.has(&d) {
				fp++
			}
		}
		rate := float64(fp) / probes
		t.Logf("n=%d: %d digests at the rebuild limit (%.1f bits each): %d of %d unknown digests pass (%.3f %%)",
			n, added, float64(b.bits)/float64(added), fp, probes, 100*rate)
		if rate > 0.01 {
			t.Errorf("n=%d: false-positive rate %.3f %% at the rebuild limit, want ≤ 1 %%", n, 100*rate)
		}
	}
}

// newFilterEngine makes an engine on the fake store, running Run until
// the test ends.
func newFilterEngine(t *testing.T, st *fakeStore, o Options) *Engine {
	t.Helper()
	h, err := secret.NewHasher(testPepper)
	if err != nil {
		t.Fatal(err)
	}
	return runEngine(t, st, h, o)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// addCred stores a token for a new secret, as a write through another
// instance would (the engine is not told).
func addCred(t *testing.T, st *fakeStore, id string, h *secret.Hasher) string {
	t.Helper()
	sec, err := secret.Generate("tkd")
	if err != nil {
		t.Fatal(err)
	}
	d := h.Sum(sec.Reveal())
	st.mu.Lock()
	st.creds[d] = tokend.Credential{Token: tokend.Token{ID: id, AppID: "app_a", Status: tokend.StatusActive, Access: tokend.AccessFull, Type: tokend.TypeStandard}}
	st.mu.Unlock()
	return sec.Reveal()
}

func unknownSecret(t testing.TB) string {
	sec, err := secret.Generate("tkd")
	if err != nil {
		t.Fatal(err)
	}
	return sec.Reveal()
}

// A flood of distinct well-formed unknown secrets, from many addresses,
// costs (almost) no storage read once the filter is built, as the metric's
// counter shows; before it is built each costs one.
func TestAFloodOfUnknownSecretsReadsNoStorage(t *testing.T) {
	st := newFakeStore()
	h, _ := secret.NewHasher(testPepper)
	for i := range 2000 {
		addCred(t, st, fmt.Sprintf("tok_%d", i), h)
	}
	e := newFilterEngine(t, st, Options{FailureLimit: 100})
	waitFor(t, "the filter's first build", e.FilterReady)
	const flood = 20_000
	before := e.StorageReads()
	for i := range flood {
		ip := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		res, err := e.Verify(t.Context(), tokend.VerifyRequest{Token: unknownSecret(t), Peer: ip, IP: ip})
		if err != nil || res.Code != tokend.CodeNotFound {
			t.Fatalf("an unknown secret answered %s, %v", res.Code, err)
		}
	}
	reads := e.StorageReads() - before
	t.Logf("%d unknown secrets from %d addresses: %d storage reads", flood, flood, reads)
	if reads > flood/100 {
		t.Errorf("%d storage reads for %d unknown secrets, want ≤ 1 %%", reads, flood)
	}
	if n := st.lookups.Load(); n != int64(reads) {
		t.Errorf("the store was asked %d times, the metric says %d", n, reads)
	}
}

// The filter rules nothing out before it is built, while a token told
// changed is not read yet, and while out of sync until it is built again
// after Resync: in each, a token written without the engine hearing of it
// directly is still found.
func TestTheFilterRulesOutOnlyWhenComplete(t *testing.T) {
	st := newFakeStore()
	h, _ := secret.NewHasher(testPepper)
	e := newFilterEngine(t, st, Options{FilterConfirm: -1})
	waitFor(t, "the filter's first build", e.FilterReady)
	verify := func(sec string) tokend.Code {
		t.Helper()
		res, err := e.Verify(t.Context(), tokend.VerifyRequest{Token: sec})
		if err != nil {
			t.Fatal(err)
		}
		return res.Code
	}

	// Told changed (a create elsewhere, relayed): found, then ruled in.
	sec := addCred(t, st, "tok_told", h)
	e.TokenChanged("tok_told")
	if got := verify(sec); got != tokend.CodeValid {
		t.Errorf("a token told created answered %s", got)
	}
	waitFor(t, "the told token's secret to be read", e.FilterReady)
	e.cache.dropNegative()
	e.TokenChanged("tok_told") // drop the cached entry
	waitFor(t, "the told token's secret to be read", e.FilterReady)
	reads := e.StorageReads()
	if got := verify(sec); got != tokend.CodeValid || e.StorageReads() != reads+1 {
		t.Errorf("the told token answered %s with %d reads after the filter had it", got, e.StorageReads()-reads)
	}

	// Out of sync: a token written meanwhile, never told, is found.
	e.OutOfSync(time.Now())
	missed := addCred(t, st, "tok_missed", h)
	if e.FilterReady() {
		t.Error("the filter rules out while out of sync")
	}
	if got := verify(missed); got != tokend.CodeValid {
		t.Errorf("a token created while out of sync answered %s", got)
	}
	// Resync: rebuilt before it rules out again, and then it has the
	// missed token.
	e.Resync()
	waitFor(t, "the rebuild after Resync", e.FilterReady)
	e.cache.dropNegative()
	e.TokenChanged("tok_missed")
	waitFor(t, "the read of the told token", e.FilterReady)
	if got := verify(missed); got != tokend.CodeValid {
		t.Errorf("after Resync, the token missed while out of sync answered %s", got)
	}
	reads = e.StorageReads()
	if got := verify(unknownSecret(t)); got != tokend.CodeNotFound || e.StorageReads() != reads {
		t.Errorf("after the rebuild an unknown secret answered %s with %d reads", got, e.StorageReads()-reads)
	}

	// Out of sync, then caught up by a poller that relayed what it
	// missed (no Resync): the filter is built again and rules out again.
	e.OutOfSync(time.Now())
	e.CaughtUp()
	waitFor(t, "the rebuild after CaughtUp", e.FilterReady)
	reads = e.StorageReads()
	if got := verify(unknownSecret(t)); got != tokend.CodeNotFound || e.StorageReads() != reads {
		t.Errorf("after CaughtUp an unknown secret answered %s with %d reads", got, e.StorageReads()-reads)
	}
}

// Storage that fails the first build: nothing is ruled out (each unknown
// secret is read, as without a filter), and the build is tried again.
func TestAFailedBuildRulesNothingOut(t *testing.T) {
	st := newFakeStore()
	st.lookupErr = context.DeadlineExceeded
	e := newFilterEngine(t, st, Options{})
	if e.FilterReady() {
		t.Fatal("the filter is ready without a build")
	}
	_, err := e.Verify(t.Context(), tokend.VerifyRequest{Token: unknownSecret(t)})
	if err == nil || st.lookups.Load() != 1 {
		t.Errorf("an unknown secret with storage down: %v after %d reads; want an error after one", err, st.lookups.Load())
	}
}

// With the filter off every unknown secret is read, as before it existed.
func TestNoFilterReadsEveryUnknownSecret(t *testing.T) {
	st := newFakeStore()
	e := newFilterEngine(t, st, Options{NoFilter: true})
	for range 10 {
		if _, err := e.Verify(t.Context(), tokend.VerifyRequest{Token: unknownSecret(t)}); err != nil {
			t.Fatal(err)
		}
	}
	if e.StorageReads() != 10 || e.FilterReady() {
		t.Errorf("with the filter off: %d reads for 10 unknown secrets, ready %v", e.StorageReads(), e.FilterReady())
	}
}

// A token written through another instance whose notice has not arrived
// yet is found all the same while reads of ruled-out secrets stay within
// the budget (no flood): the engine answers as it would without a filter.
func TestARuledOutSecretIsReadWithinTheBudget(t *testing.T) {
	st := newFakeStore()
	h, _ := secret.NewHasher(testPepper)
	e := newFilterEngine(t, st, Options{})
	waitFor(t, "the filter's first build", e.FilterReady)
	sec := addCred(t, st, "tok_elsewhere", h) // not told
	if res, err := e.Verify(t.Context(), tokend.VerifyRequest{Token: sec}); err != nil || res.Code != tokend.CodeValid {
		t.Errorf("a token not yet told answered %s, %v; want VALID within the budget", res.Code, err)
	}
	var c confirmBudget
	c.init(DefaultFilterConfirm)
	n := 0
	for range 10_000 {
		if c.take(0) {
			n++
		}
	}
	if n != DefaultFilterConfirm*filterConfirmBurst {
		t.Errorf("a burst at one instant took %d reads, want %d", n, DefaultFilterConfirm*filterConfirmBurst)
	}
	if !c.take(int64(time.Second)) {
		t.Error("no read a second later")
	}
}
