package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/bench/floor/verifyfloor"
	"github.com/tokend/tokend/internal/httpapi"
	"github.com/tokend/tokend/secret"
)

// BenchmarkVerifyHTTP is POST /v1/verify through the whole handler (every
// middleware, the decoder, the engine with the token cached, the encoder)
// for a valid token. BenchmarkVerifyHTTPFloor, run beside it, is the least
// any verifier must do for the same request on plain net/http (decode,
// checksum, HMAC, map lookup, encode): report the ratio of the two, not
// either figure alone. bench/verify.sh measures the same over TCP with wrk.
//
//	go test -run '^$' -bench '^BenchmarkVerifyHTTP' -count 5 ./internal/httpapi/
func BenchmarkVerifyHTTP(b *testing.B) {
	h := newHarness(b)
	app := h.createApp(tokend.AppInput{Name: "bench", Permissions: []string{"orders:read"}})
	_, sec := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "bench", Access: tokend.AccessReadOnly})
	srv := httpapi.NewServer(httpapi.Deps{Service: h.svc, Verifier: h.engine, Logger: slog.New(slog.DiscardHandler), Ready: h.store.Ping})
	// As on a keep-alive connection of tokend serve's (ConnContext).
	benchVerify(b, srv, sec, httpapi.ConnContext(context.Background(), nil))
}

func BenchmarkVerifyHTTPFloor(b *testing.B) {
	hasher, err := secret.NewHasher([]byte("floor-bench-pepper-0123456789abcdef"))
	if err != nil {
		b.Fatal(err)
	}
	s, err := secret.Generate("flr")
	if err != nil {
		b.Fatal(err)
	}
	answers := map[[32]byte]*tokend.VerifyResult{hasher.Sum(s.Reveal()): {Valid: true, Code: tokend.CodeValid,
		Token: &tokend.VerifiedToken{ID: "tok_floor0000000000001", AppID: "app_floor", Name: "bench", Type: tokend.TypeStandard, Access: tokend.AccessReadOnly}}}
	benchVerify(b, verifyfloor.Handler(hasher, answers), s.Reveal(), context.Background())
}

// benchVerify sends one request over and over to h, the body re-read from
// the start each time, the answer dropped; it fails unless the answer is
// 200 VALID.
func benchVerify(b *testing.B, h http.Handler, sec string, ctx context.Context) {
	raw, _ := json.Marshal(tokend.VerifyRequest{Token: sec, Permissions: []string{"orders:read"}, IP: "203.0.113.7"})
	req := httptest.NewRequestWithContext(ctx, "POST", "/v1/verify", nil)
	req.Header.Set("Content-Type", "application/json")
	body := bytes.NewReader(raw)
	w := &sinkWriter{h: http.Header{}}
	send := func() {
		body.Reset(raw)
		req.Body = readCloser{body}
		clear(w.h)
		w.code, w.buf = 0, w.buf[:0]
		h.ServeHTTP(w, req)
	}
	send()
	var res tokend.VerifyResult
	if err := json.Unmarshal(w.buf, &res); err != nil || w.code != http.StatusOK || res.Code != tokend.CodeValid {
		b.Fatalf("%d %s", w.code, w.buf)
	}
	b.ReportAllocs()
	for b.Loop() {
		send()
	}
	if w.code != http.StatusOK {
		b.Fatalf("%d %s", w.code, w.buf)
	}
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// sinkWriter keeps the last answer in a buffer it reuses.
type sinkWriter struct {
	h    http.Header
	code int
	buf  []byte
}

func (s *sinkWriter) Header() http.Header { return s.h }
func (s *sinkWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
}
func (s *sinkWriter) Write(p []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	s.buf = append(s.buf, p...)
	return len(p), nil
}
