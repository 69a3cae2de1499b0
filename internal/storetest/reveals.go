package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

// revealID is a hand-over id as the dashboard makes them: 16 random bytes
// (here fixed, from k).
func revealID(k string) []byte { return hashOf("reveal " + k)[:16] }

func testRevealConsumeOnce(t *testing.T, _ tokend.Store, us tokend.UserStore) {
	ctx := t.Context()
	if err := us.ConsumeReveal(ctx, revealID("a"), at(time.Minute)); err != nil {
		t.Fatalf("first ConsumeReveal: %v", err)
	}
	err := us.ConsumeReveal(ctx, revealID("a"), at(time.Minute))
	wantErrIs(t, "ConsumeReveal of a used id", err, tokend.ErrConflict)
	// A later end changes nothing: the id stays used.
	err = us.ConsumeReveal(ctx, revealID("a"), at(time.Hour))
	wantErrIs(t, "ConsumeReveal of a used id with another end", err, tokend.ErrConflict)
	if err := us.ConsumeReveal(ctx, revealID("b"), at(2*time.Minute)); err != nil {
		t.Fatalf("ConsumeReveal of another id: %v", err)
	}
	if err := us.ConsumeReveal(ctx, revealID("c"), at(3*time.Minute)); err != nil {
		t.Fatalf("ConsumeReveal of a third id: %v", err)
	}

	// The sweep takes the records whose end is before now, not at it.
	n, err := us.DeleteExpiredReveals(ctx, at(2*time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("DeleteExpiredReveals at +2m = %d, %v; want 1", n, err)
	}
	err = us.ConsumeReveal(ctx, revealID("b"), at(2*time.Minute))
	wantErrIs(t, "ConsumeReveal of an id ending at the sweep", err, tokend.ErrConflict)
	err = us.ConsumeReveal(ctx, revealID("c"), at(3*time.Minute))
	wantErrIs(t, "ConsumeReveal of an id not yet ended", err, tokend.ErrConflict)
	// Swept, the record is gone (the dashboard no longer opens a cookie
	// that old, so the id is never asked about again).
	if err := us.ConsumeReveal(ctx, revealID("a"), at(time.Minute)); err != nil {
		t.Errorf("ConsumeReveal after its record was swept: %v", err)
	}
	if n, err := us.DeleteExpiredReveals(ctx, at(time.Hour)); err != nil || n != 3 {
		t.Errorf("DeleteExpiredReveals at +1h = %d, %v; want 3", n, err)
	}
	if n, err := us.DeleteExpiredReveals(ctx, at(time.Hour)); err != nil || n != 0 {
		t.Errorf("a second sweep = %d, %v; want 0", n, err)
	}
}

func testRevealConsumeRace(t *testing.T, _ tokend.Store, us tokend.UserStore) {
	for _, id := range []string{"x", "y"} {
		oneWinner(t, "id "+id, tokend.ErrConflict, func() error {
			return us.ConsumeReveal(t.Context(), revealID(id), at(time.Minute))
		})
	}
}

// oneWinner runs take from 32 goroutines at once and fails the test unless
// exactly one succeeds and every other is refused with refusal.
func oneWinner(t *testing.T, what string, refusal error, take func() error) {
	t.Helper()
	const n = 32
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = take()
		})
	}
	close(start)
	wg.Wait()
	won, refused := 0, 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case errors.Is(err, refusal):
			refused++
		default:
			t.Errorf("%s: taker %d: %v", what, i, err)
		}
	}
	if won != 1 || refused != n-1 {
		t.Errorf("%s: %d takers won and %d were refused, want 1 and %d", what, won, refused, n-1)
	}
}
