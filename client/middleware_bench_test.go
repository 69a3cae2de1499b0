package client

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
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

// benchClient answers a fake tokend that knows one token, a client of it,
// and the token.
func benchClient(b *testing.B) (*fakeTokend, *Client, string) {
	f := newFakeTokend(b)
	tok := f.add(b, fakeToken{})
	c, err := New(f.srv.URL)
	if err != nil {
		b.Fatal(err)
	}
	return f, c, tok
}

// BenchmarkMiddlewareCached is the hot path: an answer in the cache.
func BenchmarkMiddlewareCached(b *testing.B) {
	f, c, tok := benchClient(b)
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
	_, c, tok := benchClient(b)
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

// BenchmarkMiddlewareOverHTTP serves the same hello-world handler twice on
// 127.0.0.1 (httptest servers), plain and behind Middleware with the
// token's answer cached, and sends both the same request from parallel
// workers over keep-alive connections, in alternating rounds (each pair in
// turn order) so that both see the same machine noise. b.N requests go to
// each. It reports each one's time per request and with/without: the
// median over the rounds of the ratio of their throughputs (1 means the
// middleware costs nothing over HTTP), by wall time and, steadier on a
// shared machine, by the CPU time the process used (client included).
//
//	go test -run '^$' -bench MiddlewareOverHTTP -benchtime 100000x -count 5 ./client/
func BenchmarkMiddlewareOverHTTP(b *testing.B) {
	f, c, tok := benchClient(b)
	hello := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "hello, world\n")
	})
	plain := httptest.NewServer(hello)
	defer plain.Close()
	guarded := httptest.NewServer(c.Middleware(CacheTTL(time.Hour))(hello))
	defer guarded.Close()

	workers := 4 * runtime.GOMAXPROCS(0)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	defer client.CloseIdleConnections()
	get := func(url string) error {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if err == nil && res.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s answered %s", url, res.Status)
		}
		return err
	}
	// round sends n requests to url from the workers and answers how long
	// they took and how much CPU time the process used meanwhile (client
	// and server: the same client work on both sides of the ratio).
	round := func(url string, n int) (wall, cpu time.Duration) {
		var next atomic.Int64
		var failed atomic.Pointer[error]
		var wg sync.WaitGroup
		cpu0, _ := processCPU()
		start := time.Now()
		for range workers {
			wg.Go(func() {
				for next.Add(1) <= int64(n) {
					if err := get(url); err != nil {
						failed.CompareAndSwap(nil, &err)
						return
					}
				}
			})
		}
		wg.Wait()
		wall = time.Since(start)
		cpu1, _ := processCPU()
		if err := failed.Load(); err != nil {
			b.Fatal(*err)
		}
		return wall, cpu1 - cpu0
	}
	round(guarded.URL, workers) // the first answer is cached; connections open
	round(plain.URL, workers)

	const rounds = 20
	n := max(b.N/rounds, 1)
	var with, without time.Duration
	var ratios, cpuRatios []float64
	b.ResetTimer()
	for i := range rounds {
		var w, wo, cw, cwo time.Duration
		if i%2 == 0 {
			w, cw = round(guarded.URL, n)
			wo, cwo = round(plain.URL, n)
		} else {
			wo, cwo = round(plain.URL, n)
			w, cw = round(guarded.URL, n)
		}
		with, without = with+w, without+wo
		ratios = append(ratios, float64(wo)/float64(w))
		if cw > 0 {
			cpuRatios = append(cpuRatios, float64(cwo)/float64(cw))
		}
	}
	b.StopTimer()
	if calls := f.calls.Load(); calls != 1 {
		b.Fatalf("%d calls to tokend, want 1 (the answer was not cached)", calls)
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(with.Nanoseconds())/float64(rounds*n), "ns/req-with")
	b.ReportMetric(float64(without.Nanoseconds())/float64(rounds*n), "ns/req-without")
	b.ReportMetric(median(ratios), "with/without")
	if len(cpuRatios) == rounds {
		b.ReportMetric(median(cpuRatios), "with/without-cpu")
	}
}

// median answers the median of xs, which it sorts.
func median(xs []float64) float64 {
	slices.Sort(xs)
	n := len(xs)
	return (xs[(n-1)/2] + xs[n/2]) / 2
}
