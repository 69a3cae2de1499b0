// Command cold measures, in-process, what verification costs when the
// secret is not in the engine's cache: the engine (verify.New) over the
// SQLite store that bench/seed filled, one goroutine, each sampled secret
// verified once (distinct secrets, so every one is a cache miss and a read
// from storage), then the same secrets again (cache hits) for comparison.
// Then it fills a fresh engine's cache with --mem-tokens tokens and reports
// the heap growth per cached token (runtime.MemStats.HeapAlloc after
// runtime.GC, before and after) and the growth of the resident set (VmRSS
// from /proc/self/status, after a GC that returns freed memory to the
// system), with --heap-profile the heap profile of the filled cache.
//
// bench/cold.sh runs it against a base revision too, alternating.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"reflect"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/sqlite"
	"github.com/tokend/tokend/internal/verify"
	"github.com/tokend/tokend/secret"
)

var (
	heapProfile   string
	trackNetworks bool
	// skew moves the engines' clock on (ns), so that the idle measure
	// sees tokens last used minutes ago without waiting for it.
	skew atomic.Int64
)

// idleFor is how long the tokens are idle when the idle memory is read.
const idleFor = 5 * time.Minute

// pepper is bench/seed's.
const pepper = "tokend-bench-pepper-0123456789abcdef"

func main() {
	db := flag.String("db", "bench.db", "SQLite database file made by bench/seed")
	secretsPath := flag.String("secrets", "bench-secrets.txt", "secrets file made by bench/seed")
	samples := flag.Int("samples", 20_000, "cache-miss verifications to time")
	memTokens := flag.Int("mem-tokens", 100_000, "tokens to cache for the memory measure")
	flag.BoolVar(&trackNetworks, "track-networks", true, "note each token's networks, as serve does by default (--track-networks)")
	flag.StringVar(&heapProfile, "heap-profile", "", "write the heap profile (go tool pprof -sample_index=inuse_space) of the filled cache to this file")
	flag.Parse()
	if err := run(*db, *secretsPath, *samples, *memTokens); err != nil {
		log.Fatal(err)
	}
}

