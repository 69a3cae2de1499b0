// Command flood measures, in-process, what a flood of bad secrets costs the
// verification engine: how many storage lookups it causes (the engine runs
// over a counting wrapper of the SQLite store) and what it does to the
// latency of a valid token verified at the same time.
//
// Phases, each on a fresh engine (whose filter of known secrets is built
// before the phase starts), each bounded by --n requests and --max-time:
//
//	malformed          secrets whose checksum is wrong, or not secrets at all
//	unknown            well-formed secrets (secret.Generate) that no token has,
//	                   all distinct, from --spread addresses, throttle off
//	unknown+throttle   the same from one address, FailureLimit --failure-limit
//	unknown+throttle/  the same spread over --spread addresses
//	spread
//
// Each runs with the filter (phase/filter) and without it (phase/nofilter,
// verify.Options.NoFilter), one after the other, for --rounds rounds. A
// prober verifies one valid token every --probe-every from another address
// during each phase and, for --alone before it on the same engine, alone:
// each phase prints its storage reads per request and its p50 and p99 as
// ratios to the prober alone; the summary prints the medians over rounds.
//
// --rebuild-db FILE measures the filter instead: the time to build it from
// that database (bench/seed --bulk makes one of a million tokens) and its
// memory, --rounds times.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/sqlite"
	"github.com/tokend/tokend/internal/verify"
	"github.com/tokend/tokend/secret"
)

// countingStore counts TokenBySecret calls, and those for the valid token.
type countingStore struct {
	tokend.Store
	calls, validCalls atomic.Int64
	valid             [32]byte
}

func (c *countingStore) TokenBySecret(ctx context.Context, hash []byte) (tokend.Credential, error) {
	c.calls.Add(1)
	if [32]byte(hash) == c.valid {
		c.validCalls.Add(1)
	}
	return c.Store.TokenBySecret(ctx, hash)
}

type phase struct {
	name     string
	kind     string // malformed or unknown
	limit    int    // FailureLimit
	spread   int    // distinct flood addresses
	workers  int
	noFilter bool
}

// result is what one phase measured.
type result struct {
	readsPerRequest float64
	p50, p99        float64 // ratios to the prober alone
}

// floodRate is --rate.
var floodRate float64

func main() {
	n := flag.Int("n", 100_000, "flood requests per phase")
	maxTime := flag.Duration("max-time", 3*time.Minute, "upper bound on each phase")
	limit := flag.Int("failure-limit", 100, "FailureLimit of the throttled phases (tokend's default)")
	spread := flag.Int("spread", 65536, "flood addresses of the spread phase")
	probeEvery := flag.Duration("probe-every", 500*time.Microsecond, "pause between two verifications of the valid token")
	only := flag.String("phases", "", "comma-separated phase names to run (e.g. unknown/filter); all when empty")
	rounds := flag.Int("rounds", 1, "rounds of every phase, alternating")
	alone := flag.Duration("alone", 2*time.Second, "how long the prober runs alone before each phase")
	flag.Float64Var(&floodRate, "rate", 0, "flood requests per second in all, paced (0: as fast as the flood goroutines go); a paced flood leaves the prober the CPU it had alone, so that what is left of the p99 ratio is the flood's cost rather than its share of the cores")
	rebuildDB := flag.String("rebuild-db", "", "measure building the filter from this SQLite database instead of a flood")
	flag.Parse()
	if *rebuildDB != "" {
		if err := measureRebuild(*rebuildDB, *rounds); err != nil {
			log.Fatal(err)
		}
		return
	}
	if err := run(*n, *maxTime, *limit, *spread, *probeEvery, *alone, *only, *rounds); err != nil {
		log.Fatal(err)
	}
}

