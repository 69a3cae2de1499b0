package verify

import (
	"context"
	"fmt"
	"maps"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/secret"
)

// bigMetadata is freshly allocated metadata of about n×size bytes of JSON.
func bigMetadata(n, size int) map[string]any {
	m := make(map[string]any, n)
	for i := range n {
		m[fmt.Sprintf("key_%d", i)] = strings.Repeat(string(rune('a'+i%26)), size)
	}
	return m
}

func withMetadata(m map[string]any) func(t *tokend.Token) {
	return func(t *tokend.Token) { t.Metadata = m }
}

// cacheBytes sums the bytes the shards track, and checks them against the
// entries they hold and the bounds.
func (e *Engine) cacheBytes(t *testing.T) int64 {
	t.Helper()
	var total int64
	for i := range e.cache.shard {
		sh := &e.cache.shard[i]
		sh.mu.RLock()
		var sum int64
		for _, ent := range sh.m {
			sum += int64(ent.size)
		}
		b, n := sh.bytes, len(sh.m)
		sh.mu.RUnlock()
		if sum != b {
			t.Errorf("shard %d tracks %d bytes, its entries add up to %d", i, b, sum)
		}
		if b > e.cache.bytesPerShard {
			t.Errorf("shard %d holds %d bytes, bound %d", i, b, e.cache.bytesPerShard)
		}
		if n > e.cache.perShard {
			t.Errorf("shard %d holds %d entries, bound %d", i, n, e.cache.perShard)
		}
		total += b
	}
	return total
}

func TestCacheStaysWithinItsByteBound(t *testing.T) {
	const bound = 512 << 10 // 8 KiB a shard: three of these tokens
	h := newHarness(t, func(o *Options) { o.CacheBytes = bound })
	var secs []string
	for range 1000 {
		secs = append(secs, h.token(withMetadata(bigMetadata(4, 300))))
	}
	for _, s := range secs {
		res := h.verify(tokend.VerifyRequest{Token: s})
		if res.Code != tokend.CodeValid || len(res.Token.Metadata) != 4 {
			t.Fatalf("%s, metadata %v", res.Code, res.Token.Metadata)
		}
	}
	n := h.e.cacheLen()
	b := h.e.cacheBytes(t)
	if b > bound {
		t.Fatalf("cache holds %d bytes, bound %d", b, bound)
	}
	if n == 0 || n >= 500 {
		t.Fatalf("cache holds %d entries (%d bytes): the byte bound should keep a few a shard", n, b)
	}
	t.Logf("%d entries, %d bytes, %d bytes an entry", n, b, b/int64(n))
	h.e.Flush(context.Background())
	if s := h.e.tokenStates(); s > n {
		t.Fatalf("%d token states after a flush for %d entries", s, n)
	}
	// Evicted tokens still verify, from storage.
	if c := h.code(secs[0]); c != tokend.CodeValid {
		t.Fatalf("an evicted token: %s", c)
	}
}

func TestCacheKeepsBothBounds(t *testing.T) {
	// Two entries and 8 KiB a shard: two of the big tokens exceed the bytes,
	// two small ones reach the count.
	const entries, bound = 128, 512 << 10
	h := newHarness(t, func(o *Options) { o.CacheEntries = entries; o.CacheBytes = bound })
	var secs []string
	for i := range 1500 {
		if i%3 == 0 {
			secs = append(secs, h.token(withMetadata(bigMetadata(4, 1500))))
		} else {
			secs = append(secs, h.token())
		}
	}
	for round := range 3 {
		for i, s := range secs {
			if c := h.code(s); c != tokend.CodeValid {
				t.Fatal(c)
			}
			if i%100 == 0 {
				h.e.AppChanged("app_1") // stale entries replaced in place
				h.e.cacheBytes(t)
			}
		}
		for range 200 {
			unknown, _ := secret.Generate("tkd")
			if c := h.code(unknown.Reveal()); c != tokend.CodeNotFound {
				t.Fatal(c)
			}
		}
		h.e.cacheBytes(t)
		t.Logf("round %d: %d entries", round, h.e.cacheLen())
	}
	if n := h.e.cacheLen(); n > entries {
		t.Fatalf("cache holds %d entries, bound %d", n, entries)
	}
	if b := h.e.cacheBytes(t); b > bound {
		t.Fatalf("cache holds %d bytes, bound %d", b, bound)
	}
}

func TestOversizedEntryIsServedButNotCached(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.CacheBytes = 96 << 10 }) // 1.5 KiB a shard
	meta := bigMetadata(4, 1000)
	big := h.token(withMetadata(meta), func(t *tokend.Token) { t.MaxUses = ptr(int64(3)) })
	small := h.token()
	for i := range 4 {
		res := h.verify(tokend.VerifyRequest{Token: big})
		want := tokend.CodeValid
		if i == 3 {
			want = tokend.CodeUsageExceeded
		}
		if res.Code != want || !maps.Equal(res.Token.Metadata, meta) {
			t.Fatalf("verification %d: %s, metadata %v", i, res.Code, res.Token.Metadata)
		}
	}
	if n := h.store.lookups.Load(); n != 4 {
		t.Fatalf("%d storage reads for 4 verifications of an uncached token, want 4", n)
	}
	if n := h.e.cacheLen(); n != 0 {
		t.Fatalf("cache holds %d entries", n)
	}
	h.code(small)
	h.code(small)
	if n := h.store.lookups.Load(); n != 5 {
		t.Fatalf("%d storage reads, want 5: a small token is still cached", n)
	}
	// The uncached entries' holds on the token state are all released.
	h.e.Flush(context.Background())
	if s := h.e.tokenStates(); s != 1 {
		t.Fatalf("%d token states after a flush, want the cached one only", s)
	}
	h.e.cacheBytes(t)
}

