package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/auditchain"
	"github.com/tokend/tokend/internal/postgres/pgtest"
	"github.com/tokend/tokend/internal/storetest"
)

// TestAuditChainOfSeveralInstances writes audit rows from two stores on
// one database at once (two instances), each chaining in the background
// as serve does: the chain does not fork, holds every row once, and
// verifies.
func TestAuditChainOfSeveralInstances(t *testing.T) {
	url := pgtest.WithSchema(t, pgtest.NewDatabase(t))
	a, b := open(t, url), open(t, url)
	ctx, cancel := context.WithCancel(context.Background())
	var chainers sync.WaitGroup
	for _, s := range []*Store{a, b} {
		chainers.Go(func() {
			s.RunChainer(ctx, 10*time.Millisecond, func(err error) { t.Errorf("chainer: %v", err) })
		})
	}
	const writers, each = 6, 40
	var wg sync.WaitGroup
	for w := range writers {
		s := []*Store{a, b}[w%2]
		wg.Go(func() {
			for i := range each {
				ev := tokend.Event{Time: time.Now(), Actor: "system", Action: tokend.ActionTokenCreate, AppID: "app_1",
					TokenID: fmt.Sprintf("tok_%d_%d", w, i), Details: map[string]any{"i": i}}
				if err := s.AppendEvent(context.Background(), ev); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	cancel()
	chainers.Wait()
	rep := storetest.VerifyAudit(t, a)
	if rep.Rows != writers*each || rep.Head.Pos != writers*each || rep.Pending != 0 {
		t.Fatalf("%+v; want %d rows chained", rep, writers*each)
	}
}

// TestAuditChainerPassesARolledBackID writes audit rows around one whose
// transaction rolls back, leaving a hole in the ids: the chainer, left
// to itself as serve runs it, chains the rows after the hole too (the
// passes after a commit stop at a hole, the periodic one passes it).
func TestAuditChainerPassesARolledBackID(t *testing.T) {
	s := open(t, pgtest.WithSchema(t, pgtest.NewDatabase(t)))
	ctx := context.Background()
	write := func(i int) {
		t.Helper()
		if err := s.AppendEvent(ctx, tokend.Event{Time: time.Now(), Actor: "system", Action: tokend.ActionTokenCreate, AppID: "app_1", TokenID: fmt.Sprintf("tok_%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		s.RunChainer(runCtx, 20*time.Millisecond, func(err error) { t.Errorf("chainer: %v", err) })
		close(done)
	}()
	defer func() { cancel(); <-done }()
	// Read without chaining (storetest.VerifyAudit would chain first).
	waitChained := func(rows int64) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; {
			var rep auditchain.Report
			err := s.AuditSnapshot(ctx, func(src auditchain.Source) error {
				var err error
				rep, err = auditchain.Verify(ctx, src, auditchain.Options{})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Rows == rows && rep.Pending == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the chainer left rows unchained: %+v, want %d rows chained", rep, rows)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	write(1)
	waitChained(1) // the chainer's first pass is behind it
	rollback := errors.New("roll back")
	if err := s.Write(ctx, func(tx *sql.Tx) error {
		if err := s.InsertEvent(ctx, tx, tokend.Event{Time: time.Now(), Actor: "system", Action: tokend.ActionTokenRevoke, AppID: "app_1"}); err != nil {
			return err
		}
		return rollback
	}); !errors.Is(err, rollback) {
		t.Fatal(err)
	}
	write(2)
	write(3)
	waitChained(3)
}