func run(n int, maxTime time.Duration, limit, spread int, probeEvery, alone time.Duration, only string, rounds int) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "tokend-flood-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	st, h, err := openBench(ctx, filepath.Join(dir, "flood.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	now := time.Now().UTC()
	ev := tokend.Event{Time: now, Actor: "system", ActorName: "bench", Action: tokend.ActionAppCreate, AppID: "app_flood"}
	if err := st.CreateApp(ctx, tokend.App{ID: "app_flood", Name: "flood", TokenPrefix: "bench", CreatedAt: now, UpdatedAt: now, Version: 1}, ev); err != nil {
		return err
	}
	validSec, err := secret.Generate("bench")
	if err != nil {
		return err
	}
	valid := validSec.Reveal()
	sum := h.Sum(valid)
	ev.Action, ev.TokenID = tokend.ActionTokenCreate, "tok_flood_valid"
	if err := st.CreateToken(ctx, tokend.Token{
		ID: "tok_flood_valid", AppID: "app_flood", Name: "valid", Type: tokend.TypeStandard, Access: tokend.AccessReadOnly,
		Status: tokend.StatusActive, Masked: validSec.String(), CreatedAt: now, UpdatedAt: now, Version: 1, SecretHash: sum[:],
	}, ev); err != nil {
		return err
	}
	cs := &countingStore{Store: st, valid: sum}
	workers := runtime.GOMAXPROCS(0)
	fmt.Printf("flood: %d requests per phase, %d flood goroutines, GOMAXPROCS %d, probe every %s, cache 100000 entries\n",
		n, workers, runtime.GOMAXPROCS(0), probeEvery)

	var phases []phase
	for _, p := range []phase{
		{name: "malformed", kind: "malformed", workers: workers},
		{name: "unknown", kind: "unknown", spread: spread, workers: workers},
		{name: "unknown+throttle", kind: "unknown", limit: limit, spread: 1, workers: workers},
		{name: "unknown+throttle/spread", kind: "unknown", limit: limit, spread: spread, workers: workers},
	} {
		for _, off := range []bool{false, true} {
			q := p
			q.noFilter = off
			q.name += map[bool]string{false: "/filter", true: "/nofilter"}[off]
			if only == "" || slices.Contains(strings.Split(only, ","), q.name) {
				phases = append(phases, q)
			}
		}
	}
	results := map[string][]result{}
	for round := range rounds {
		fmt.Printf("round %d\n", round+1)
		for _, p := range phases {
			r, err := runPhase(ctx, cs, h, valid, p, n, maxTime, probeEvery, alone)
			if err != nil {
				return err
			}
			results[p.name] = append(results[p.name], r)
		}
	}
	fmt.Printf("medians over %d rounds (load average at the end: %s)\n", rounds, loadAvg())
	for _, p := range phases {
		rs := results[p.name]
		med := func(f func(r result) float64) float64 {
			v := make([]float64, len(rs))
			for i, r := range rs {
				v[i] = f(r)
			}
			slices.Sort(v)
			return v[len(v)/2]
		}
		fmt.Printf("%-34s storage reads/request %.4f; valid token during the flood / alone: p50 x%.2f, p99 x%.2f\n",
			p.name, med(func(r result) float64 { return r.readsPerRequest }),
			med(func(r result) float64 { return r.p50 }), med(func(r result) float64 { return r.p99 }))
	}
	return nil
}

// loadAvg answers the first three fields of /proc/loadavg, or "?".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func runPhase(ctx context.Context, cs *countingStore, h *secret.Hasher, valid string, p phase, n int, maxTime, probeEvery, alone time.Duration) (result, error) {
	e := verify.New(verify.Options{Store: cs, Hasher: h, FailureLimit: p.limit, NoFilter: p.noFilter})
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	runDone := make(chan struct{})
	go func() { e.Run(runCtx); close(runDone) }()
	if !p.noFilter {
		for !e.FilterReady() {
			time.Sleep(time.Millisecond)
		}
	}
	// Warm the valid token into the cache, then the prober alone, then
	// start counting.
	if _, err := e.Verify(ctx, tokend.VerifyRequest{Token: valid, IP: "192.0.2.10"}); err != nil {
		return result{}, err
	}
	base := probe(ctx, e, valid, probeEvery, func() bool { return false }, alone)
	calls0, valid0 := cs.calls.Load(), cs.validCalls.Load()

	var sent atomic.Int64
	var codes [16]atomic.Int64
	codeIndex := map[tokend.Code]int{}
	for i, c := range tokend.Codes {
		codeIndex[c] = i
	}
	var errs atomic.Int64
	deadline := time.Now().Add(maxTime)
	var done atomic.Bool
	var wg sync.WaitGroup
	start := time.Now()
	for w := range p.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for i := 0; ; i++ {
				k := sent.Add(1)
				if k > int64(n) || (i%1024 == 0 && time.Now().After(deadline)) {
					return
				}
				if floodRate > 0 {
					// The k-th request of all is due k/rate after the start.
					if wait := time.Until(start.Add(time.Duration(float64(k) / floodRate * float64(time.Second)))); wait > 0 {
						time.Sleep(wait)
					}
				}
				tok := ""
				switch p.kind {
				case "malformed":
					tok = malformed(r, k)
				default:
					s, err := secret.Generate("bench")
					if err != nil {
						panic(err)
					}
					tok = s.Reveal()
				}
				ip := "198.51.100.1"
				if p.spread > 1 {
					ip = spreadAddr(k % int64(p.spread))
				}
				res, err := e.Verify(ctx, tokend.VerifyRequest{Token: tok, IP: ip, Peer: tokend.PeerKey(tokend.DoorVerify, ip)})
				if err != nil {
					errs.Add(1)
					continue
				}
				codes[codeIndex[res.Code]].Add(1)
			}
		}()
	}
	go func() { wg.Wait(); done.Store(true) }()
	lat := probe(ctx, e, valid, probeEvery, done.Load, maxTime+time.Second)
	wg.Wait()
	el := time.Since(start)
	stopRun()
	<-runDone
	total := min(sent.Load(), int64(n))
	var answered []string
	for i, c := range tokend.Codes {
		if v := codes[i].Load(); v > 0 {
			answered = append(answered, fmt.Sprintf("%s %d", c, v))
		}
	}
	calls := cs.calls.Load() - calls0
	fmt.Printf("%-34s sent %d in %s (%.0f/s); storage lookups %d (%.4f per request; valid token re-read %d times); errors %d; answers: %s\n",
		p.name, total, el.Round(time.Millisecond), float64(total)/el.Seconds(), calls, float64(calls)/float64(total),
		cs.validCalls.Load()-valid0, errs.Load(), strings.Join(answered, ", "))
	r := result{readsPerRequest: float64(calls) / float64(total)}
	r.p50 = float64(quantile(lat, 0.5)) / float64(quantile(base, 0.5))
	r.p99 = float64(quantile(lat, 0.99)) / float64(quantile(base, 0.99))
	fmt.Printf("%-34s valid token alone: %s; during the flood: %s; ratio p50 x%.2f p99 x%.2f\n", "", latencies(base), latencies(lat), r.p50, r.p99)
	return r, nil
}

