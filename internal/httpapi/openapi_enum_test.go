package httpapi_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/tokend/tokend"
)

type docSchema struct {
	Enum        []string             `json:"enum"`
	Description string               `json:"description"`
	Properties  map[string]docSchema `json:"properties"`
}

// The OpenAPI document names the closed sets of strings a client meets
// (codes, access, type, status), says the units of the rate limit's
// seconds, and lists for each operation only the errors it can give.
func TestOpenAPIIsExactAboutCodesUnitsAndErrors(t *testing.T) {
	h := newHarness(t)
	var doc struct {
		Paths map[string]map[string]struct {
			Responses map[string]any `json:"responses"`
		} `json:"paths"`
		Components struct {
			Schemas map[string]docSchema `json:"schemas"`
		} `json:"components"`
	}
	h.do("GET", "/openapi.json", "", nil).json(t, &doc)
	prop := func(schema, name string) docSchema {
		t.Helper()
		s, ok := doc.Components.Schemas[schema].Properties[name]
		if !ok {
			t.Fatalf("%s has no property %s", schema, name)
		}
		return s
	}
	var errorCodes, verifyCodes []string
	for _, c := range tokend.ErrorCodes {
		errorCodes = append(errorCodes, string(c))
	}
	for _, c := range tokend.Codes {
		verifyCodes = append(verifyCodes, string(c))
	}
	for _, c := range []struct {
		schema, prop string
		want         []string
	}{
		{"Problem", "code", errorCodes},
		{"Problem", "reason", verifyCodes[1:]},
		{"VerifyResult", "code", verifyCodes},
		{"VerifiedToken", "access", []string{"read_only", "full_access", "custom"}},
		{"VerifiedToken", "type", []string{"standard", "plugin"}},
		{"Token", "access", []string{"read_only", "full_access", "custom"}},
		{"Token", "type", []string{"standard", "plugin"}},
		{"Token", "status", []string{"active", "disabled", "revoked", "expired"}},
		{"TokenInput", "access", []string{"read_only", "full_access", "custom"}},
		{"Self", "status", []string{"active"}},
		{"Delivery", "status", []string{"pending", "delivered", "failed"}},
	} {
		got := prop(c.schema, c.prop).Enum
		if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(c.want))) {
			t.Errorf("%s.%s enum = %v, want %v", c.schema, c.prop, got, c.want)
		}
	}
	for _, name := range []string{"reset", "retry_after"} {
		if d := prop("RateLimitState", name).Description; !strings.Contains(d, "econds") {
			t.Errorf("RateLimitState.%s does not say its unit: %q", name, d)
		}
	}
	for _, c := range []struct {
		op      string
		has     []string
		hasNone []string
	}{
		{"get /healthz", nil, []string{"400", "401", "403", "404", "422", "429", "503"}},
		{"get /readyz", []string{"503"}, []string{"401", "403", "404", "422"}},
		{"post /v1/verify", []string{"400", "413", "415", "422", "503"}, []string{"401", "403", "404", "429"}},
		{"get /v1/auth", []string{"401", "403", "429"}, []string{"404", "413", "415"}},
		{"get /v1/self", []string{"401", "403", "429", "503"}, []string{"404", "413", "415"}},
		{"get /v1/tokens", []string{"401", "403", "422", "429"}, []string{"413", "415"}},
		{"post /v1/tokens", []string{"400", "401", "403", "409", "413", "415", "422"}, nil},
	} {
		method, path, _ := strings.Cut(c.op, " ")
		op, ok := doc.Paths[path][method]
		if !ok {
			t.Errorf("no %s", c.op)
			continue
		}
		for _, s := range c.has {
			if op.Responses[s] == nil {
				t.Errorf("%s does not list %s", c.op, s)
			}
		}
		for _, s := range c.hasNone {
			if op.Responses[s] != nil {
				t.Errorf("%s lists %s, which it cannot answer", c.op, s)
			}
		}
	}
}
