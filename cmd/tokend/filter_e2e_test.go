package main

import (
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/secret"
)

// TestUnknownSecretsCostNoReadOnSQLite floods a real server on SQLite
// with distinct well-formed secrets that no token has: once the filter of
// known secrets is built, none of them reads the database
// (tokend_storage_reads_total stays put), while a token created then is
// VALID at once, its secret added before it was handed out.
func TestUnknownSecretsCostNoReadOnSQLite(t *testing.T) {
	in := startTokend(t, t.TempDir(), nil, "--failure-limit", "0")
	const reads = `tokend_storage_reads_total{op="verify"}`
	deadline := time.Now().Add(30 * time.Second)
	for {
		if n, _ := in.metric(t, "tokend_secret_filter_rebuilds_total"); n >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the filter of known secrets was not built within 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	before, ok := in.metric(t, reads)
	if !ok {
		t.Fatalf("/metrics has no %s", reads)
	}
	for range 300 {
		s, err := secret.Generate("shop")
		if err != nil {
			t.Fatal(err)
		}
		if c := in.verifyCode(t, s.Reveal()); c != tokend.CodeNotFound {
			t.Fatalf("an unknown secret answered %s", c)
		}
	}
	if after, _ := in.metric(t, reads); after != before {
		t.Errorf("300 distinct unknown secrets made %v storage reads, want 0", after-before)
	}

	var app tokend.App
	in.create(t, "/v1/apps", in.bootstrap, map[string]any{"name": "Shop", "token_prefix": "shop"}, &app)
	var tok created
	in.create(t, "/v1/tokens", in.bootstrap, map[string]any{"app_id": app.ID, "name": "ci", "access": "full_access"}, &tok)
	if c := in.verifyCode(t, tok.Secret); c != tokend.CodeValid {
		t.Fatalf("a token just created answered %s, want VALID", c)
	}
}
