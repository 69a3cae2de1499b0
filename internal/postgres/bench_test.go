package postgres

import (
	"context"
	"testing"
	"time"

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
