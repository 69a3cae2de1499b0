package storetest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

// ChainVariant is one store that BenchAuditChainCreates times.
type ChainVariant struct {
	Name  string
	Store tokend.Store // with the app "app_bench" not created yet
	// Chain, if set, starts what chains the audit rows in the background
	// (as serve runs it); the stop it answers returns once the rows
	// written before it are chained.
	Chain func(ctx context.Context) (stop func())
	took  time.Duration
}

// BenchAuditChainCreates measures token creates per second of each
// variant, writers at a time, in rounds that take turns, so that a
// machine whose load changes meanwhile weighs on each alike. b.N is the
// creates of each variant. It reports each variant's creates/s and its
// ratio to the first, and checks that every chained variant verifies.
func BenchAuditChainCreates(b *testing.B, writers int, variants []ChainVariant) {
	ctx := context.Background()
	at := time.Now()
	for _, v := range variants {
		if err := v.Store.CreateApp(ctx, tokend.App{ID: "app_bench", Name: "Bench", TokenPrefix: "bench", Permissions: []string{}, CreatedAt: at, UpdatedAt: at, Version: 1},
			tokend.Event{Time: at, Actor: "system", Action: tokend.ActionAppCreate, AppID: "app_bench"}); err != nil {
			b.Fatal(err)
		}
	}
	var n atomic.Int64
	create := func(s tokend.Store) error {
		i := n.Add(1)
		at := time.Now()
		h := sha256.Sum256([]byte(strconv.FormatInt(i, 10)))
		tok := tokend.Token{ID: fmt.Sprintf("tok_b%d", i), AppID: "app_bench", Name: fmt.Sprintf("bench %d", i),
			Type: tokend.TypeStandard, Access: tokend.AccessReadOnly, Permissions: []string{}, AllowedIPs: []string{}, AllowedOrigins: []string{},
			Status: tokend.StatusActive, Masked: "bench_…abcd", CreatedAt: at, UpdatedAt: at, Version: 1, SecretHash: h[:]}
		ev := tokend.Event{Time: at, Actor: "token:tok_admin", ActorName: "bench", IP: "192.0.2.1", Action: tokend.ActionTokenCreate,
			AppID: "app_bench", TokenID: tok.ID, Details: map[string]any{"name": tok.Name, "access": "read_only", "type": "standard"}}
		return s.CreateToken(ctx, tok, ev)
	}
	round := func(v ChainVariant, k int) time.Duration {
		stop := func() {}
		if v.Chain != nil {
			stop = v.Chain(ctx)
		}
		start := time.Now()
		var left atomic.Int64
		left.Store(int64(k))
		var wg sync.WaitGroup
		for range writers {
			wg.Go(func() {
				for left.Add(-1) >= 0 {
					if err := create(v.Store); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		stop()
		return time.Since(start)
	}
	const rounds = 10
	each := b.N / rounds
	b.ReportAllocs()
	b.ResetTimer()
	for r := range rounds {
		for i := range variants {
			v := &variants[(i+r)%len(variants)]
			v.took += round(*v, each)
		}
	}
	b.StopTimer()
	for _, v := range variants {
		b.ReportMetric(float64(each*rounds)/v.took.Seconds(), v.Name+"_creates/s")
		if v.Name == variants[0].Name {
			continue
		}
		b.ReportMetric(variants[0].took.Seconds()/v.took.Seconds(), v.Name+"/"+variants[0].Name)
		if s, ok := v.Store.(AuditChainStore); ok {
			if rep := VerifyAudit(b, s); rep.Rows != int64(each*rounds)+1 {
				b.Fatalf("%s: %d rows chained, want %d", v.Name, rep.Rows, each*rounds+1)
			}
		}
	}
}
