package tokend_test

import (
	"testing"

	"github.com/tokend/tokend"
)

func TestAdminScopeRules(t *testing.T) {
	var unscoped *tokend.AdminScope
	a := &tokend.AdminScope{OwnerID: "A"}
	ax := &tokend.AdminScope{OwnerID: "A", AppIDs: []string{"app_x"}}
	axy := &tokend.AdminScope{OwnerID: "A", AppIDs: []string{"app_x", "app_y"}}
	b := &tokend.AdminScope{OwnerID: "B"}
	for _, c := range []struct {
		name       string
		sc         *tokend.AdminScope
		app, owner string
		want       bool
	}{
		{"unscoped admits anything", unscoped, tokend.SystemAppID, "", true},
		{"its owner", a, "app_x", "A", true},
		{"another owner", a, "app_x", "B", false},
		{"no owner", a, "app_x", "", false},
		{"an admin token, even of its owner", a, tokend.SystemAppID, "A", false},
		{"its app", ax, "app_x", "A", true},
		{"another app", ax, "app_y", "A", false},
		{"a scope without owner admits nothing", &tokend.AdminScope{}, "app_x", "", false},
	} {
		if got := c.sc.Admits(c.app, c.owner); got != c.want {
			t.Errorf("%s: Admits = %v", c.name, got)
		}
	}
	for _, c := range []struct {
		name         string
		inner, outer *tokend.AdminScope
		want         bool
	}{
		{"anything within unscoped", nil, nil, true},
		{"unscoped within a scope", nil, a, false},
		{"the same", a, a, true},
		{"narrower apps", ax, a, true},
		{"all apps within some", a, ax, false},
		{"more apps", axy, ax, false},
		{"fewer apps", ax, axy, true},
		{"another owner", b, a, false},
	} {
		if got := c.inner.Within(c.outer); got != c.want {
			t.Errorf("%s: Within = %v", c.name, got)
		}
	}
	cl := axy.Clone()
	cl.AppIDs[0] = "app_z"
	if axy.AppIDs[0] != "app_x" {
		t.Error("Clone shares the app ids")
	}
}
