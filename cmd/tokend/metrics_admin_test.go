package main

import (
	"testing"

	"github.com/tokend/tokend"
)

// Admin tokens used on the management API are counted in
// tokend_admin_authentications_total, not with product verifications in
// tokend_verifications_total, whose series stay as they were.
func TestAdminAuthenticationsAreCountedApartOnMetrics(t *testing.T) {
	in := startTokend(t, t.TempDir(), nil)
	valid := `tokend_verifications_total{code="VALID"}`
	admin := `tokend_admin_authentications_total{code="VALID"}`
	v0, ok := in.metric(t, valid)
	if !ok {
		t.Fatalf("no %s", valid)
	}
	a0, ok := in.metric(t, admin)
	if !ok {
		t.Fatalf("no %s", admin)
	}
	var app tokend.App
	in.create(t, "/v1/apps", in.bootstrap, tokend.AppInput{Name: "Shop"}, &app)
	for range 3 {
		if status, b := in.call(t, "GET", "/v1/apps", in.bootstrap, nil); status != 200 {
			t.Fatalf("GET /v1/apps = %d %s", status, b)
		}
	}
	if res := in.verifyAs(t, in.bootstrap, ""); !res.Valid {
		t.Fatalf("verify: %+v", res)
	}
	if v, _ := in.metric(t, valid); v != v0+1 {
		t.Errorf("%s = %v after 4 admin calls and 1 verification, want %v", valid, v, v0+1)
	}
	if a, _ := in.metric(t, admin); a != a0+4 {
		t.Errorf("%s = %v after 4 admin calls, want %v", admin, a, a0+4)
	}
}
