package client

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/testclock"
	"github.com/tokend/tokend/secret"
)

// fakeTokend answers POST /v1/verify as tokend would for the tokens it was
// given, deciding permissions with tokend.Allows, and counts the calls.
type fakeTokend struct {
	srv   *httptest.Server
	calls atomic.Int64
	down  atomic.Bool // answer 503

	mu     sync.Mutex
	tokens map[string]fakeToken
	last   tokend.VerifyRequest
	// gate, when set, holds every call until it is closed; entered hears
	// of each call that waits on it.
	gate    chan struct{}
	entered chan struct{}
}

// fakeToken is how the fake answers for one secret: refused with code when
// it is set, else valid for the permissions its access allows.
type fakeToken struct {
	id        string
	access    tokend.Access
	code      tokend.Code
	reason    string
	expiresAt *time.Time
	rateLimit *tokend.RateLimitState
	owner     string
}

func newFakeTokend(t testing.TB) *fakeTokend {
	f := &fakeTokend{tokens: map[string]fakeToken{}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/verify" {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("Authorization") != "" {
			t.Errorf("the middleware sent an Authorization header to /v1/verify")
		}
		f.calls.Add(1)
		var req tokend.VerifyRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.last = req
		tok, known := f.tokens[req.Token]
		gate, entered := f.gate, f.entered
		f.mu.Unlock()
		if gate != nil {
			entered <- struct{}{}
			<-gate
		}
		if f.down.Load() {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":503,"code":"UNAVAILABLE","title":"Service Unavailable"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(tok.answer(known, req))
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (ft fakeToken) answer(known bool, req tokend.VerifyRequest) tokend.VerifyResult {
	if !known {
		return tokend.VerifyResult{Code: tokend.CodeNotFound}
	}
	vt := &tokend.VerifiedToken{ID: ft.id, AppID: "app_test", Name: "name of " + ft.id, Type: tokend.TypeStandard,
		Access: ft.access, ExpiresAt: ft.expiresAt, OwnerID: ft.owner}
	res := tokend.VerifyResult{Code: ft.code, Reason: ft.reason, Token: vt, RateLimit: ft.rateLimit}
	if res.Code == "" {
		res.Code = tokend.CodeValid
		for _, p := range req.Permissions {
			if !tokend.Allows(ft.access, nil, fakeCatalog, p) {
				res.Code = tokend.CodeInsufficientPermissions
			}
		}
	}
	res.Valid = res.Code == tokend.CodeValid
	return res
}

// fakeCatalog is the permission catalog of the fake's app.
var fakeCatalog = []string{"orders:read", "orders:write", "a:read", "z:write"}

// add makes a new well-formed secret that the fake answers for as ft says.
func (f *fakeTokend) add(t testing.TB, ft fakeToken) string {
	t.Helper()
	s, err := secret.Generate("tkd")
	if err != nil {
		t.Fatal(err)
	}
	if ft.access == "" {
		ft.access = tokend.AccessFull
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if ft.id == "" {
		ft.id = fmt.Sprintf("tok_%d", len(f.tokens))
	}
	f.tokens[s.Reveal()] = ft
	return s.Reveal()
}

// hold makes every call wait until gate is closed, telling entered first.
func (f *fakeTokend) hold() (gate, entered chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gate, f.entered = make(chan struct{}), make(chan struct{}, 100)
	return f.gate, f.entered
}

func (f *fakeTokend) set(secret string, ft fakeToken) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens[secret] = ft
}

func (f *fakeTokend) lastRequest() tokend.VerifyRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

// clock is a settable time for the middleware.
type clock = testclock.Clock

func newClock() *clock { return testclock.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) }

func withClock(c *clock) MiddlewareOption {
	return func(m *middleware) { m.now = c.Now }
}

// guarded is a handler behind the middleware that reports what it saw.
type guarded struct {
	handler http.Handler
	mw      *middleware
	served  atomic.Int64
}

// handlerSaw is what the guarded handler writes back: the identity it found.
type handlerSaw struct {
	TokenID   string                 `json:"token_id"`
	OwnerID   string                 `json:"owner_id"`
	RateLimit *tokend.RateLimitState `json:"rate_limit"`
}

func guard(t testing.TB, f *fakeTokend, opts ...MiddlewareOption) *guarded {
	t.Helper()
	c, err := New(f.srv.URL, WithToken("not_sent_to_verify"))
	if err != nil {
		t.Fatal(err)
	}
	g := &guarded{}
	opts = append(opts, func(m *middleware) { g.mw = m })
	g.handler = c.Middleware(opts...)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.served.Add(1)
		tok, ok := TokenFrom(r.Context())
		if !ok || tok == nil {
			t.Errorf("no token in the context of a request let through")
			return
		}
		rl, _ := RateLimitFrom(r.Context())
		_ = json.NewEncoder(w).Encode(handlerSaw{TokenID: tok.ID, OwnerID: tok.OwnerID, RateLimit: rl})
	}))
	return g
}

