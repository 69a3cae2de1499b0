// Command flood measures, in-process, what a flood of bad secrets costs the
// verification engine: how many storage lookups it causes (the engine runs
// over a counting wrapper of the SQLite store) and what it does to the
// latency of a valid token verified at the same time.
//
// Phases, each on a fresh engine, each bounded by --n requests and
// --max-time:
//
//	malformed          secrets whose checksum is wrong, or not secrets at all
//	unknown            well-formed secrets (secret.Generate) that no token has,
//	                   all distinct, with the per-address failure throttle off
//	unknown+throttle   the same from one address, FailureLimit --failure-limit
//	unknown+throttle/  the same spread over --spread addresses
//	spread
//
// A prober verifies one valid token every --probe-every from another
// address during each phase (and alone, before them, for a baseline).
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
	name    string
	kind    string // malformed or unknown
	limit   int    // FailureLimit
	spread  int    // distinct flood addresses
	workers int
}

func main() {
	n := flag.Int("n", 1_000_000, "flood requests per phase")
	maxTime := flag.Duration("max-time", 3*time.Minute, "upper bound on each phase")
	limit := flag.Int("failure-limit", 100, "FailureLimit of the throttled phases (tokend's default)")
	spread := flag.Int("spread", 65536, "flood addresses of the spread phase")
	probeEvery := flag.Duration("probe-every", 500*time.Microsecond, "pause between two verifications of the valid token")
	only := flag.String("phases", "", "comma-separated phase names to run; all when empty")
	flag.Parse()
	if err := run(*n, *maxTime, *limit, *spread, *probeEvery, *only); err != nil {
		log.Fatal(err)
	}
}

func run(n int, maxTime time.Duration, limit, spread int, probeEvery time.Duration, only string) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "tokend-flood-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	st, err := sqlite.Open(ctx, filepath.Join(dir, "flood.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	h, err := secret.NewHasher([]byte("tokend-bench-pepper-0123456789abcdef"))
	if err != nil {
		return err
	}
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

	// Baseline: the prober alone.
	{
		e := verify.New(verify.Options{Store: cs, Hasher: h})
		lat := probe(ctx, e, valid, probeEvery, func() bool { return false }, 2*time.Second)
		fmt.Printf("%-26s valid token alone for 2s: %s\n", "baseline", latencies(lat))
	}

	phases := []phase{
		{name: "malformed", kind: "malformed", workers: workers},
		{name: "unknown", kind: "unknown", workers: workers},
		{name: "unknown+throttle", kind: "unknown", limit: limit, spread: 1, workers: workers},
		{name: "unknown+throttle/spread", kind: "unknown", limit: limit, spread: spread, workers: workers},
	}
	for _, p := range phases {
		if only != "" && !slices.Contains(strings.Split(only, ","), p.name) {
			continue
		}
		if err := runPhase(ctx, cs, h, valid, p, n, maxTime, probeEvery); err != nil {
			return err
		}
	}
	return nil
}

func runPhase(ctx context.Context, cs *countingStore, h *secret.Hasher, valid string, p phase, n int, maxTime, probeEvery time.Duration) error {
	e := verify.New(verify.Options{Store: cs, Hasher: h, FailureLimit: p.limit})
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	runDone := make(chan struct{})
	go func() { e.Run(runCtx); close(runDone) }()
	// Warm the valid token into the cache, then start counting.
	if _, err := e.Verify(ctx, tokend.VerifyRequest{Token: valid, IP: "192.0.2.10"}); err != nil {
		return err
	}
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
	fmt.Printf("%-26s sent %d in %s (%.0f/s); storage lookups %d (%.4f per request; valid token re-read %d times); errors %d; answers: %s\n",
		p.name, total, el.Round(time.Millisecond), float64(total)/el.Seconds(), calls, float64(calls)/float64(total),
		cs.validCalls.Load()-valid0, errs.Load(), strings.Join(answered, ", "))
	fmt.Printf("%-26s valid token during the flood: %s\n", "", latencies(lat))
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
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(float64(len(lat))*p))] }
	return fmt.Sprintf("n=%d p50 %s p99 %s max %s", len(lat), q(0.5), q(0.99), lat[len(lat)-1])
}

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
