package verify

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/manage"
	"github.com/tokend/tokend/internal/postgres"
	"github.com/tokend/tokend/internal/postgres/pgtest"
	"github.com/tokend/tokend/internal/sqlite"
	"github.com/tokend/tokend/secret"
)

// filterStores opens a real store of each engine for a test; PostgreSQL's
// skips without a server (and fails on CI, see pgtest).
var filterStores = map[string]func(t *testing.T) tokend.Store{
	"sqlite": func(t *testing.T) tokend.Store {
		s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "tokend.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	},
	"postgres": func(t *testing.T) tokend.Store { return openPostgres(t, pgtest.WithSchema(t, pgtest.NewDatabase(t))) },
}

func openPostgres(t *testing.T, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fanout tells every engine of a process what the service changed.
type fanout struct {
	mu      sync.Mutex
	engines []*Engine
}

func (f *fanout) each(fn func(e *Engine)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.engines {
		fn(e)
	}
}
func (f *fanout) TokenChanged(id string)  { f.each(func(e *Engine) { e.TokenChanged(id) }) }
func (f *fanout) AppChanged(id string)    { f.each(func(e *Engine) { e.AppChanged(id) }) }
func (f *fanout) SecretAdded(hash []byte) { f.each(func(e *Engine) { e.SecretAdded(hash) }) }

// runEngine makes an engine on st and runs it until the test ends.
func runEngine(t *testing.T, st tokend.Store, h *secret.Hasher, o Options) *Engine {
	t.Helper()
	o.Store, o.Hasher = st, h
	e := New(o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

// Random sequences of create (decoys too), rotate with and without grace,
// revoke, disable, enable and delete, through the real service and engine on
// each store: every secret ever issued, and unknown ones, answer the same
// code with the filter as without (an engine with NoFilter on the same
// store), while rebuilds race the adds, after a forced rebuild, and after a
// restart (a new engine on the same data). The filter must also have spared
// the reads of the unknown secrets.
func TestFilterAnswersAsNoFilterDoes(t *testing.T) {
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			testFilterAgainstNoFilter(t, filterStores[name](t), seed)
		})
	}
}

func testFilterAgainstNoFilter(t *testing.T, st tokend.Store, seed uint64) {
	ctx := t.Context()
	h, err := secret.NewHasher(testPepper)
	if err != nil {
		t.Fatal(err)
	}
	ref := New(Options{Store: st, Hasher: h, NoFilter: true})
	e := runEngine(t, st, h, Options{FilterConfirm: -1}) // the filter alone decides
	inval := &fanout{engines: []*Engine{e, ref}}
	svc := manage.New(manage.Options{Store: st, Hasher: h, Invalidator: inval})
	app, err := svc.CreateApp(ctx, tokend.SystemActor, tokend.AppInput{Name: "filter"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first build", e.FilterReady)

	// Rebuilds race the adds until the sequence ends.
	raceCtx, stopRace := context.WithCancel(ctx)
	var rebuilds sync.WaitGroup
	rebuilds.Go(func() {
		for raceCtx.Err() == nil {
			if err := e.RebuildFilter(raceCtx); err != nil && raceCtx.Err() == nil {
				t.Errorf("RebuildFilter: %v", err)
			}
		}
	})

	var secrets []string
	var ids []string
	check := func(e *Engine, when string) {
		t.Helper()
		waitFor(t, "the filter to be complete "+when, e.FilterReady)
		unknown := []string{unknownSecret(t), unknownSecret(t), unknownSecret(t)}
		for _, sec := range append(secrets, unknown...) {
			r := tokend.VerifyRequest{Token: sec, IP: "192.0.2.1"}
			want, werr := ref.Verify(ctx, r)
			got, gerr := e.Verify(ctx, r)
			if werr != nil || gerr != nil || got.Code != want.Code {
				t.Fatalf("%s: a secret answers %s (%v) with the filter, %s (%v) without", when, got.Code, gerr, want.Code, werr)
			}
		}
	}
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	done := map[string]int{}
	for step := range 150 {
		pick := func() string { return ids[r.IntN(len(ids))] }
		op := "create"
		if len(ids) > 0 {
			op = []string{"create", "create", "decoy", "rotate", "rotate-nograce", "revoke", "disable", "enable", "delete"}[r.IntN(9)]
		}
		var err error
		switch op {
		case "create", "decoy":
			var tok tokend.Token
			var sec secret.Secret
			tok, sec, err = svc.CreateToken(ctx, tokend.SystemActor, tokend.TokenInput{
				AppID: app.ID, Name: fmt.Sprintf("t%d", step), Access: tokend.AccessFull, Decoy: op == "decoy",
			})
			if err == nil {
				ids, secrets = append(ids, tok.ID), append(secrets, sec.Reveal())
			}
		case "rotate", "rotate-nograce":
			grace := tokend.Duration(time.Hour)
			if op == "rotate-nograce" {
				grace = 0
			}
			var sec secret.Secret
			_, sec, err = svc.RotateToken(ctx, tokend.SystemActor, pick(), grace, 0)
			if err == nil {
				secrets = append(secrets, sec.Reveal())
			}
		case "revoke":
			_, err = svc.RevokeToken(ctx, tokend.SystemActor, pick(), 0)
		case "disable":
			_, err = svc.DisableToken(ctx, tokend.SystemActor, pick(), 0)
		case "enable":
			_, err = svc.EnableToken(ctx, tokend.SystemActor, pick(), 0)
		case "delete":
			err = svc.DeleteToken(ctx, tokend.SystemActor, pick(), 0)
		}
		if err == nil {
			done[op]++
		}
		if step%5 == 4 {
			check(e, fmt.Sprintf("after step %d (%s)", step, op))
		}
	}
	stopRace()
	rebuilds.Wait()
	t.Logf("operations done: %v; %d secrets issued", done, len(secrets))
	if done["create"] == 0 || done["rotate"]+done["rotate-nograce"] == 0 || done["delete"] == 0 {
		t.Fatalf("the sequence did too little to mean anything: %v", done)
	}
	check(e, "at the end")
	if err := e.RebuildFilter(ctx); err != nil {
		t.Fatal(err)
	}
	check(e, "after a forced rebuild")

	// A restart: a new engine on the same data builds its filter from
	// storage alone.
	e2 := runEngine(t, st, h, Options{FilterConfirm: -1})
	inval.mu.Lock()
	inval.engines = []*Engine{e2, ref}
	inval.mu.Unlock()
	check(e2, "after a restart")
	reads := e2.StorageReads()
	for range 100 {
		if res, err := e2.Verify(ctx, tokend.VerifyRequest{Token: unknownSecret(t)}); err != nil || res.Code != tokend.CodeNotFound {
			t.Fatalf("an unknown secret answered %s, %v", res.Code, err)
		}
	}
	if n := e2.StorageReads() - reads; n > 5 {
		t.Errorf("100 unknown secrets cost %d storage reads with the filter built", n)
	}
}

// Two engines on one PostgreSQL, each with its own store, service and
// filter, the second told of changes by its listener: a token created or
// rotated through the first verifies VALID on the second, and never
// NOT_FOUND once its change reached the second's engine.
func TestFilterLearnsCreatesOfAnotherInstance(t *testing.T) {
	url := pgtest.WithSchema(t, pgtest.NewDatabase(t))
	a, b := openPostgres(t, url), openPostgres(t, url)
	h, err := secret.NewHasher(testPepper)
	if err != nil {
		t.Fatal(err)
	}
	ea := runEngine(t, a, h, Options{FilterConfirm: -1})
	eb := runEngine(t, b, h, Options{FilterConfirm: -1})
	told := &toldRecorder{Resyncer: eb, seen: map[string]*atomic.Int64{}}
	l := b.Listener(told, postgres.ListenOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	listened := make(chan struct{})
	go func() { l.Run(ctx); close(listened) }()
	t.Cleanup(func() { cancel(); <-listened })
	svc := manage.New(manage.Options{Store: a, Hasher: h, Invalidator: ea})
	app, err := svc.CreateApp(t.Context(), tokend.SystemActor, tokend.AppInput{Name: "two"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the second instance's filter after its listener resynced", eb.FilterReady)

	for i := range 10 {
		tok, sec, err := svc.CreateToken(t.Context(), tokend.SystemActor, tokend.TokenInput{AppID: app.ID, Name: fmt.Sprint("t", i), Access: tokend.AccessFull})
		if err != nil {
			t.Fatal(err)
		}
		awaitValidElsewhere(t, eb, told, tok.ID, 0, sec.Reveal())
		// The create's own notice is in before the rotation is made, so
		// that the next one told is the rotation's.
		waitFor(t, "the create to be told", func() bool { return told.flag(tok.ID).Load() == 1 })
		_, sec, err = svc.RotateToken(t.Context(), tokend.SystemActor, tok.ID, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		awaitValidElsewhere(t, eb, told, tok.ID, 1, sec.Reveal())
	}
	reads := eb.StorageReads()
	waitFor(t, "the second filter to be complete", eb.FilterReady)
	for range 100 {
		if res, err := eb.Verify(t.Context(), tokend.VerifyRequest{Token: unknownSecret(t)}); err != nil || res.Code != tokend.CodeNotFound {
			t.Fatalf("an unknown secret answered %s, %v", res.Code, err)
		}
	}
	if n := eb.StorageReads() - reads; n > 5 {
		t.Errorf("100 unknown secrets cost the second instance %d storage reads", n)
	}
}

// toldRecorder counts the changes of each token that reached the engine.
type toldRecorder struct {
	tokend.Resyncer
	mu   sync.Mutex
	seen map[string]*atomic.Int64
}

func (r *toldRecorder) flag(id string) *atomic.Int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen[id] == nil {
		r.seen[id] = new(atomic.Int64)
	}
	return r.seen[id]
}

func (r *toldRecorder) TokenChanged(id string) {
	r.Resyncer.TokenChanged(id)
	r.flag(id).Add(1)
}

// awaitValidElsewhere polls e until sec verifies VALID; once more than
// before changes of the token have been told to e, NOT_FOUND fails the
// test.
func awaitValidElsewhere(t *testing.T, e *Engine, told *toldRecorder, id string, before int64, sec string) {
	t.Helper()
	seen := told.flag(id)
	deadline := time.Now().Add(10 * time.Second)
	for {
		wasTold := seen.Load() > before
		res, err := e.Verify(t.Context(), tokend.VerifyRequest{Token: sec})
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case res.Code == tokend.CodeValid:
			// And from now on, with or without the filter's help.
			for range 20 {
				if res, err := e.Verify(t.Context(), tokend.VerifyRequest{Token: sec}); err != nil || res.Code != tokend.CodeValid {
					t.Fatalf("after VALID the token answered %s, %v", res.Code, err)
				}
			}
			return
		case wasTold:
			t.Fatalf("the token answered %s on the other instance after its change was told there", res.Code)
		case time.Now().After(deadline):
			t.Fatalf("the token still answers %s on the other instance", res.Code)
		}
		time.Sleep(time.Millisecond)
	}
}
