package postgres

import (
	"context"
	"io/fs"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

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

// BenchmarkAuditChainCreates measures token creates per second, 8
// writers at a time (storetest.BenchAuditChainCreates): on a schema before
// the audit chain (migration 00014: "plain"), with rows chained after
// commit by a background chainer as serve runs it ("chained", on the
// schema of 00016, where chaining inserts into audit_chain; the chaining
// of a round's last rows is timed too), and with each row chained in its
// own transaction under audit_head's lock ("in_tx", the design not taken:
// the lock is held through every commit).
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
		return s
	}
	chained := newStore(16, false)
	storetest.BenchAuditChainCreates(b, 8, []storetest.ChainVariant{
		{Name: "plain", Store: newStore(14, false)},
		{Name: "chained", Store: chained, Chain: func(ctx context.Context) func() {
			ctx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { chained.RunChainer(ctx, time.Second, func(err error) { b.Error(err) }); close(done) }()
			return func() { cancel(); <-done } // its last pass chains what is left
		}},
		{Name: "in_tx", Store: newStore(16, true)},
	})
}
