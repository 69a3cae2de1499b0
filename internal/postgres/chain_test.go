package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend"
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
