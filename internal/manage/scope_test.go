package manage_test

import (
	"reflect"
	"strconv"
	"testing"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/manage"
	"github.com/tokend/tokend/secret"
)

// The service's rules for owner-scoped actors that the REST API does not
// reach: users (the dashboard's), the leak warnings, counts, and apps.
func TestScopedActorInTheService(t *testing.T) {
	f := newUserFixture(t)
	h, _ := secret.NewHasher([]byte("test-pepper-test-pepper-test-pepper"))
	f.svc = manage.New(manage.Options{Store: f.store, Hasher: h, Password: &cheap})
	ctx := t.Context()
	owner := f.owner(t)
	ada := owner.Actor("192.0.2.9")
	scoped := tokend.Actor{Kind: "token", ID: "tok_scoped", Name: "backend", Permissions: tokend.AdminPermissions,
		Scope: &tokend.AdminScope{OwnerID: "cust_A"}}

	for name, err := range map[string]error{
		"create a user": func() error {
			_, err := f.svc.CreateUser(ctx, scoped, manage.UserInput{Name: "Eve", Email: "eve@example.com", Role: tokend.RoleOwner, Password: goodPassword})
			return err
		}(),
		"list users":  func() error { _, err := f.svc.Users(ctx, scoped); return err }(),
		"read a user": func() error { _, err := f.svc.User(ctx, scoped, owner.ID); return err }(),
		"edit a user": func() error {
			name := "Eve"
			_, err := f.svc.UpdateUser(ctx, scoped, owner.ID, manage.UserPatch{Name: &name}, 0)
			return err
		}(),
		"delete a user": f.svc.DeleteUser(ctx, scoped, owner.ID, 0),
		"create an app": func() error { _, err := f.svc.CreateApp(ctx, scoped, tokend.AppInput{Name: "mine"}); return err }(),
	} {
		wantCode(t, name, err, tokend.ECodeForbidden)
	}
	if n := len(f.events(t, tokend.ActionUserCreate)); n != 0 {
		t.Errorf("%d users created by a scoped actor", n)
	}

	if err := f.svc.EnsureSystemApp(ctx); err != nil {
		t.Fatal(err)
	}
	app, err := f.svc.CreateApp(ctx, ada, tokend.AppInput{Name: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	for i, owner := range []string{"cust_A", "cust_B", "cust_B"} {
		if _, _, err := f.svc.CreateToken(ctx, ada, tokend.TokenInput{AppID: app.ID, OwnerID: owner, Name: "t" + strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		f    tokend.TokenFilter
		want int
	}{{tokend.TokenFilter{}, 1}, {tokend.TokenFilter{OwnerID: "cust_B"}, 0}, {tokend.TokenFilter{AppID: tokend.SystemAppID}, 0}} {
		if n, err := f.svc.CountTokens(ctx, scoped, c.f); err != nil || n != c.want {
			t.Errorf("CountTokens(%+v) = %d, %v; want %d", c.f, n, err, c.want)
		}
	}
	if n, err := f.svc.CountTokens(ctx, ada, tokend.TokenFilter{}); err != nil || n != 3 {
		t.Errorf("the owner counts %d, %v; want 3", n, err)
	}
	if _, err := f.svc.App(ctx, scoped, tokend.SystemAppID); tokend.CodeOf(err) != tokend.ECodeNotFound {
		t.Errorf("a scoped actor reads the system app: %v", err)
	}
	if _, err := f.svc.RevokeAll(ctx, scoped, app.ID); tokend.CodeOf(err) != tokend.ECodeForbidden {
		t.Errorf("a scoped actor revokes every token of an app: %v", err)
	}
	if _, err := f.svc.LeakSignals(ctx, scoped); err != nil {
		t.Errorf("LeakSignals: %v", err)
	}
}

// scopeRules says, for every method of the service that acts for an actor,
// how it treats an owner-scoped one. A new method fails
// TestEveryActorMethodIsClassifiedForScopes until it is decided and listed
// here, so that no future operation forgets the confused-deputy guard.
var scopeRules = map[string]string{
	"TokenActivity": "404 outside the scope", "TokenLeak": "404 outside the scope",
	"TokenWithNetworks": "404 outside the scope (Token)",
	"LeakSignals":       "only tokens in the scope", "DismissLeak": "404 outside the scope",
	"CreateApp": "403", "UpdateApp": "403", "DeleteApp": "403", "RevokeAll": "403",
	"App": "404 outside the scope's apps", "Apps": "the scope's apps (store filter)",
	"RevokeOwner":      "its own owner in its apps, else 404",
	"CreatePortalLink": "its own owner in its apps, else 404",
	"Events":           "events of the scope's tokens (store filter)",
	"Notifications":    "events of the scope's tokens (store filter)",
	"CreateToken":      "its owner, its apps; admin tokens no wider (403)",
	"Token":            "404 outside the scope", "Tokens": "the scope's tokens (store filter)",
	"CountTokens": "the scope's tokens (store filter)", "UpdateToken": "404 outside the scope",
	"DisableToken": "404 outside the scope", "EnableToken": "404 outside the scope",
	"RevokeToken": "404 outside the scope", "RotateToken": "404 outside the scope",
	"DeleteToken": "404 outside the scope", "TokenUsage": "404 outside the scope",
	"CreateWebhook": "403", "Webhook": "403", "Webhooks": "403", "UpdateWebhook": "403", "DeleteWebhook": "403",
	"RotateWebhookSecret": "403", "TestWebhook": "403", "WebhookDeliveries": "403", "RetryDelivery": "403",
	"Setup": "403", "CreateUser": "403", "Users": "403", "User": "403", "UpdateUser": "403", "DeleteUser": "403",
	"SetMailOptOut":   "403",
	"ReportLeaks":     "only the scope's tokens; any other secret answers unknown",
	"TokenLeakReport": "404 outside the scope",
}

func TestEveryActorMethodIsClassifiedForScopes(t *testing.T) {
	actor := reflect.TypeFor[tokend.Actor]()
	svc := reflect.TypeFor[*manage.Service]()
	seen := map[string]bool{}
	for i := range svc.NumMethod() {
		m := svc.Method(i)
		for j := range m.Type.NumIn() {
			if m.Type.In(j) == actor {
				seen[m.Name] = true
				if _, ok := scopeRules[m.Name]; !ok {
					t.Errorf("Service.%s acts for an actor but is not classified for owner-scoped admin tokens: decide its rule (internal/manage/scope.go) and add it to scopeRules", m.Name)
				}
			}
		}
	}
	for name := range scopeRules {
		if !seen[name] {
			t.Errorf("scopeRules names %s, which is no method of the service taking an actor", name)
		}
	}
}
