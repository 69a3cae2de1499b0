package postgres

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/sqlstore"

	"github.com/tokend/tokend/internal/postgres/pgtest"
	"github.com/tokend/tokend/internal/storetest"
)

// BenchmarkTokenBySecret is the verification cache miss: the store read of
// a token by its secret's hash, among 10,000 tokens, at random (see
// storetest.BenchTokenBySecret).
func BenchmarkTokenBySecret(b *testing.B) {
	s, err := Open(context.Background(), pgtest.WithSchema(b, pgtest.NewDatabase(b)))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchTokenBySecret(b, s)
}

// BenchmarkChangeLogPoll is what --invalidation poll costs the database per
// instance and interval: one poll of a change log holding 10,000 rows
// (with nothing new, and with one new change each time), against the round
// trip of SELECT 1 on the same pool as the baseline.
func BenchmarkChangeLogPoll(b *testing.B) {
	s, err := Open(context.Background(), pgtest.WithSchema(b, pgtest.NewDatabase(b)))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if _, err := s.pool.Exec(ctx, `INSERT INTO change_log (kind, id) SELECT 'token', 'tok_' || g FROM generate_series(1, 10000) g`); err != nil {
		b.Fatal(err)
	}
	b.Run("select 1", func(b *testing.B) {
		for b.Loop() {
			var one int
			if err := s.pool.QueryRow(ctx, `SELECT 1`).Scan(&one); err != nil {
				b.Fatal(err)
			}
		}
	})
	p := s.Poller(newRecorder(), PollOptions{})
	if _, err := p.poll(ctx, time.Now(), true); err != nil {
		b.Fatal(err)
	}
	b.Run("idle poll", func(b *testing.B) {
		for b.Loop() {
			if _, err := p.poll(ctx, time.Now(), false); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("poll of one change", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			if _, err := s.pool.Exec(ctx, `INSERT INTO change_log (kind, id) VALUES ('token', 'tok_1')`); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if _, err := p.poll(ctx, time.Now(), false); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAuditChainCreates measures token creates per second, 8 writers
// at a time, in rounds that take turns, so that a machine whose load
// changes meanwhile weighs on each alike: on a schema before the audit
// chain (migration 00014: "plain"), with rows chained after commit by a
// background chainer as serve runs it ("chained"; the chaining of a
// round's last rows is timed too), and with each row chained in its own
// transaction under audit_head's lock ("in_tx", the design not taken: the
// lock is held through every commit). b.N is the creates of each variant.
// It reports each variant's creates/s and their ratios to plain.
func BenchmarkAuditChainCreates(b *testing.B) {
	ctx := context.Background()
	newStore := func(upTo int64, inTx bool) *Store {
		s, err := connect(ctx, pgtest.WithSchema(b, pgtest.NewDatabase(b)))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		fsys, _ := fs.Sub(migrations, "migrations")
		p, err := goose.NewProvider(goose.DialectPostgres, s.db, fsys, goose.WithDisableGlobalRegistry(true))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.UpTo(ctx, upTo); err != nil {
			b.Fatal(err)
		}
		if inTx {
			f := *flavor
			f.ChainInTx = true
			s.Store = sqlstore.New(&f, s.db, s.db)
		}
		at := time.Now()
		if err := s.CreateApp(ctx, tokend.App{ID: "app_bench", Name: "Bench", TokenPrefix: "bench", Permissions: []string{}, CreatedAt: at, UpdatedAt: at, Version: 1},
			tokend.Event{Time: at, Actor: "system", Action: tokend.ActionAppCreate, AppID: "app_bench"}); err != nil {
			b.Fatal(err)
		}
		return s
	}
	var n atomic.Int64
	create := func(s *Store) error {
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
	// round runs k creates on s from 8 writers and answers how long they
	// took, chaining included when chain is set.
	round := func(s *Store, k int, chain bool) time.Duration {
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		if chain {
			go func() { s.RunChainer(cctx, time.Second, func(err error) { b.Error(err) }); close(done) }()
		}
		start := time.Now()
		var left atomic.Int64
		left.Store(int64(k))
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for left.Add(-1) >= 0 {
					if err := create(s); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		cancel()
		if chain {
			<-done // its last pass chains what is left
		}
		return time.Since(start)
	}
	variants := []struct {
		name  string
		s     *Store
		chain bool
		took  time.Duration
	}{
		{name: "plain", s: newStore(14, false)},
		{name: "chained", s: newStore(15, false), chain: true},
		{name: "in_tx", s: newStore(15, true)},
	}
	const rounds = 5
	b.ReportAllocs()
	b.ResetTimer()
	for r := range rounds {
		for i := range variants {
			v := &variants[(i+r)%len(variants)]
			v.took += round(v.s, b.N/rounds, v.chain)
		}
	}
	b.StopTimer()
	per := float64(b.N / rounds * rounds)
	for _, v := range variants {
		b.ReportMetric(per/v.took.Seconds(), v.name+"_creates/s")
		if v.s.Store != nil && v.name != "plain" {
			if rep := storetest.VerifyAudit(b, v.s); rep.Rows != int64(b.N/rounds*rounds)+1 {
				b.Fatalf("%s: %d rows chained, want %d", v.name, rep.Rows, b.N/rounds*rounds+1)
			}
			b.ReportMetric(variants[0].took.Seconds()/v.took.Seconds(), v.name+"/plain")
		}
	}
}
