package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

// BenchTokens is how many tokens BenchTokenBySecret seeds.
const BenchTokens = 10000

func benchHash(i int) []byte {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(i))
	h := sha256.Sum256(n[:])
	return h[:]
}

// BenchTokenBySecret measures the verification cache miss: TokenBySecret of
// random current secrets among BenchTokens tokens, which it seeds in s
// first. Every backend's benchmark calls it, so that their figures compare.
func BenchTokenBySecret(b *testing.B, s tokend.Store) {
	ctx := context.Background()
	at := time.Date(2026, time.March, 14, 9, 26, 53, 0, time.UTC)
	ev := tokend.Event{Time: at, Actor: "system", ActorName: "tokend", Action: tokend.ActionAppCreate, AppID: "app_bench"}
	app := tokend.App{ID: "app_bench", Name: "Bench", TokenPrefix: "bench", Permissions: []string{"read", "write"}, CreatedAt: at, UpdatedAt: at, Version: 1}
	if err := s.CreateApp(ctx, app, ev); err != nil {
		b.Fatal(err)
	}
	ev.Action = tokend.ActionTokenCreate
	// Seeded by a few writers at once: PostgreSQL takes them in parallel,
	// SQLite queues them on its writer.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < BenchTokens; i += 4 {
				tok := benchToken(i, at)
				ev := ev
				ev.TokenID = tok.ID
				if err := s.CreateToken(ctx, tok, ev); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	hashes := make([][]byte, 4096)
	for i := range hashes {
		hashes[i] = benchHash(r.IntN(BenchTokens))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.TokenBySecret(ctx, hashes[i%len(hashes)]); err != nil {
			b.Fatal(err)
		}
	}
}

func benchToken(i int, at time.Time) tokend.Token {
	expires := at.Add(365 * 24 * time.Hour)
	return tokend.Token{
		ID: fmt.Sprintf("tok_bench%05d", i), AppID: "app_bench", Name: fmt.Sprintf("bench %d", i),
		Type: tokend.TypeStandard, Access: tokend.AccessFull, Permissions: []string{"read"},
		ExpiresAt: &expires, AllowedIPs: []string{}, AllowedOrigins: []string{}, Metadata: map[string]any{"team": "bench"},
		Status: tokend.StatusActive, Masked: "bench_…abcd", CreatedAt: at, UpdatedAt: at, Version: 1,
		SecretHash: benchHash(i),
	}
}