// do sends one request through g; header values set as given.
func (g *guarded) do(method string, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "/orders", nil)
	r.RemoteAddr = "192.0.2.7:41000"
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	g.handler.ServeHTTP(w, r)
	return w
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

type problemDoc struct {
	Status int    `json:"status"`
	Code   string `json:"code"`
	Reason string `json:"reason"`
	Detail string `json:"detail"`
}

func TestMiddlewareAnswers(t *testing.T) {
	f := newFakeTokend(t)
	full := f.add(t, fakeToken{id: "tok_full", access: tokend.AccessFull})
	readOnly := f.add(t, fakeToken{id: "tok_ro", access: tokend.AccessReadOnly})
	limited := f.add(t, fakeToken{id: "tok_lim", rateLimit: &tokend.RateLimitState{Limit: 100, Remaining: 41, Reset: 30}})
	refused := func(code tokend.Code) string { return f.add(t, fakeToken{code: code}) }
	throttled := f.add(t, fakeToken{code: tokend.CodeRateLimited,
		rateLimit: &tokend.RateLimitState{Limit: 10, Remaining: 0, Reset: 7, RetryAfter: 7}})
	unknown, _ := secret.Generate("tkd")

	const invalid = `Bearer realm="tokend", error="invalid_token"`
	tests := []struct {
		name      string
		method    string
		header    []string
		status    int
		tokenID   string            // of the identity handed to the handler
		code      string            // of the problem document
		reason    string            // of the problem document
		headers   map[string]string // expected; "" means absent
		wantCalls int64
	}{
		{name: "valid token passes with its identity", method: "GET", header: bearer(full),
			status: 200, tokenID: "tok_full", wantCalls: 1,
			headers: map[string]string{"WWW-Authenticate": ""}},
		{name: "X-API-Key is read when there is no bearer", method: "GET", header: []string{"X-API-Key", full},
			status: 200, tokenID: "tok_full", wantCalls: 1},
		{name: "bearer scheme is case-insensitive", method: "GET", header: []string{"Authorization", "bearer  " + full},
			status: 200, tokenID: "tok_full", wantCalls: 1},
		{name: "read_only token may GET", method: "GET", header: bearer(readOnly),
			status: 200, tokenID: "tok_ro", wantCalls: 1},
		{name: "read_only token may HEAD", method: "HEAD", header: bearer(readOnly),
			status: 200, tokenID: "tok_ro", wantCalls: 1},
		{name: "read_only token cannot POST", method: "POST", header: bearer(readOnly),
			status: 403, code: "FORBIDDEN", reason: "INSUFFICIENT_PERMISSIONS", wantCalls: 1,
			headers: map[string]string{"WWW-Authenticate": `Bearer realm="tokend", error="insufficient_scope"`}},
		{name: "read_only token cannot DELETE", method: "DELETE", header: bearer(readOnly),
			status: 403, code: "FORBIDDEN", reason: "INSUFFICIENT_PERMISSIONS", wantCalls: 1},
		{name: "full_access token may POST", method: "POST", header: bearer(full),
			status: 200, tokenID: "tok_full", wantCalls: 1},
		{name: "no credentials: 401 without an error", method: "GET",
			status: 401, code: "UNAUTHENTICATED", wantCalls: 0,
			headers: map[string]string{"WWW-Authenticate": `Bearer realm="tokend"`}},
		{name: "another scheme is no credentials", method: "GET", header: []string{"Authorization", "Basic " + full},
			status: 401, code: "UNAUTHENTICATED", wantCalls: 0,
			headers: map[string]string{"WWW-Authenticate": `Bearer realm="tokend"`}},
		{name: "malformed token refused without asking tokend", method: "GET", header: bearer("tkd_nope"),
			status: 401, code: "UNAUTHENTICATED", reason: "MALFORMED", wantCalls: 0,
			headers: map[string]string{"WWW-Authenticate": invalid}},
		{name: "overlong token refused without asking tokend", method: "GET", header: bearer(strings.Repeat("a", 600)),
			status: 401, code: "UNAUTHENTICATED", reason: "MALFORMED", wantCalls: 0},
		{name: "unknown token", method: "GET", header: bearer(unknown.Reveal()),
			status: 401, code: "UNAUTHENTICATED", reason: "NOT_FOUND", wantCalls: 1,
			headers: map[string]string{"WWW-Authenticate": invalid}},
		{name: "expired token", method: "GET", header: bearer(refused(tokend.CodeExpired)),
			status: 401, code: "UNAUTHENTICATED", reason: "EXPIRED", wantCalls: 1,
			headers: map[string]string{"WWW-Authenticate": invalid}},
		{name: "disabled token", method: "GET", header: bearer(refused(tokend.CodeDisabled)),
			status: 401, code: "UNAUTHENTICATED", reason: "DISABLED", wantCalls: 1,
			headers: map[string]string{"WWW-Authenticate": invalid}},
		{name: "revoked token", method: "GET", header: bearer(refused(tokend.CodeRevoked)),
			status: 401, code: "UNAUTHENTICATED", reason: "REVOKED", wantCalls: 1,
			headers: map[string]string{"WWW-Authenticate": invalid}},
		{name: "used-up token", method: "GET", header: bearer(refused(tokend.CodeUsageExceeded)),
			status: 401, code: "UNAUTHENTICATED", reason: "USAGE_EXCEEDED", wantCalls: 1,
			headers: map[string]string{"WWW-Authenticate": invalid}},
		{name: "address not allowed", method: "GET", header: bearer(refused(tokend.CodeIPNotAllowed)),
			status: 403, code: "FORBIDDEN", reason: "IP_NOT_ALLOWED", wantCalls: 1,
			headers: map[string]string{"WWW-Authenticate": ""}},
		{name: "origin not allowed", method: "GET", header: bearer(refused(tokend.CodeOriginNotAllowed)),
			status: 403, code: "FORBIDDEN", reason: "ORIGIN_NOT_ALLOWED", wantCalls: 1,
			headers: map[string]string{"WWW-Authenticate": ""}},
		{name: "rate limited: 429 with Retry-After and RateLimit headers", method: "GET", header: bearer(throttled),
			status: 429, code: "RATE_LIMITED", reason: "RATE_LIMITED", wantCalls: 1,
			headers: map[string]string{"Retry-After": "7", "RateLimit-Limit": "10", "RateLimit-Remaining": "0",
				"RateLimit-Reset": "7", "WWW-Authenticate": ""}},
		{name: "rate limited without a state still says when to retry", method: "GET", header: bearer(f.add(t, fakeToken{code: tokend.CodeRateLimited, reason: "client_throttled"})),
			status: 429, code: "RATE_LIMITED", reason: "RATE_LIMITED", wantCalls: 1,
			headers: map[string]string{"Retry-After": "1", "RateLimit-Limit": ""}},
		{name: "rate-limited token passes with its state", method: "GET", header: bearer(limited),
			status: 200, tokenID: "tok_lim", wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := guard(t, f, CacheTTL(0))
			before := f.calls.Load()
			w := g.do(tt.method, tt.header...)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d; body %s", w.Code, tt.status, w.Body)
			}
			if got := f.calls.Load() - before; got != tt.wantCalls {
				t.Errorf("%d calls to tokend, want %d", got, tt.wantCalls)
			}
			for k, v := range tt.headers {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			if tt.status == 200 {
				var s handlerSaw
				if tt.method != "HEAD" {
					if err := json.Unmarshal(w.Body.Bytes(), &s); err != nil {
						t.Fatal(err)
					}
					if s.TokenID != tt.tokenID {
						t.Errorf("handler saw token %q, want %q", s.TokenID, tt.tokenID)
					}
				}
				if tt.tokenID == "tok_lim" && (s.RateLimit == nil || s.RateLimit.Remaining != 41) {
					t.Errorf("handler saw rate limit %+v, want remaining 41", s.RateLimit)
				}
				return
			}
			if g.served.Load() != 0 {
				t.Errorf("the handler ran for a refused request")
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q", ct)
			}
			var p problemDoc
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
				t.Fatalf("body %s: %v", w.Body, err)
			}
			if p.Status != tt.status || p.Code != tt.code || p.Reason != tt.reason || p.Detail == "" {
				t.Errorf("problem %+v, want status %d code %s reason %q and a detail", p, tt.status, tt.code, tt.reason)
			}
			if strings.Contains(w.Body.String(), "tkd_") {
				t.Errorf("the body shows a secret: %s", w.Body)
			}
		})
	}
}