func run(path, secretsPath string, samples, memTokens int) error {
	ctx := context.Background()
	secrets, err := readLines(secretsPath)
	if err != nil {
		return err
	}
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return err
	}
	defer st.Close()
	h, err := secret.NewHasher([]byte(pepper))
	if err != nil {
		return err
	}
	fmt.Printf("cold: %d tokens in %s; GOMAXPROCS %d\n", len(secrets), path, runtime.GOMAXPROCS(0))
	rand.Shuffle(len(secrets), func(i, j int) { secrets[i], secrets[j] = secrets[j], secrets[i] })
	samples = min(samples, len(secrets))
	memTokens = min(memTokens, len(secrets)-samples)

	cs := &countingStore{Store: st}
	newEngine := func(entries int) *verify.Engine {
		// A day's TTL: filling a million entries on a busy machine
		// takes longer than the default minute, after which the second
		// pass would read every token again.
		o := verify.Options{Store: cs, Hasher: h, CacheEntries: entries, CacheTTL: 24 * time.Hour, FailureLimit: 0,
			Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }}
		// When the engine also bounds its cache in bytes (CacheBytes),
		// lift that bound too, so that the fill measures the cost of
		// entries rather than evictions. Set by name so that this program
		// builds whether or not the option exists.
		if f := reflect.ValueOf(&o).Elem().FieldByName("CacheBytes"); f.IsValid() && f.CanSet() && f.Kind() == reflect.Int64 {
			f.SetInt(1 << 40)
		}
		// As serve runs it by default; by name for the same reason.
		if f := reflect.ValueOf(&o).Elem().FieldByName("TrackNetworks"); f.IsValid() && f.CanSet() && f.Kind() == reflect.Bool {
			f.SetBool(trackNetworks)
		}
		return verify.New(o)
	}
	e := newEngine(2 * samples)
	timeAll := func(label string, secs []string) error {
		lat := make([]time.Duration, 0, len(secs))
		start := time.Now()
		for _, s := range secs {
			t0 := time.Now()
			res, err := e.Verify(ctx, tokend.VerifyRequest{Token: s, Permissions: []string{"read"}, IP: "203.0.113.7"})
			lat = append(lat, time.Since(t0))
			if err != nil {
				return err
			}
			if res.Code != tokend.CodeValid {
				return fmt.Errorf("%s: a seeded token answered %s", label, res.Code)
			}
		}
		el := time.Since(start)
		slices.Sort(lat)
		fmt.Printf("%-28s n=%d  p50 %s  p90 %s  p99 %s  max %s  (%.0f/s on one goroutine)\n", label, len(lat),
			q(lat, 0.50), q(lat, 0.90), q(lat, 0.99), lat[len(lat)-1], float64(len(lat))/el.Seconds())
		return nil
	}
	if err := timeAll("miss (read from SQLite)", secrets[:samples]); err != nil {
		return err
	}
	if err := timeAll("hit (same secrets again)", secrets[:samples]); err != nil {
		return err
	}

	// Memory per cached token: a fresh engine, big enough not to evict.
	fill := secrets[samples : samples+memTokens]
	e = nil
	var before, after runtime.MemStats
	settle()
	runtime.ReadMemStats(&before)
	rssBefore, err := rss()
	if err != nil {
		return err
	}
	m := newEngine(2 * memTokens)
	for _, s := range fill {
		if res, err := m.Verify(ctx, tokend.VerifyRequest{Token: s, IP: "203.0.113.7"}); err != nil || res.Code != tokend.CodeValid {
			return fmt.Errorf("filling the cache: %v %v", res.Code, err)
		}
	}
	settle()
	runtime.ReadMemStats(&after)
	rssAfter, err := rss()
	if err != nil {
		return err
	}
	if heapProfile != "" {
		f, err := os.Create(heapProfile)
		if err != nil {
			return err
		}
		if err := pprof.WriteHeapProfile(f); err != nil {
			return err
		}
		f.Close()
	}
	// A second pass must be all hits: the cache really holds them.
	reads := cs.calls.Load()
	hits := time.Now()
	for _, s := range fill {
		m.Verify(ctx, tokend.VerifyRequest{Token: s, IP: "203.0.113.7"})
	}
	hitTime := time.Since(hits)
	misses := cs.calls.Load() - reads
	grow := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	fmt.Printf("memory: %d tokens cached, heap +%.1f MiB = %d bytes per cached token (second pass: %s per verification, %d storage reads: the cache held %s)\n",
		memTokens, float64(grow)/(1<<20), grow/int64(memTokens), hitTime/time.Duration(memTokens), misses,
		map[bool]string{true: "every token", false: "NOT every token; the figure is a lower bound"}[misses == 0])
	fmt.Printf("memory: RSS %.1f MiB -> %.1f MiB = %d bytes per cached token\n",
		float64(rssBefore)/(1<<20), float64(rssAfter)/(1<<20), (rssAfter-rssBefore)/int64(memTokens))

	// A server flushes usage every few seconds: once the tokens sit idle
	// in the cache, what they hold after three flushes, minutes after
	// their last use (the engine's clock is moved on), is what a cache of
	// a million tokens costs for most of its life.
	cs.discard.Store(true)
	skew.Store(int64(idleFor))
	t0 := time.Now()
	for range 3 {
		if err := m.Flush(ctx); err != nil {
			return fmt.Errorf("flush: %w", err)
		}
	}
	flushed := time.Since(t0)
	settle()
	runtime.ReadMemStats(&after)
	if rssAfter, err = rss(); err != nil {
		return err
	}
	runtime.KeepAlive(m)
	runtime.KeepAlive(secrets) // measured in both, not freed between
	grow = int64(after.HeapAlloc) - int64(before.HeapAlloc)
	fmt.Printf("memory, idle for %s after three flushes (%s, their writes discarded): heap +%.1f MiB = %d bytes, RSS %.1f MiB = %d bytes per cached token\n",
		idleFor, flushed.Round(time.Millisecond), float64(grow)/(1<<20), grow/int64(memTokens),
		float64(rssAfter)/(1<<20), (rssAfter-rssBefore)/int64(memTokens))
	return nil
}

// settle collects garbage and returns what it freed to the system, so that
// the heap and the resident set are of live memory.
func settle() {
	runtime.GC()
	debug.FreeOSMemory()
}

// rss reads this process's resident set (VmRSS) in bytes.
func rss() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for l := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS in /proc/self/status")
}

// countingStore counts TokenBySecret calls. With discard set, it takes the
// usage and activity flushes write without writing them: the memory phase
// measures what the engine holds, not how fast SQLite takes a million
// usage rows.
type countingStore struct {
	tokend.Store
	calls   atomic.Int64
	discard atomic.Bool
}

func (c *countingStore) RecordUsage(ctx context.Context, b tokend.UsageBatch) error {
	if c.discard.Load() {
		return nil
	}
	return c.Store.RecordUsage(ctx, b)
}

func (c *countingStore) RecordActivity(ctx context.Context, rows []tokend.Activity) error {
	if c.discard.Load() {
		return nil
	}
	return c.Store.RecordActivity(ctx, rows)
}

func (c *countingStore) RecordNetworks(ctx context.Context, uses []tokend.NetworkUse, raise func(tokend.NewNetwork) tokend.Event) error {
	if c.discard.Load() {
		return nil
	}
	return c.Store.RecordNetworks(ctx, uses, raise)
}

func (c *countingStore) TokenBySecret(ctx context.Context, hash []byte) (tokend.Credential, error) {
	c.calls.Add(1)
	return c.Store.TokenBySecret(ctx, hash)
}

func q(s []time.Duration, p float64) time.Duration {
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := sc.Text(); l != "" {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}
