package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/httpapi"
	"github.com/tokend/tokend/secret"
)

// self asks GET /v1/self with a token and answers the decoded body (on 200).
func (h *harness) self(sec string) (resp, httpapi.Self) {
	h.t.Helper()
	r := h.do("GET", "/v1/self", sec, nil)
	var s httpapi.Self
	if r.status == http.StatusOK {
		r.json(h.t, &s)
	}
	return r, s
}

func TestSelfTellsATokenAboutItselfWithoutSpendingIt(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			h := newHarness(t, st.opts)
			app := h.createApp(tokend.AppInput{Name: "Shop", Permissions: []string{"orders:read", "orders:write"}})
			uses := int64(10)
			tok, sec := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "ci deploy", OwnerID: "acct_1",
				Access: tokend.AccessCustom, Permissions: []string{"orders:read"}, ExpiresIn: "7d",
				RateLimit: &tokend.RateLimit{Limit: 3, Window: tokend.Duration(time.Hour)}, MaxUses: &uses,
				Metadata: map[string]any{"plan": "pro"}})

			var s httpapi.Self
			for i := range 5 { // more asks than the limit allows verifications
				var r resp
				r, s = h.self(sec)
				if r.status != http.StatusOK {
					t.Fatalf("self %d: %d %s", i, r.status, r.body)
				}
				if strings.Contains(string(r.body), sec) || strings.Contains(string(r.body), "hash") {
					t.Fatalf("the answer shows the secret or its hash: %s", r.body)
				}
			}
			if s.ID != tok.ID || s.AppID != app.ID || s.AppName != "Shop" || s.Name != "ci deploy" || s.OwnerID != "acct_1" ||
				s.Type != tokend.TypeStandard || s.Access != tokend.AccessCustom || s.Status != tokend.StatusActive ||
				len(s.Permissions) != 1 || s.Permissions[0] != "orders:read" || s.Metadata["plan"] != "pro" {
				t.Errorf("self = %+v", s)
			}
			if s.ExpiresAt == nil || !s.ExpiresAt.Equal(*tok.ExpiresAt) {
				t.Errorf("expires_at = %v, want %v", s.ExpiresAt, tok.ExpiresAt)
			}
			if s.RateLimit == nil || s.RateLimit.Limit != 3 || s.RateLimit.Remaining != 3 {
				t.Fatalf("rate_limit after 5 asks = %+v, want 3 of 3 left", s.RateLimit)
			}
			if res := h.verify(tokend.VerifyRequest{Token: sec}); !res.Valid {
				t.Fatalf("verify: %+v", res)
			}
			if _, s = h.self(sec); s.RateLimit == nil || s.RateLimit.Remaining != 2 || s.RateLimit.Reset <= 0 {
				t.Errorf("after one verification: %+v, want 2 left", s.RateLimit)
			}
			if err := h.engine.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			got, err := h.store.Token(context.Background(), tok.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.UseCount != 1 {
				t.Errorf("use_count = %d after 6 asks and 1 verification, want 1", got.UseCount)
			}
		})
	}
}

func TestSelfRefusesTokensThatAreNoGood(t *testing.T) {
	h := newHarness(t)
	app := h.createApp(tokend.AppInput{Name: "Shop"})
	_, disabled := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "disabled"})
	tDis, _ := h.store.Tokens(context.Background(), tokend.TokenFilter{AppID: app.ID})
	if r := h.do("POST", "/v1/tokens/"+tDis.Items[0].ID+"/disable", h.owner, nil); r.status != http.StatusOK {
		t.Fatalf("disable: %d %s", r.status, r.body)
	}
	revokedTok, revoked := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "revoked"})
	if r := h.do("POST", "/v1/tokens/"+revokedTok.ID+"/revoke", h.owner, nil); r.status != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	unknown, err := secret.Generate("tkd")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, token string }{
		{"no token", ""},
		{"malformed", "not-a-token"},
		{"unknown", unknown.Reveal()},
		{"disabled", disabled},
		{"revoked", revoked},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, _ := h.self(c.token)
			if r.status != http.StatusUnauthorized || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("%d %v %s", r.status, r.header, r.body)
			}
			if p := r.problem(t); p.Code != tokend.ECodeUnauthenticated {
				t.Errorf("code = %s", p.Code)
			}
		})
	}
	t.Run("another scheme is no token", func(t *testing.T) {
		r := h.do("GET", "/v1/self", "", nil, "Authorization", "Basic "+disabled)
		if r.status != http.StatusUnauthorized {
			t.Errorf("%d %s", r.status, r.body)
		}
	})
}

// GET /v1/self is no oracle: guesses there count at verification's door
// of the failure throttle, a throttled peer is refused there as at
// /v1/verify, and the filter of known secrets answers unknown secrets
// without a storage read.
func TestSelfIsBehindTheFailureThrottleAndTheFilter(t *testing.T) {
	t.Run("guesses at self throttle verification", func(t *testing.T) {
		h := newHarness(t, harnessOpts{failureLimit: 3})
		app := h.createApp(tokend.AppInput{Name: "shop"})
		_, sec := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "cold"})
		for range 3 {
			if r, _ := h.self("tkd_junk"); r.status != http.StatusUnauthorized {
				t.Fatalf("junk: %d", r.status)
			}
		}
		if res := h.verify(tokend.VerifyRequest{Token: sec}); res.Code != tokend.CodeRateLimited {
			t.Fatalf("verification after 3 guesses at /v1/self: %+v, want RATE_LIMITED", res)
		}
		r, _ := h.self(sec)
		if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
			t.Fatalf("self of a cold token from a throttled peer: %d %v", r.status, r.header)
		}
		r.problem(t)
	})
	t.Run("guesses at verify throttle self", func(t *testing.T) {
		h := newHarness(t, harnessOpts{failureLimit: 3})
		app := h.createApp(tokend.AppInput{Name: "shop"})
		_, sec := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "cold"})
		for range 3 {
			h.verify(tokend.VerifyRequest{Token: "junk"})
		}
		if r, _ := h.self(sec); r.status != http.StatusTooManyRequests {
			t.Fatalf("self after 3 guesses at /v1/verify: %d %s", r.status, r.body)
		}
	})
	t.Run("unknown secrets are ruled out by the filter", func(t *testing.T) {
		h := newHarness(t, harnessOpts{filterConfirm: -1})
		if err := h.engine.RebuildFilter(context.Background()); err != nil {
			t.Fatal(err)
		}
		reads := h.engine.StorageReads()
		for range 20 {
			unknown, err := secret.Generate("tkd")
			if err != nil {
				t.Fatal(err)
			}
			if r, _ := h.self(unknown.Reveal()); r.status != http.StatusUnauthorized {
				t.Fatalf("unknown: %d", r.status)
			}
		}
		if n := h.engine.StorageReads() - reads; n != 0 {
			t.Errorf("%d storage reads for 20 unknown secrets", n)
		}
	})
}