func TestMiddlewareAsksForTheRequest(t *testing.T) {
	f := newFakeTokend(t)
	tok := f.add(t, fakeToken{})
	tests := []struct {
		name   string
		opts   []MiddlewareOption
		method string
		origin string
		want   tokend.VerifyRequest
	}{
		{name: "GET needs read; address from RemoteAddr; origin passed", method: "GET", origin: "https://app.example",
			want: tokend.VerifyRequest{Permissions: []string{"read"}, IP: "192.0.2.7", Origin: "https://app.example"}},
		{name: "OPTIONS needs read", method: "OPTIONS",
			want: tokend.VerifyRequest{Permissions: []string{"read"}, IP: "192.0.2.7"}},
		{name: "PATCH needs write", method: "PATCH",
			want: tokend.VerifyRequest{Permissions: []string{"write"}, IP: "192.0.2.7"}},
		{name: "static permissions replace the method's", method: "GET",
			opts: []MiddlewareOption{RequirePermissions("orders:write", "orders:read")},
			want: tokend.VerifyRequest{Permissions: []string{"orders:read", "orders:write"}, IP: "192.0.2.7"}},
		{name: "no permissions asks only whether the token is valid", method: "POST",
			opts: []MiddlewareOption{RequirePermissions()},
			want: tokend.VerifyRequest{IP: "192.0.2.7"}},
		{name: "permissions from a function", method: "POST",
			opts: []MiddlewareOption{PermissionsFunc(func(r *http.Request) []string { return []string{"z:write", "a:read"} })},
			want: tokend.VerifyRequest{Permissions: []string{"a:read", "z:write"}, IP: "192.0.2.7"}},
		{name: "address from a function", method: "GET",
			opts: []MiddlewareOption{ClientIPFunc(func(r *http.Request) string { return "2001:db8::1" })},
			want: tokend.VerifyRequest{Permissions: []string{"read"}, IP: "2001:db8::1"}},
		{name: "a zone is left out of the address (tokend refuses zones)", method: "GET",
			opts: []MiddlewareOption{ClientIPFunc(func(r *http.Request) string { return "fe80::1%eth0" })},
			want: tokend.VerifyRequest{Permissions: []string{"read"}, IP: "fe80::1"}},
		{name: "what is not an address is not sent", method: "GET",
			opts: []MiddlewareOption{ClientIPFunc(func(r *http.Request) string { return "unknown, 10.0.0.1" })},
			want: tokend.VerifyRequest{Permissions: []string{"read"}}},
		{name: "origin ignored when asked", method: "GET", origin: "https://app.example",
			opts: []MiddlewareOption{IgnoreOrigin()},
			want: tokend.VerifyRequest{Permissions: []string{"read"}, IP: "192.0.2.7"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := guard(t, f, append(tt.opts, CacheTTL(0))...)
			h := bearer(tok)
			if tt.origin != "" {
				h = append(h, "Origin", tt.origin)
			}
			if w := g.do(tt.method, h...); w.Code != 200 {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			got := f.lastRequest()
			tt.want.Token = tok
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("tokend was asked %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestMiddlewareCache(t *testing.T) {
	f := newFakeTokend(t)
	clk := newClock()
	tok := f.add(t, fakeToken{})
	g := guard(t, f, CacheTTL(10*time.Second), withClock(clk))

	step := func(name, method string, wantStatus int, wantCalls int64) {
		t.Helper()
		before := f.calls.Load()
		w := g.do(method, bearer(tok)...)
		if w.Code != wantStatus {
			t.Fatalf("%s: status %d, want %d", name, w.Code, wantStatus)
		}
		if got := f.calls.Load() - before; got != wantCalls {
			t.Errorf("%s: %d calls to tokend, want %d", name, got, wantCalls)
		}
	}
	step("first request asks", "GET", 200, 1)
	clk.Advance(9 * time.Second)
	step("within the TTL the answer is reused", "GET", 200, 0)
	step("another permission is another question", "POST", 200, 1)
	clk.Advance(time.Second)
	step("at the TTL tokend is asked again", "GET", 200, 1)

	f.set(tok, fakeToken{code: tokend.CodeRevoked})
	step("revocation is seen once the TTL has passed", "POST", 200, 0)
	clk.Advance(10 * time.Second)
	step("refusals are seen after the TTL", "GET", 401, 1)
	step("a refusal is reused", "GET", 401, 0)
	clk.Advance(DefaultRefusalTTL - time.Second)
	step("within the refusal TTL", "GET", 401, 0)
	f.set(tok, fakeToken{access: tokend.AccessFull})
	clk.Advance(time.Second)
	step("a token enabled again passes once the refusal TTL has passed", "GET", 200, 1)
}

// Refusals are cached for RefusalTTL, by default the shorter of
// DefaultRefusalTTL and the TTL; never RATE_LIMITED; and CacheTTL(0) alone
// turns all caching off, as it did before refusals were cached.
func TestMiddlewareRefusalCache(t *testing.T) {
	for _, tt := range []struct {
		name  string
		opts  []MiddlewareOption
		code  tokend.Code
		calls int64 // for three requests within a second
	}{
		{"revoked, defaults", nil, tokend.CodeRevoked, 1},
		{"not found, defaults", nil, tokend.CodeNotFound, 1},
		{"insufficient permissions, defaults", nil, tokend.CodeInsufficientPermissions, 1},
		{"rate limited is never cached", nil, tokend.CodeRateLimited, 3},
		{"RefusalTTL(0)", []MiddlewareOption{RefusalTTL(0)}, tokend.CodeRevoked, 3},
		{"CacheTTL(0) alone caches nothing", []MiddlewareOption{CacheTTL(0)}, tokend.CodeRevoked, 3},
		{"CacheTTL(0) with RefusalTTL", []MiddlewareOption{CacheTTL(0), RefusalTTL(time.Minute)}, tokend.CodeRevoked, 1},
		{"a short TTL shortens refusals", []MiddlewareOption{CacheTTL(100 * time.Millisecond)}, tokend.CodeRevoked, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeTokend(t)
			clk := newClock()
			tok := f.add(t, fakeToken{code: tt.code})
			g := guard(t, f, append(tt.opts, withClock(clk))...)
			want := tt.code.Status()
			var first *httptest.ResponseRecorder
			for range 3 {
				w := g.do("GET", bearer(tok)...)
				if w.Code != want {
					t.Fatalf("status %d, want %d", w.Code, want)
				}
				// A cached refusal is the same answer as the first.
				if first == nil {
					first = w
				} else if w.Body.String() != first.Body.String() || !maps.EqualFunc(w.Header(), first.Header(), slices.Equal) {
					t.Errorf("a repeated refusal differs: %v %s, first %v %s", w.Header(), w.Body, first.Header(), first.Body)
				}
				clk.Advance(300 * time.Millisecond)
			}
			if n := f.calls.Load(); n != tt.calls {
				t.Errorf("%d calls to tokend, want %d", n, tt.calls)
			}
		})
	}
}

func TestMiddlewareCacheNeverOutlivesExpiry(t *testing.T) {
	f := newFakeTokend(t)
	clk := newClock()
	exp := clk.Now().Add(3 * time.Second)
	tok := f.add(t, fakeToken{expiresAt: &exp})
	g := guard(t, f, CacheTTL(time.Minute), StaleIfUnavailable(time.Hour), withClock(clk))

	if w := g.do("GET", bearer(tok)...); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	clk.Advance(2 * time.Second)
	if w := g.do("GET", bearer(tok)...); w.Code != 200 || f.calls.Load() != 1 {
		t.Fatalf("before expiry: status %d after %d calls, want 200 after 1", w.Code, f.calls.Load())
	}
	clk.Advance(time.Second)
	f.down.Store(true)
	if w := g.do("GET", bearer(tok)...); w.Code != 503 || f.calls.Load() != 2 {
		t.Errorf("at expiry with tokend down: status %d after %d calls, want 503 after 2 (no stale answer past expiry)", w.Code, f.calls.Load())
	}
	f.down.Store(false)
	f.set(tok, fakeToken{code: tokend.CodeExpired})
	if w := g.do("GET", bearer(tok)...); w.Code != 401 {
		t.Errorf("at expiry: status %d, want 401", w.Code)
	}

	// An answer for a token already expired by the middleware's clock
	// is not kept at all.
	past := clk.Now().Add(-time.Second)
	late := f.add(t, fakeToken{expiresAt: &past})
	g.do("GET", bearer(late)...)
	g.do("GET", bearer(late)...)
	if n := f.calls.Load(); n != 5 {
		t.Errorf("%d calls to tokend, want 5: an answer for a token already expired was cached", n)
	}
}

func TestMiddlewareUsedUpRateLimitNotCached(t *testing.T) {
	f := newFakeTokend(t)
	tok := f.add(t, fakeToken{rateLimit: &tokend.RateLimitState{Limit: 5, Remaining: 0, Reset: 60}})
	g := guard(t, f, withClock(newClock()))
	g.do("GET", bearer(tok)...)
	g.do("GET", bearer(tok)...)
	if n := f.calls.Load(); n != 2 {
		t.Errorf("%d calls, want 2: the last request of a window must not be cached", n)
	}
}

func TestMiddlewareTokendUnavailable(t *testing.T) {
	tests := []struct {
		name     string
		break_   func(f *fakeTokend)
		grace    time.Duration
		advance  time.Duration // after the first, successful request
		wantCode int
	}{
		{name: "tokend answering 503 fails closed", break_: func(f *fakeTokend) { f.down.Store(true) },
			advance: 10 * time.Second, wantCode: 503},
		{name: "tokend unreachable fails closed", break_: func(f *fakeTokend) { f.srv.Close() },
			advance: 10 * time.Second, wantCode: 503},
		{name: "within the grace a cached answer is served", break_: func(f *fakeTokend) { f.down.Store(true) },
			grace: time.Minute, advance: 10*time.Second + 59*time.Second, wantCode: 200},
		{name: "within the grace a cached answer is served when unreachable", break_: func(f *fakeTokend) { f.srv.Close() },
			grace: time.Minute, advance: 30 * time.Second, wantCode: 200},
		{name: "past the grace it fails closed", break_: func(f *fakeTokend) { f.down.Store(true) },
			grace: time.Minute, advance: 10*time.Second + time.Minute, wantCode: 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeTokend(t)
			clk := newClock()
			tok := f.add(t, fakeToken{id: "tok_cached"})
			var errs []error
			var mu sync.Mutex
			g := guard(t, f, CacheTTL(10*time.Second), StaleIfUnavailable(tt.grace), withClock(clk),
				OnError(func(r *http.Request, err error) {
					mu.Lock()
					defer mu.Unlock()
					errs = append(errs, err)
				}))
			if w := g.do("GET", bearer(tok)...); w.Code != 200 {
				t.Fatalf("status %d while tokend is up", w.Code)
			}
			tt.break_(f)
			clk.Advance(tt.advance)
			w := g.do("GET", bearer(tok)...)
			if w.Code != tt.wantCode {
				t.Fatalf("status %d, want %d; body %s", w.Code, tt.wantCode, w.Body)
			}
			if len(errs) != 1 {
				t.Errorf("OnError heard %d errors, want 1", len(errs))
			} else if strings.Contains(errs[0].Error(), tok) {
				t.Errorf("the error shows the secret: %v", errs[0])
			}
			if tt.wantCode == 503 {
				var p problemDoc
				if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Code != "UNAVAILABLE" {
					t.Errorf("body %s, want an UNAVAILABLE problem", w.Body)
				}
				// A token never seen fails closed too.
				other, _ := secret.Generate("tkd")
				if w := g.do("GET", bearer(other.Reveal())...); w.Code != 503 {
					t.Errorf("unseen token: status %d, want 503", w.Code)
				}
			}
		})
	}
}

func TestMiddlewareRefusalDropsTheStaleAnswer(t *testing.T) {
	f := newFakeTokend(t)
	clk := newClock()
	tok := f.add(t, fakeToken{})
	g := guard(t, f, CacheTTL(10*time.Second), StaleIfUnavailable(time.Hour), withClock(clk))
	if w := g.do("GET", bearer(tok)...); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	clk.Advance(11 * time.Second)
	f.set(tok, fakeToken{code: tokend.CodeRevoked})
	if w := g.do("GET", bearer(tok)...); w.Code != 401 {
		t.Fatalf("status %d for a revoked token, want 401", w.Code)
	}
	f.down.Store(true)
	if w := g.do("GET", bearer(tok)...); w.Code != 401 {
		t.Errorf("status %d during an outage within the refusal TTL, want the cached 401", w.Code)
	}
	clk.Advance(DefaultRefusalTTL)
	if w := g.do("GET", bearer(tok)...); w.Code != 503 {
		t.Errorf("status %d during an outage after a refusal, want 503: a refused token must not come back", w.Code)
	}
}

func TestMiddlewareGraceWithoutTTL(t *testing.T) {
	f := newFakeTokend(t)
	clk := newClock()
	tok := f.add(t, fakeToken{})
	g := guard(t, f, CacheTTL(0), StaleIfUnavailable(time.Minute), withClock(clk))
	g.do("GET", bearer(tok)...)
	g.do("GET", bearer(tok)...)
	if n := f.calls.Load(); n != 2 {
		t.Errorf("%d calls, want 2: without a TTL every request asks", n)
	}
	f.down.Store(true)
	clk.Advance(30 * time.Second)
	if w := g.do("GET", bearer(tok)...); w.Code != 200 {
		t.Errorf("status %d during an outage within the grace, want 200", w.Code)
	}
}

func TestMiddlewareCacheBounded(t *testing.T) {
	for _, size := range []int{1, 3, 100} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			f := newFakeTokend(t)
			clk := newClock()
			g := guard(t, f, CacheSize(size), withClock(clk))
			for i := 0; i < 5*size+10; i++ {
				if w := g.do("GET", bearer(f.add(t, fakeToken{}))...); w.Code != 200 {
					t.Fatalf("status %d", w.Code)
				}
				if n := g.mw.cache.len(); n > size {
					t.Fatalf("%d entries, over the bound of %d", n, size)
				}
			}
			// The newest answer is the one kept.
			tok := f.add(t, fakeToken{})
			g.do("GET", bearer(tok)...)
			before := f.calls.Load()
			g.do("GET", bearer(tok)...)
			if f.calls.Load() != before {
				t.Errorf("the newest answer was not kept")
			}
		})
	}
}

