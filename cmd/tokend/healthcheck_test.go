package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthcheck(t *testing.T) {
	in := startTokend(t, t.TempDir(), nil)
	addr := strings.TrimPrefix(in.url, "http://")
	healthcheck := func(env map[string]string, args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(context.Background(), append([]string{"healthcheck"}, args...), func(k string) string { return env[k] }, nil, &out, &errOut)
		return out.String(), err
	}

	if out, err := healthcheck(nil, "--addr", addr); err != nil || out != "ok: http://"+addr+"/healthz answered 200 OK\n" {
		t.Errorf("healthcheck --addr %s: %q, %v", addr, out, err)
	}
	// The container sets TOKEND_ADDR for serve; healthcheck reads it too.
	if out, err := healthcheck(map[string]string{"TOKEND_ADDR": addr}); err != nil || !strings.HasPrefix(out, "ok: ") {
		t.Errorf("healthcheck with TOKEND_ADDR=%s: %q, %v", addr, out, err)
	}

	// A server that answers, but not 200, is unhealthy.
	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer sick.Close()
	_, err := healthcheck(nil, "--addr", strings.TrimPrefix(sick.URL, "http://"))
	wantErr(t, "healthcheck of a server answering 503", err, "answered 503 Service Unavailable")

	// Nothing listening.
	in.stop()
	_, err = healthcheck(nil, "--addr", addr)
	wantErr(t, "healthcheck of a stopped server", err, "connection refused")
	_, err = healthcheck(nil, "--addr", "nonsense")
	wantErr(t, "healthcheck --addr nonsense", err, `--addr "nonsense"`)
}

func TestHealthzURLAsksAWildcardAddressOnLoopback(t *testing.T) {
	for addr, want := range map[string]string{
		"0.0.0.0:8080":   "http://127.0.0.1:8080/healthz",
		":8080":          "http://127.0.0.1:8080/healthz",
		"[::]:8080":      "http://[::1]:8080/healthz",
		"10.1.2.3:9000":  "http://10.1.2.3:9000/healthz",
		"localhost:8080": "http://localhost:8080/healthz",
	} {
		if got, err := healthzURL(addr, false); err != nil || got != want {
			t.Errorf("healthzURL(%q) = %q, %v; want %q", addr, got, err, want)
		}
	}
	if got, _ := healthzURL("0.0.0.0:8443", true); got != "https://127.0.0.1:8443/healthz" {
		t.Errorf("under TLS: %q", got)
	}
}
