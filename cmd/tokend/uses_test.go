package main

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/postgres/pgtest"
)

// newLimitedToken makes a token with max_uses through the API.
func (in *instance) newLimitedToken(t *testing.T, admin, appID, name string, maxUses int64) created {
	t.Helper()
	var c created
	in.mustCall(t, 201, "POST", "/v1/tokens", admin, tokend.TokenInput{AppID: appID, Name: name, MaxUses: &maxUses}, &c)
	return c
}

// A use that counts against max_uses is in the database before the answer
// says VALID: killing the process right after it loses nothing. The flush
// interval is an hour, so that no batched write can save the day.
func TestMaxUsesSurviveKill9(t *testing.T) {
	bin := buildTokend(t)
	dir := t.TempDir()
	a := startProcess(t, bin, nil, "--data-dir", dir, "--flush-interval", "1h")
	admin := a.bootstrap
	app := a.newApp(t, admin, "shop")
	tok := a.newLimitedToken(t, admin, app.ID, "once", 1)
	if status, code := a.verifyAt(t, tok.Secret, clientIP); status != 200 || code != "VALID" {
		t.Fatalf("first use: %d %s, want VALID", status, code)
	}
	a.kill()

	b := startProcess(t, bin, nil, "--data-dir", dir, "--flush-interval", "1h")
	if status, code := b.verifyAt(t, tok.Secret, clientIP); status != 200 || code != "USAGE_EXCEEDED" {
		t.Fatalf("after kill -9 and a restart: %d %s, want USAGE_EXCEEDED", status, code)
	}
	var got tokend.Token
	b.mustCall(t, 200, "GET", "/v1/tokens/"+tok.Token.ID, admin, nil, &got)
	if got.UseCount != 1 {
		t.Errorf("use_count after the restart = %d, want 1", got.UseCount)
	}
}

// max_uses is exact over several instances on one PostgreSQL database: each
// use is taken from the database, never from an instance's own count.
func TestMaxUsesExactAcrossInstances(t *testing.T) {
	db := pgtest.NewDatabase(t)
	bin := buildTokend(t)
	env := map[string]string{"TOKEND_PEPPER": strings.Repeat("p", 40)}
	a := startProcess(t, bin, env, "--database", db)
	b := startProcess(t, bin, env, "--database", db)
	admin := a.bootstrap
	app := a.newApp(t, admin, "shop")

	t.Run("used alternately on two instances", func(t *testing.T) {
		tok := a.newLimitedToken(t, admin, app.ID, "alternate", 2)
		var got []string
		for i := range 6 {
			in := []*instance{a, b}[i%2]
			status, code := in.verifyAt(t, tok.Secret, clientIP)
			if status != 200 {
				t.Fatalf("verify %d: %d %s", i, status, code)
			}
			got = append(got, code)
		}
		want := []string{"VALID", "VALID", "USAGE_EXCEEDED", "USAGE_EXCEEDED", "USAGE_EXCEEDED", "USAGE_EXCEEDED"}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("max_uses=2 used on A, B, A, B, …: %v, want exactly 2 VALID", got)
		}
	})

	t.Run("50 concurrent verifications over two instances", func(t *testing.T) {
		const max, requests = 10, 50
		tok := a.newLimitedToken(t, admin, app.ID, "concurrent", max)
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			codes = map[string]int{}
		)
		start := make(chan struct{})
		for i := range requests {
			in := []*instance{a, b}[i%2]
			wg.Go(func() {
				<-start
				status, code := in.verifyAt(t, tok.Secret, clientIP)
				if status != 200 {
					code = "HTTP " + code
				}
				mu.Lock()
				codes[code]++
				mu.Unlock()
			})
		}
		close(start)
		wg.Wait()
		t.Logf("max_uses=%d, %d concurrent verifications over two instances: %v", max, requests, codes)
		if codes["VALID"] != max || codes["USAGE_EXCEEDED"] != requests-max {
			t.Errorf("codes = %v, want exactly %d VALID and %d USAGE_EXCEEDED", codes, max, requests-max)
		}
		// The flushes (a graceful stop flushes what is pending) carry the
		// last use and add no use a second time.
		a.stop()
		b.stop()
		c := startProcess(t, bin, env, "--database", db)
		var got tokend.Token
		c.mustCall(t, 200, "GET", "/v1/tokens/"+tok.Token.ID, admin, nil, &got)
		if got.UseCount != max || got.LastUsedAt == nil || got.LastUsedIP != clientIP {
			t.Errorf("after both instances flushed: use_count %d, last used %v from %q; want %d, a time, %s",
				got.UseCount, got.LastUsedAt, got.LastUsedIP, max, clientIP)
		}
	})
}

