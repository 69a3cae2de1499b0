package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/manage"
	"github.com/tokend/tokend/internal/sqlite"
)

// gatedUsers is the store as the sign-in's service sees it, with a gate
// around the password check: Authenticate reads the user by email and then
// checks the password against its hash (a dummy one for an unknown email),
// so each UserByEmail is one password check. Each check is counted, reported
// on arrived, and held until open is closed, so that every attempt the
// throttle lets through is in flight at once, whatever the scheduling.
type gatedUsers struct {
	*sqlite.Store
	checks  atomic.Int64
	arrived chan struct{}
	open    chan struct{}
}

func (g *gatedUsers) UserByEmail(ctx context.Context, email string) (tokend.User, error) {
	g.checks.Add(1)
	g.arrived <- struct{}{}
	select {
	case <-g.open:
	case <-ctx.Done():
		return tokend.User{}, ctx.Err()
	}
	return g.Store.UserByEmail(ctx, email)
}

// concurrentSignIns sends one sign-in per email, all at once, with wrong
// passwords from one browser (one address), and answers how many password
// checks ran and how many attempts were refused with 429 before any check.
func concurrentSignIns(t *testing.T, emails []string) (checked, refused int) {
	t.Helper()
	n := len(emails)
	gate := &gatedUsers{arrived: make(chan struct{}, n), open: make(chan struct{})}
	h := newHarness(t, func(o *Options) {
		gate.Store = o.Users.(*sqlite.Store)
		o.Service = manage.New(manage.Options{Store: gate, Users: gate, Now: o.Now, Password: &testHashParams})
	})
	c := h.client()
	csrf := c.csrf(t, "/login")

	// The gate opens once every attempt is either at the password check or
	// refused: then the attempts the throttle let through were all in flight
	// together.
	var refusedN atomic.Int64
	refusedCh := make(chan struct{}, n)
	go func() {
		defer close(gate.open)
		deadline := time.NewTimer(60 * time.Second)
		defer deadline.Stop()
		for seen := 0; seen < n; seen++ {
			select {
			case <-gate.arrived:
			case <-refusedCh:
			case <-deadline.C:
				t.Errorf("after 60 s only %d of %d attempts were checked or refused", seen, n)
				return
			}
		}
	}()

	statuses := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, email := range emails {
		wg.Go(func() {
			<-start
			form := url.Values{"email": {email}, "password": {fmt.Sprintf("wrong guess %d", i)}, "csrf": {csrf}}
			req, err := http.NewRequest(http.MethodPost, h.URL+"/login", strings.NewReader(form.Encode()))
			if err != nil {
				errs[i] = err
				refusedCh <- struct{}{} // never reaches the gate
				return
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			res, err := c.http.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			res.Body.Close()
			statuses[i] = res.StatusCode
			if res.StatusCode == http.StatusTooManyRequests {
				refusedN.Add(1)
				refusedCh <- struct{}{}
			}
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	failed := 0
	for i, st := range statuses {
		switch st {
		case http.StatusUnauthorized:
			failed++
		case http.StatusTooManyRequests:
		default:
			t.Errorf("attempt %d answered %d, want 401 or 429", i, st)
		}
	}
	checked, refused = int(gate.checks.Load()), int(refusedN.Load())
	if failed != checked {
		t.Errorf("%d attempts answered 401 but %d passwords were checked", failed, checked)
	}
	t.Logf("%d concurrent sign-ins: %d passwords checked, %d refused", n, checked, refused)
	return checked, refused
}

func TestConcurrentSignInsCannotPassTheThrottle(t *testing.T) {
	const n = 60
	t.Run("one account", func(t *testing.T) {
		emails := make([]string, n)
		for i := range emails {
			emails[i] = "admin@example.com"
		}
		checked, refused := concurrentSignIns(t, emails)
		if checked > 5 || checked+refused != n {
			t.Errorf("%d passwords checked and %d refused, want at most 5 checked (the per-account limit) and the rest refused", checked, refused)
		}
	})
	t.Run("one address across accounts", func(t *testing.T) {
		emails := make([]string, n)
		for i := range emails {
			emails[i] = fmt.Sprintf("someone%d@example.com", i)
		}
		emails[0], emails[1] = "admin@example.com", "viewer@example.com"
		checked, refused := concurrentSignIns(t, emails)
		if checked > 20 || checked+refused != n {
			t.Errorf("%d passwords checked and %d refused, want at most 20 checked (the per-address limit) and the rest refused", checked, refused)
		}
	})
}

func TestThrottleReservesAtomically(t *testing.T) {
	th := newThrottle(LoginThrottle{})
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	var ok atomic.Int64
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			if _, _, reserved := th.reserve(now, "acct:a@example.com", "ip:192.0.2.1"); reserved {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if got := ok.Load(); got != 5 {
		t.Fatalf("%d of 200 concurrent attempts reserved, want 5", got)
	}

	// Given back, a reservation makes room for one more attempt; kept, it
	// is a failure until the window ends.
	th2 := newThrottle(LoginThrottle{PerAccount: 2})
	a, _, _ := th2.reserve(now, "acct:b@example.com")
	if _, _, reserved := th2.reserve(now, "acct:b@example.com"); !reserved {
		t.Fatal("the second attempt was refused")
	}
	if _, wait, reserved := th2.reserve(now, "acct:b@example.com"); reserved || wait != 15*time.Minute {
		t.Fatalf("a third attempt: reserved %v, wait %v; want refused for 15m", reserved, wait)
	}
	a.release()
	a.release() // twice gives back once
	if _, _, reserved := th2.reserve(now, "acct:b@example.com"); !reserved {
		t.Fatal("the released reservation made no room")
	}
	if _, _, reserved := th2.reserve(now, "acct:b@example.com"); reserved {
		t.Fatal("releasing twice made room for two")
	}
	if _, _, reserved := th2.reserve(now.Add(15*time.Minute+time.Second), "acct:b@example.com"); !reserved {
		t.Fatal("refused after the window")
	}

	// All keys or none: a full address takes nothing from the account.
	th3 := newThrottle(LoginThrottle{PerAccount: 1, PerAddress: 1})
	th3.reserve(now, "ip:192.0.2.9")
	if _, _, reserved := th3.reserve(now, "acct:c@example.com", "ip:192.0.2.9"); reserved {
		t.Fatal("reserved past the address's limit")
	}
	if _, _, reserved := th3.reserve(now, "acct:c@example.com", "ip:192.0.2.10"); !reserved {
		t.Fatal("a refused attempt took the account's only reservation")
	}
}