// quantile answers the q-quantile of lat (sorted in place).
func quantile(lat []time.Duration, q float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	return lat[min(len(lat)-1, int(float64(len(lat))*q))]
}

// openBench opens the SQLite database at path and the hasher of the
// bench's pepper.
func openBench(ctx context.Context, path string) (*sqlite.Store, *secret.Hasher, error) {
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, nil, err
	}
	h, err := secret.NewHasher([]byte(benchPepper))
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return st, h, nil
}

// measureRebuild builds the filter of known secrets from the database at
// path rounds times, and reports the time each took and its memory.
func measureRebuild(path string, rounds int) error {
	ctx := context.Background()
	st, h, err := openBench(ctx, path)
	if err != nil {
		return err
	}
	defer st.Close()
	n, err := st.CountSecrets(ctx)
	if err != nil {
		return err
	}
	e := verify.New(verify.Options{Store: st, Hasher: h})
	var took []time.Duration
	var ms runtime.MemStats
	for range rounds {
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.HeapAlloc
		t0 := time.Now()
		if err := e.RebuildFilter(ctx); err != nil {
			return err
		}
		took = append(took, time.Since(t0))
		runtime.GC()
		runtime.ReadMemStats(&ms)
		entries, bytes, _ := e.FilterStats()
		fmt.Printf("rebuild: %d secrets in the database, %d in the filter: %s; filter %d bytes (%.2f bytes a secret); heap after GC %+d bytes\n",
			n, entries, took[len(took)-1].Round(time.Millisecond), bytes, float64(bytes)/float64(max(n, 1)), int64(ms.HeapAlloc)-int64(before))
	}
	fmt.Printf("rebuild: median %s over %d rounds (load average %s)\n", quantile(took, 0.5).Round(time.Millisecond), rounds, loadAvg())
	return nil
}

// probe verifies the valid token every pause until stop or limit, and
// answers the latencies.
func probe(ctx context.Context, e *verify.Engine, valid string, pause time.Duration, stop func() bool, limit time.Duration) []time.Duration {
	var lat []time.Duration
	end := time.Now().Add(limit)
	for !stop() && time.Now().Before(end) {
		t0 := time.Now()
		res, err := e.Verify(ctx, tokend.VerifyRequest{Token: valid, Permissions: []string{"read"}, IP: "192.0.2.10"})
		lat = append(lat, time.Since(t0))
		if err != nil || res.Code != tokend.CodeValid {
			log.Fatalf("the valid token answered %s, %v", res.Code, err)
		}
		time.Sleep(pause)
	}
	return lat
}

func latencies(lat []time.Duration) string {
	if len(lat) == 0 {
		return "no samples"
	}
	return fmt.Sprintf("n=%d p50 %s p99 %s max %s", len(lat), quantile(lat, 0.5), quantile(lat, 0.99), quantile(lat, 1))
}

// benchPepper is bench/seed's Pepper, so that --rebuild-db reads its
// digests as the engine would.
const benchPepper = "tokend-bench-pepper-0123456789abcdef"

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// malformed answers a bad secret: mostly the right shape with a wrong
// checksum (a forged or mistyped token), sometimes not a secret at all.
func malformed(r *rand.Rand, k int64) string {
	if k%4 == 0 {
		return fmt.Sprintf("not-a-token-%d", k)
	}
	var b [6 + 43 + 1 + 6]byte
	copy(b[:], "bench_")
	for i := 6; i < len(b); i++ {
		b[i] = base62[r.IntN(62)]
	}
	b[6+43] = '_'
	return string(b[:])
}

func spreadAddr(i int64) string {
	return netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}).String()
}