// A rotation without grace leaves only the new secret: the one replaced two
// rotations ago, still inside its grace, stops too, on the instance that
// rotated (whose cache held both) and after a restart.
func TestRotationWithoutGraceEndsEveryEarlierSecret(t *testing.T) {
	dir := t.TempDir()
	in := startTokend(t, dir, nil)
	admin := in.bootstrap
	app := in.newApp(t, admin, "shop")
	s0 := in.newToken(t, admin, app.ID, "rotating")
	var s1, s2 created
	in.mustCall(t, 200, "POST", "/v1/tokens/"+s0.Token.ID+"/rotate", admin, map[string]any{"grace_period": "1h"}, &s1)
	for _, sec := range []string{s0.Secret, s1.Secret} {
		if _, code := in.verifyAt(t, sec, clientIP); code != "VALID" {
			t.Fatalf("after a rotation with grace: %s, want VALID for both secrets", code)
		}
	}
	in.mustCall(t, 200, "POST", "/v1/tokens/"+s0.Token.ID+"/rotate", admin, map[string]any{}, &s2)
	want := map[string]string{"S0": "ROTATED", "S1": "ROTATED", "S2": "VALID"}
	check := func(when string) {
		t.Helper()
		for name, sec := range map[string]string{"S0": s0.Secret, "S1": s1.Secret, "S2": s2.Secret} {
			if _, code := in.verifyAt(t, sec, clientIP); code != want[name] {
				t.Errorf("%s: %s answers %s, want %s", when, name, code, want[name])
			}
		}
	}
	check("after the rotation without grace")
	in.stop()
	in = startTokend(t, dir, nil)
	check("after a restart")
}

// 20 rotations with grace at once, through the API: afterwards at most the
// current secret and the one it replaced verify, of all 21 ever issued.
func TestConcurrentRotationsLeaveAtMostTwoSecrets(t *testing.T) {
	const rotations = 20
	in := startTokend(t, t.TempDir(), nil)
	admin := in.bootstrap
	app := in.newApp(t, admin, "shop")
	first := in.newToken(t, admin, app.ID, "rotating")
	secrets := []string{first.Secret}
	var (
		wg sync.WaitGroup
		mu sync.Mutex
	)
	start := make(chan struct{})
	for range rotations {
		wg.Go(func() {
			<-start
			var c created
			status, b := in.call(t, "POST", "/v1/tokens/"+first.Token.ID+"/rotate", admin, map[string]any{"grace_period": "1h"})
			if status != 200 {
				t.Errorf("rotate: %d %s", status, b)
				return
			}
			if err := json.Unmarshal(b, &c); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			secrets = append(secrets, c.Secret)
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	valid := 0
	for _, sec := range secrets {
		if _, code := in.verifyAt(t, sec, clientIP); code == "VALID" {
			valid++
		}
	}
	t.Logf("%d concurrent rotations with grace: %d of %d secrets verify", rotations, valid, len(secrets))
	if len(secrets) != rotations+1 || valid != 2 {
		t.Errorf("%d of %d secrets verify, want 2 of %d", valid, len(secrets), rotations+1)
	}
}