func TestMiddlewareCollapsesConcurrentMisses(t *testing.T) {
	f := newFakeTokend(t)
	tok := f.add(t, fakeToken{id: "tok_shared"})
	gate, entered := f.hold()
	g := guard(t, f, withClock(newClock()))

	const n = 50
	var wg sync.WaitGroup
	codes := make(chan int, n)
	for range n {
		wg.Go(func() { codes <- g.do("GET", bearer(tok)...).Code })
	}
	<-entered // the one call reached tokend; the others wait for it or find its answer
	close(gate)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Errorf("status %d, want 200", c)
		}
	}
	if got := f.calls.Load(); got != 1 {
		t.Errorf("%d calls to tokend for %d identical concurrent requests, want 1", got, n)
	}
}

func TestMiddlewareWaiterGivesUpWithItsContext(t *testing.T) {
	f := newFakeTokend(t)
	tok := f.add(t, fakeToken{})
	gate, entered := f.hold()
	g := guard(t, f, withClock(newClock()))

	leader := make(chan int)
	go func() { leader <- g.do("GET", bearer(tok)...).Code }()
	<-entered
	defer func() {
		close(gate)
		if c := <-leader; c != 200 {
			t.Errorf("the request that made the call: status %d, want 200", c)
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequestWithContext(ctx, "GET", "/orders", nil)
	r.RemoteAddr = "192.0.2.7:41001" // the same question as the first request's
	r.Header.Set("Authorization", "Bearer "+tok)
	w := httptest.NewRecorder()
	g.handler.ServeHTTP(w, r)
	if w.Code != 503 {
		t.Errorf("status %d, want 503 for a request whose context ended while waiting", w.Code)
	}
}

func TestMiddlewareConcurrentMixed(t *testing.T) {
	f := newFakeTokend(t)
	clk := newClock()
	full := f.add(t, fakeToken{id: "tok_full"})
	ro := f.add(t, fakeToken{id: "tok_ro", access: tokend.AccessReadOnly})
	revoked := f.add(t, fakeToken{code: tokend.CodeRevoked})
	g := guard(t, f, CacheSize(2), StaleIfUnavailable(time.Second), withClock(clk))

	cases := []struct {
		tok, method string
		want        int
	}{{full, "GET", 200}, {full, "POST", 200}, {ro, "GET", 200}, {ro, "PUT", 403}, {revoked, "GET", 401}}
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			c := cases[i%len(cases)]
			if i%40 == 0 {
				clk.Advance(3 * time.Second)
			}
			if w := g.do(c.method, bearer(c.tok)...); w.Code != c.want {
				t.Errorf("%s with %s: status %d, want %d", c.method, c.tok[len(c.tok)-4:], w.Code, c.want)
			}
		})
	}
	wg.Wait()
}

