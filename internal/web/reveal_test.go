package web

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/httpapi"
)

const revealCookie = "__Host-tokend_reveal"

// revealCookieOf answers the value of the reveal cookie the browser holds.
func revealCookieOf(t *testing.T, c *client) string {
	t.Helper()
	ck, ok := c.cookie(revealCookie)
	if !ok || ck.Value == "" {
		t.Fatal("no reveal cookie after the secret was made")
	}
	return ck.Value
}

func TestAReplayedRevealCookieShowsNothing(t *testing.T) {
	h, f, admin := withFixture(t, tokend.RoleAdmin)
	tok := "/tokens/" + f.active.ID
	flows := map[string]func() string{
		"create": func() string {
			res := admin.submit(t, "/tokens", "/tokens", createForm(f.app, "replayed"))
			wantStatus(t, res, http.StatusSeeOther)
			return res.Location()
		},
		"rotate": func() string {
			wantRedirect(t, admin.submit(t, tok, tok+"/rotate", url.Values{}), tok)
			return tok
		},
	}
	for name, flow := range flows {
		t.Run(name, func(t *testing.T) {
			page := flow()
			kept := revealCookieOf(t, admin) // what a client that keeps cookies keeps
			first := admin.get(t, page)
			sec, ok := revealedSecret(first.Body)
			if !ok {
				t.Fatalf("the page shows no secret the first time:\n%s", first.Body)
			}
			if strings.Contains(first.Body, `data-testid="secret-used"`) {
				t.Error("the first showing says the secret was shown already")
			}
			if _, still := admin.cookie(revealCookie); still {
				t.Error("showing the secret left the reveal cookie in the browser")
			}

			// The same bytes, sent again within the cookie's minute.
			admin.setCookie(revealCookie, kept)
			again := admin.get(t, page)
			wantStatus(t, again, http.StatusOK)
			if _, ok := revealedSecret(again.Body); ok || strings.Contains(again.Body, sec) {
				t.Fatal("the replayed cookie showed the secret again")
			}
			wantInBody(t, again, `data-testid="secret-used"`)
			wantInBody(t, again, "already shown")
			if _, still := admin.cookie(revealCookie); still {
				t.Error("the replayed cookie was not cleared")
			}
			if h.verify(t, sec) != tokend.CodeValid {
				t.Error("the secret shown once does not verify")
			}
		})
	}
}

func TestConcurrentReplaysOnTwoInstancesShowTheSecretOnce(t *testing.T) {
	h, f, admin := withFixture(t, tokend.RoleAdmin)
	// A second instance on the same store, with the same key, as a second
	// `tokend serve` on the same database would be.
	dash2 := New(Options{
		Service: h.svc, Users: h.store, Verifier: h.eng, Key: []byte("0123456789abcdef0123456789abcdef"),
		Now: h.clock.Now,
	})
	srv2 := httptest.NewTLSServer(httpapi.NewServer(httpapi.Deps{Service: h.svc, Verifier: h.eng, Extra: dash2}))
	t.Cleanup(srv2.Close)
	instances := []*httptest.Server{h.srv, srv2}

	res := admin.submit(t, "/tokens", "/tokens", createForm(f.app, "raced"))
	wantStatus(t, res, http.StatusSeeOther)
	page := res.Location()
	reveal := revealCookieOf(t, admin)
	session, ok := admin.cookie(sessionCookie)
	if !ok {
		t.Fatal("the browser has no session")
	}

	const n = 16
	bodies := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		srv := instances[i%2]
		wg.Go(func() {
			<-start
			req, err := http.NewRequest(http.MethodGet, srv.URL+page, nil)
			if err != nil {
				errs[i] = err
				return
			}
			req.AddCookie(&http.Cookie{Name: sessionCookie, Value: session.Value})
			req.AddCookie(&http.Cookie{Name: revealCookie, Value: reveal})
			res, err := srv.Client().Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			defer res.Body.Close()
			b, err := io.ReadAll(res.Body)
			if res.StatusCode != http.StatusOK {
				t.Errorf("replay %d: status %d", i, res.StatusCode)
			}
			bodies[i], errs[i] = string(b), err
		})
	}
	close(start)
	wg.Wait()
	shown, used := 0, 0
	for i, b := range bodies {
		if errs[i] != nil {
			t.Fatalf("replay %d: %v", i, errs[i])
		}
		if _, ok := revealedSecret(b); ok {
			shown++
		}
		if strings.Contains(b, `data-testid="secret-used"`) {
			used++
		}
	}
	t.Logf("%d concurrent requests with one reveal cookie over two instances: %d showed the secret, %d said it was shown already", n, shown, used)
	if shown != 1 || used != n-1 {
		t.Errorf("%d pages showed the secret and %d said it was shown already, want 1 and %d", shown, used, n-1)
	}
}

func TestRunSweepsTheRecordsOfShownSecrets(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	id := []byte("0123456789abcdef")
	if err := h.store.ConsumeReveal(ctx, id, h.clock.Now().Add(revealTTL+revealKeep)); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(revealTTL + revealKeep + time.Second)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { h.web.Run(runCtx, 5*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()
	// Swept, the id is free again (ConsumeReveal answers a conflict while
	// the record stays).
	for deadline := time.Now().Add(10 * time.Second); ; {
		err := h.store.ConsumeReveal(ctx, id, h.clock.Now())
		if err == nil {
			break
		}
		if !errors.Is(err, tokend.ErrConflict) || time.Now().After(deadline) {
			t.Fatalf("the ended record is still stored: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