// freshStore answers every read with what renew allocates anew, as a real
// store does, so that the cache holds the only reference to it; it keeps no
// usage batches.
type freshStore struct {
	*fakeStore
	renew func(*tokend.Token)
}

func (s freshStore) TokenBySecret(ctx context.Context, hash []byte) (tokend.Credential, error) {
	c, err := s.fakeStore.TokenBySecret(ctx, hash)
	s.renew(&c.Token)
	return c, err
}

func (freshStore) RecordUsage(context.Context, tokend.UsageBatch) error { return nil }

func (freshStore) RecordActivity(context.Context, []tokend.Activity) error { return nil }

func TestCacheHeapStaysNearCacheBytes(t *testing.T) {
	if raceEnabled {
		t.Skip("heap sizes mean nothing under the race detector")
	}
	if testing.Short() {
		t.Skip("short")
	}
	const bound = 4 << 20
	h := newHarness(t, func(o *Options) { o.CacheBytes = bound })
	h.e.store = freshStore{h.store, func(t *tokend.Token) { t.Metadata = bigMetadata(8, 1000) }}
	var secs []string
	for range 3000 { // about 25 MiB of metadata were they all cached
		secs = append(secs, h.token())
	}
	grew := heapGrowth(t, h, secs, true)
	tracked := h.e.cacheBytes(t)
	t.Logf("%d entries, %d bytes tracked, heap grew %d bytes", h.e.cacheLen(), tracked, grew)
	if tracked > bound {
		t.Fatalf("cache tracks %d bytes, bound %d", tracked, bound)
	}
	// Generous: the estimate need only be right within a small factor.
	if grew > 2*bound+(2<<20) {
		t.Fatalf("heap grew %d bytes for a %d-byte cache", grew, bound)
	}
	runtime.KeepAlive(secs)
	runtime.KeepAlive(h)
}

func TestEntrySizeCountsWhatItHolds(t *testing.T) {
	h := newHarness(t)
	plain := h.token()
	rich := h.token(withMetadata(bigMetadata(2, 500)), func(t *tokend.Token) {
		t.Permissions = []string{strings.Repeat("p", 200)}
		t.AllowedOrigins = []string{"https://" + strings.Repeat("o", 200) + ".example"}
		t.AllowedIPs = []string{"10.0.0.0/8", "2001:db8::/32"}
	})
	h.code(plain)
	h.code(rich)
	size := func(sec string) int64 {
		ent := h.e.cache.get(ptr(h.hasher.Sum(sec)), h.clock.Now().UnixNano(), h.e.cacheTTL)
		if ent == nil {
			t.Fatal("not cached")
		}
		return int64(ent.size)
	}
	p, r := size(plain), size(rich)
	if p < int64(unsafe.Sizeof(entry{})+unsafe.Sizeof(tokend.VerifiedToken{})) {
		t.Fatalf("plain entry estimated at %d bytes", p)
	}
	if r-p < 1000+200+200 {
		t.Fatalf("rich entry estimated at %d bytes, plain at %d", r, p)
	}
	t.Logf("plain %d, rich %d, negative %d bytes", p, r, negativeEntrySize)
}

// tokend_cache_bytes stays honest for the common token, one without
// metadata or restrictions: the estimate of its entry is within a factor of
// what caching it really costs the heap (before the usage it collects is
// flushed).
func TestEntryEstimateNearHeapPerToken(t *testing.T) {
	if raceEnabled {
		t.Skip("heap sizes mean nothing under the race detector")
	}
	if testing.Short() {
		t.Skip("short")
	}
	h := newHarness(t)
	h.e.store = freshStore{h.store, func(t *tokend.Token) {
		t.ID, t.AppID, t.Name = strings.Clone(t.ID), strings.Clone(t.AppID), strings.Clone(t.Name)
	}}
	const n = 5000
	var secs []string
	for range n {
		secs = append(secs, h.token())
	}
	grew := heapGrowth(t, h, secs, false)
	tracked := h.e.cacheBytes(t)
	t.Logf("%d entries: estimated %d bytes each, heap grew %d bytes each", n, tracked/n, grew/n)
	if grew*2 < tracked || grew > 2*tracked {
		t.Fatalf("estimated %d bytes per entry, heap grew %d per entry: not within a factor of 2", tracked/n, grew/n)
	}
	runtime.KeepAlive(secs)
	runtime.KeepAlive(h)
}

// heapGrowth answers how much the live heap grows while h verifies secs
// (each VALID), and flushes when flush is set.
func heapGrowth(t *testing.T, h *harness, secs []string, flush bool) int64 {
	t.Helper()
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	for _, s := range secs {
		if c := h.code(s); c != tokend.CodeValid {
			t.Fatal(c)
		}
	}
	if flush {
		h.e.Flush(context.Background())
	}
	return int64(heap()) - int64(before)
}