func TestMiddlewareOptionsRefuseImpossibleValues(t *testing.T) {
	for name, f := range map[string]func(){
		"negative TTL":         func() { CacheTTL(-1) },
		"negative refusal TTL": func() { RefusalTTL(-1) },
		"empty cache":          func() { CacheSize(0) },
		"negative grace":       func() { StaleIfUnavailable(-time.Second) },
		"zero timeout":         func() { VerifyTimeout(0) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("no panic")
				}
			}()
			f()
		})
	}
}

func TestTokenFromWithoutMiddleware(t *testing.T) {
	if tok, ok := TokenFrom(context.Background()); ok || tok != nil {
		t.Errorf("TokenFrom answered %v, %v for a bare context", tok, ok)
	}
	if rl, ok := RateLimitFrom(context.Background()); ok || rl != nil {
		t.Errorf("RateLimitFrom answered %v, %v for a bare context", rl, ok)
	}
}

func TestCacheKeyIsUnambiguous(t *testing.T) {
	a := cacheKey(&tokend.VerifyRequest{Token: "t", Permissions: []string{"ab"}, IP: "c"})
	b := cacheKey(&tokend.VerifyRequest{Token: "t", Permissions: []string{"a", "b"}, IP: "c"})
	c := cacheKey(&tokend.VerifyRequest{Token: "t", Permissions: []string{"a"}, IP: "bc"})
	d := cacheKey(&tokend.VerifyRequest{Token: "t", IP: "", Origin: "c"})
	e := cacheKey(&tokend.VerifyRequest{Token: "t", IP: "c"})
	keys := map[[32]byte]bool{a: true, b: true, c: true, d: true, e: true}
	if len(keys) != 5 {
		t.Errorf("different questions share a cache key")
	}
}

