package httpapi_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/httpapi"
)

// TestChildAdminTokenWithinParent: an admin token cannot create or edit an
// admin token that outlives, out-reaches or out-paces it.
func TestChildAdminTokenWithinParent(t *testing.T) {
	h := newHarness(t)
	// The reproduction of the review: a short-lived, IP-bound,
	// rate-limited, owner-scoped admin token.
	r := h.do("POST", "/v1/tokens", h.owner, map[string]any{
		"app_id": tokend.SystemAppID, "name": "parent", "access": "custom", "permissions": []string{"tokens:read", "tokens:write"},
		"allowed_ips": []string{"127.0.0.0/8"}, "rate_limit": map[string]any{"limit": 100, "window": "1h"}, "expires_in": "1h",
		"scope": map[string]any{"owner_id": "acct_42"},
	})
	if r.status != http.StatusCreated {
		t.Fatalf("parent: %d %s", r.status, r.body)
	}
	var parent httpapi.TokenWithSecret
	r.json(t, &parent)
	sec := parent.Secret

	child := func(over map[string]any) map[string]any {
		b := map[string]any{
			"app_id": tokend.SystemAppID, "name": "child", "access": "custom", "permissions": []string{"tokens:read", "tokens:write"},
			"expires_in": "30m", "allowed_ips": []string{"127.0.0.1/32"}, "rate_limit": map[string]any{"limit": 10, "window": "1h"},
			"scope": map[string]any{"owner_id": "acct_42"},
		}
		for k, v := range over {
			if v == nil {
				delete(b, k)
			} else {
				b[k] = v
			}
		}
		return b
	}
	later := time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339)
	for _, c := range []struct {
		name  string
		over  map[string]any
		field string
	}{
		{"the review's child", map[string]any{"expires_in": "36500d", "allowed_ips": nil, "rate_limit": nil}, "expires_in"},
		{"no expiry given", map[string]any{"expires_in": nil}, "expires_in"},
		{"unlimited expiry", map[string]any{"expires_in": "unlimited"}, "expires_in"},
		{"a later expiry", map[string]any{"expires_in": "2h"}, "expires_in"},
		{"a later expires_at", map[string]any{"expires_in": nil, "expires_at": later}, "expires_at"},
		{"no IP ranges", map[string]any{"allowed_ips": nil}, "allowed_ips"},
		{"a wider range", map[string]any{"allowed_ips": []string{"127.0.0.0/7"}}, "allowed_ips"},
		{"a range outside", map[string]any{"allowed_ips": []string{"127.0.0.1", "10.0.0.0/8"}}, "allowed_ips"},
		{"no rate limit", map[string]any{"rate_limit": nil}, "rate_limit"},
		{"a higher rate", map[string]any{"rate_limit": map[string]any{"limit": 3, "window": "1m"}}, "rate_limit"},
	} {
		r := h.do("POST", "/v1/tokens", sec, child(c.over))
		if r.status != http.StatusUnprocessableEntity {
			t.Errorf("%s: %d %s, want 422", c.name, r.status, r.body)
			continue
		}
		if f := fields(r.problem(t)); !slices.Contains(f, c.field) {
			t.Errorf("%s: fields %v, want %s", c.name, f, c.field)
		}
	}
	// Nothing was created.
	var list struct {
		Data []tokend.Token `json:"data"`
	}
	h.do("GET", "/v1/tokens?app_id="+tokend.SystemAppID, h.owner, nil).json(t, &list)
	for _, tk := range list.Data {
		if tk.Name == "child" {
			t.Fatalf("a refused child was created: %+v", tk)
		}
	}

	// Within bounds: an equal expiry, the same or a narrower range, an
	// equal rate in other units.
	// (The parent's own expires_at, not a second "expires_in": "1h" read
	// later on a busy machine's clock.)
	r = h.do("POST", "/v1/tokens", sec, child(map[string]any{"expires_in": nil, "expires_at": parent.Token.ExpiresAt, "allowed_ips": []string{"127.0.0.0/8", "::ffff:127.0.0.2"},
		"rate_limit": map[string]any{"limit": 2400, "window": "1d"}}))
	if r.status != http.StatusCreated {
		t.Fatalf("within bounds: %d %s", r.status, r.body)
	}
	var made httpapi.TokenWithSecret
	r.json(t, &made)
	if made.Token.CreatedBy != "token:"+parent.Token.ID {
		t.Errorf("created_by = %q", made.Token.CreatedBy)
	}

	// Edits are bounded the same way. An owner-scoped admin token does not
	// see admin tokens, so this parent is unscoped.
	r = h.do("POST", "/v1/tokens", h.owner, map[string]any{
		"app_id": tokend.SystemAppID, "name": "parent 2", "access": "custom", "permissions": []string{"tokens:read", "tokens:write"},
		"allowed_ips": []string{"127.0.0.0/8"}, "rate_limit": map[string]any{"limit": 100, "window": "1h"}, "expires_in": "1h",
	})
	if r.status != http.StatusCreated {
		t.Fatalf("parent 2: %d %s", r.status, r.body)
	}
	r.json(t, &parent)
	sec = parent.Secret
	r = h.do("POST", "/v1/tokens", sec, child(map[string]any{"name": "child of 2", "scope": nil}))
	if r.status != http.StatusCreated {
		t.Fatalf("child of parent 2: %d %s", r.status, r.body)
	}
	r.json(t, &made)
	for _, c := range []struct {
		patch map[string]any
		field string
	}{
		{map[string]any{"expires_at": nil}, "expires_at"},
		{map[string]any{"expires_in": "90d"}, "expires_in"},
		{map[string]any{"allowed_ips": nil}, "allowed_ips"},
		{map[string]any{"allowed_ips": []string{"0.0.0.0/0"}}, "allowed_ips"},
		{map[string]any{"rate_limit": nil}, "rate_limit"},
		{map[string]any{"rate_limit": map[string]any{"limit": 1000, "window": "1h"}}, "rate_limit"},
	} {
		r := h.do("PATCH", "/v1/tokens/"+made.Token.ID, sec, c.patch)
		if r.status != http.StatusUnprocessableEntity {
			t.Errorf("patch %v: %d %s, want 422", c.patch, r.status, r.body)
			continue
		}
		if f := fields(r.problem(t)); !slices.Contains(f, c.field) {
			t.Errorf("patch %v: fields %v, want %s", c.patch, f, c.field)
		}
	}
	r = h.do("PATCH", "/v1/tokens/"+made.Token.ID, sec, map[string]any{"name": "child 2", "expires_in": "10m", "rate_limit": map[string]any{"limit": 1, "window": "1h"}})
	if r.status != http.StatusOK {
		t.Errorf("patch within bounds: %d %s", r.status, r.body)
	}

	// An unrestricted admin token (the bootstrap one) is not bounded.
	r = h.do("POST", "/v1/tokens", h.owner, child(map[string]any{"name": "loose", "expires_in": "36500d", "allowed_ips": nil, "rate_limit": nil}))
	if r.status != http.StatusCreated {
		t.Errorf("unrestricted parent: %d %s", r.status, r.body)
	}
	var loose httpapi.TokenWithSecret
	r.json(t, &loose)
	if r := h.do("PATCH", "/v1/tokens/"+loose.Token.ID, h.owner, map[string]any{"expires_at": nil}); r.status != http.StatusOK {
		t.Errorf("unrestricted parent's edit: %d %s", r.status, r.body)
	}
	// Nor is a product token created by a restricted admin token.
	app := h.createApp(tokend.AppInput{Name: "shop", Permissions: []string{"orders:read"}})
	r = h.do("POST", "/v1/tokens", sec, map[string]any{"app_id": app.ID, "owner_id": "acct_42", "name": "product", "expires_in": "90d"})
	if r.status != http.StatusCreated {
		t.Errorf("product token from a restricted admin token: %d %s", r.status, r.body)
	}
}
