package client

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// discard is a ResponseWriter that keeps nothing, so that benchmarks count
// the middleware's allocations and not a recorder's.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if _, ok := TokenFrom(r.Context()); !ok {
		w.WriteHeader(http.StatusInternalServerError)
	}
})

func benchRequest(tok string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/orders", nil)
	r.RemoteAddr = "192.0.2.7:41000"
	r.Header.Set("Authorization", "Bearer "+tok)
	r.Header.Set("Origin", "https://app.example")
	return r
}

// BenchmarkMiddlewareCached is the hot path: an answer in the cache.
func BenchmarkMiddlewareCached(b *testing.B) {
	f := newFakeTokend(b)
	tok := f.add(b, fakeToken{})
	c, err := New(f.srv.URL)
	if err != nil {
		b.Fatal(err)
	}
	h := c.Middleware(CacheTTL(time.Hour))(okHandler)
	r := benchRequest(tok)
	h.ServeHTTP(&discard{h: http.Header{}}, r)
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
	if n := f.calls.Load(); n != 1 {
		b.Fatalf("%d calls to tokend, want 1", n)
	}
}

// BenchmarkMiddlewareCachedParallel is the hot path from every core, on
// answers for a handful of tokens.
func BenchmarkMiddlewareCachedParallel(b *testing.B) {
	f := newFakeTokend(b)
	c, err := New(f.srv.URL)
	if err != nil {
		b.Fatal(err)
	}
	h := c.Middleware(CacheTTL(time.Hour))(okHandler)
	var reqs []*http.Request
	for range 64 {
		r := benchRequest(f.add(b, fakeToken{}))
		h.ServeHTTP(&discard{h: http.Header{}}, r)
		reqs = append(reqs, r)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &discard{h: http.Header{}}
		for i := 0; pb.Next(); i++ {
			h.ServeHTTP(w, reqs[i%len(reqs)])
		}
	})
}

// BenchmarkMiddlewareMiss asks the local fake tokend on every request.
func BenchmarkMiddlewareMiss(b *testing.B) {
	f := newFakeTokend(b)
	tok := f.add(b, fakeToken{})
	c, err := New(f.srv.URL)
	if err != nil {
		b.Fatal(err)
	}
	h := c.Middleware(CacheTTL(0))(okHandler)
	r := benchRequest(tok)
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

// BenchmarkMiddlewareRefusedMalformed is a made-up token, refused without
// a call.
func BenchmarkMiddlewareRefusedMalformed(b *testing.B) {
	c, err := New("http://127.0.0.1:1")
	if err != nil {
		b.Fatal(err)
	}
	h := c.Middleware()(okHandler)
	r := benchRequest("tkd_0000000000000000000000000000000000000000000_000000")
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(&discard{h: http.Header{}}, r)
	}
}