func TestMiddlewareTimesOut(t *testing.T) {
	f := newFakeTokend(t)
	tok := f.add(t, fakeToken{})
	gate, _ := f.hold()
	defer close(gate)
	g := guard(t, f, VerifyTimeout(20*time.Millisecond))
	if w := g.do("GET", bearer(tok)...); w.Code != 503 {
		t.Errorf("status %d while tokend hangs, want 503", w.Code)
	}
}

func TestMiddlewareRealClockCaches(t *testing.T) {
	f := newFakeTokend(t)
	tok := f.add(t, fakeToken{})
	g := guard(t, f, CacheTTL(time.Hour))
	g.do("GET", bearer(tok)...)
	if w := g.do("GET", bearer(tok)...); w.Code != 200 || f.calls.Load() != 1 {
		t.Errorf("status %d after %d calls, want 200 after 1", w.Code, f.calls.Load())
	}
}

func TestMiddlewareValidWithoutTokenFailsClosed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"valid":true,"code":"VALID"}`))
	}))
	defer srv.Close()
	c, err := New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := secret.Generate("tkd")
	h := c.Middleware()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the handler ran without an identity")
	}))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+s.Reveal())
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 503 {
		t.Errorf("status %d, want 503", w.Code)
	}
}

func TestMiddlewareExposesTheOwner(t *testing.T) {
	f := newFakeTokend(t)
	owned := f.add(t, fakeToken{id: "tok_owned", access: tokend.AccessFull, owner: "acct_42"})
	plain := f.add(t, fakeToken{id: "tok_plain", access: tokend.AccessFull})
	g := guard(t, f)
	for sec, want := range map[string]string{owned: "acct_42", plain: ""} {
		w := g.do("GET", bearer(sec)...)
		var saw handlerSaw
		if err := json.Unmarshal(w.Body.Bytes(), &saw); err != nil || w.Code != 200 {
			t.Fatalf("status %d %s", w.Code, w.Body)
		}
		if saw.OwnerID != want {
			t.Errorf("%s: the handler saw owner %q, want %q", saw.TokenID, saw.OwnerID, want)
		}
	}
}
