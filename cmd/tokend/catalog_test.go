package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/postgres/pgtest"
)

// A permission removed from an app's catalog through instance A is refused
// by instance B, which has the token cached, within the invalidation window:
// the catalog is the ceiling of every token, on every instance.
func TestCatalogChangeIsObeyedByOtherInstances(t *testing.T) {
	db := pgtest.NewDatabase(t)
	env := map[string]string{"TOKEND_PEPPER": strings.Repeat("c", 40)}
	a := startTokend(t, filepath.Join(t.TempDir(), "unused"), env, "--database", db)
	b := startTokend(t, filepath.Join(t.TempDir(), "unused"), env, "--database", db)
	for _, in := range []*instance{a, b} {
		in.waitLog(t, "invalidation listener connected", 10*time.Second)
	}
	admin := a.bootstrap
	var app tokend.App
	a.mustCall(t, 201, "POST", "/v1/apps", admin, tokend.AppInput{Name: "shop", Permissions: []string{"orders:read", "orders:export"}}, &app)
	var tok created
	a.mustCall(t, 201, "POST", "/v1/tokens", admin, tokend.TokenInput{AppID: app.ID, Name: "exporter",
		Access: tokend.AccessCustom, Permissions: []string{"orders:read", "orders:export"}}, &tok)

	export := func(in *instance) tokend.Code {
		t.Helper()
		status, body := in.call(t, "POST", "/v1/verify", "", tokend.VerifyRequest{Token: tok.Secret, Permissions: []string{"orders:export"}})
		var res tokend.VerifyResult
		if status != 200 || json.Unmarshal(body, &res) != nil {
			t.Fatalf("verify: %d %s", status, body)
		}
		return res.Code
	}
	if c := export(b); c != tokend.CodeValid {
		t.Fatalf("B before the change: %s", c)
	}
	a.mustCall(t, 200, "PATCH", "/v1/apps/"+app.ID, admin, map[string]any{"permissions": []string{"orders:read"}}, nil)
	acked := time.Now()
	for export(b) != tokend.CodeInsufficientPermissions {
		if time.Since(acked) > 5*time.Second {
			t.Fatalf("B still grants orders:export %s after it left the catalog", time.Since(acked))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if took := time.Since(acked); took > time.Second {
		t.Errorf("B took %s to obey the catalog change, more than 1s", took)
	} else {
		t.Logf("B obeyed the catalog change %s after A acknowledged it", took.Round(100*time.Microsecond))
	}
}
