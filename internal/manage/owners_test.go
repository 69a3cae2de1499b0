package manage_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

func TestOwners(t *testing.T) {
	svc, app := newService(t)
	ctx := context.Background()
	if err := svc.EnsureSystemApp(ctx); err != nil {
		t.Fatal(err)
	}
	create := func(in tokend.TokenInput) (tokend.Token, error) {
		t.Helper()
		if in.AppID == "" {
			in.AppID = app.ID
		}
		tok, _, err := svc.CreateToken(ctx, tokend.SystemActor, in)
		return tok, err
	}
	tok, err := create(tokend.TokenInput{Name: "ci", OwnerID: "acct_42", OwnerName: "Zoë O'Brien"})
	if err != nil {
		t.Fatalf("create with an owner: %v", err)
	}
	if tok.OwnerID != "acct_42" || tok.OwnerName != "Zoë O'Brien" {
		t.Errorf("created owner %q %q", tok.OwnerID, tok.OwnerName)
	}
	if _, err := create(tokend.TokenInput{Name: "ci", OwnerID: "acct_43"}); err != nil {
		t.Errorf("the same name for another owner: %v", err)
	}
	if _, err := create(tokend.TokenInput{Name: "ci", OwnerID: "acct_42"}); tokend.CodeOf(err) != tokend.ECodeConflict || !strings.Contains(err.Error(), "owner") {
		t.Errorf("the same name for the same owner: %v, want a conflict about the owner's names", err)
	}

	for name, in := range map[string]tokend.TokenInput{
		"owner id with a space":   {Name: "x", OwnerID: "acct 1"},
		"owner id of 129":         {Name: "x", OwnerID: strings.Repeat("a", 129)},
		"owner id with NUL":       {Name: "x", OwnerID: "a\x00"},
		"owner id not ASCII":      {Name: "x", OwnerID: "é"},
		"owner name with NUL":     {Name: "x", OwnerID: "a", OwnerName: "a\x00b"},
		"owner name bidi":         {Name: "x", OwnerID: "a", OwnerName: "\u202eevil"},
		"owner name invalid UTF8": {Name: "x", OwnerID: "a", OwnerName: "\xff"},
		"owner name of 201":       {Name: "x", OwnerID: "a", OwnerName: strings.Repeat("é", 201)},
		"owner name without id":   {Name: "x", OwnerName: "Zoë"},
		"admin token with owner":  {AppID: tokend.SystemAppID, Name: "x", OwnerID: "acct_42"},
	} {
		if _, err := create(in); tokend.CodeOf(err) != tokend.ECodeInvalid {
			t.Errorf("%s: %v, want %s", name, err, tokend.ECodeInvalid)
		}
	}

	// owner_id is fixed; owner_name is not.
	other := "acct_99"
	if _, err := svc.UpdateToken(ctx, tokend.SystemActor, tok.ID, tokend.TokenPatch{OwnerID: &other}, 0); tokend.CodeOf(err) != tokend.ECodeInvalid || !strings.Contains(fieldMessages(err), "cannot be changed") {
		t.Errorf("changing owner_id: %v, want 422 saying it cannot be changed", err)
	}
	same, renamed := "acct_42", "Zoë"
	got, err := svc.UpdateToken(ctx, tokend.SystemActor, tok.ID, tokend.TokenPatch{OwnerID: &same, OwnerName: &renamed}, 0)
	if err != nil || got.OwnerName != "Zoë" || got.OwnerID != "acct_42" {
		t.Errorf("renaming the owner: %+v, %v", got, err)
	}
	if _, err := svc.UpdateToken(ctx, tokend.SystemActor, tok.ID, tokend.TokenPatch{Null: []string{"owner_id"}}, 0); tokend.CodeOf(err) != tokend.ECodeInvalid {
		t.Errorf("owner_id null: %v, want 422", err)
	}

	// The list filter.
	page, err := svc.Tokens(ctx, tokend.SystemActor, tokend.TokenFilter{OwnerID: "acct_42"})
	if err != nil || len(page.Items) != 1 || page.Items[0].ID != tok.ID {
		t.Errorf("tokens of acct_42: %v, %v", page.Items, err)
	}
	for _, bad := range []string{"a b", "a\x00", strings.Repeat("a", 129), "\xff"} {
		if _, err := svc.Tokens(ctx, tokend.SystemActor, tokend.TokenFilter{OwnerID: bad}); tokend.CodeOf(err) != tokend.ECodeInvalid {
			t.Errorf("filter owner_id %q: %v, want 422", bad, err)
		}
	}
}

func TestOwnerLimitsOfAnApp(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	for name, in := range map[string]tokend.AppInput{
		"max 0":         {Name: "x", MaxTokensPerOwner: ptr(0)},
		"max too large": {Name: "x", MaxTokensPerOwner: ptr(1_000_001)},
		"limit 0":       {Name: "x", OwnerRateLimit: &tokend.RateLimit{Limit: 0, Window: tokend.Duration(time.Minute)}},
		"window 0":      {Name: "x", OwnerRateLimit: &tokend.RateLimit{Limit: 1}},
	} {
		if _, err := svc.CreateApp(ctx, tokend.SystemActor, in); tokend.CodeOf(err) != tokend.ECodeInvalid {
			t.Errorf("%s: %v, want 422", name, err)
		}
	}
	rl := &tokend.RateLimit{Limit: 100, Window: tokend.Duration(time.Minute)}
	app, err := svc.CreateApp(ctx, tokend.SystemActor, tokend.AppInput{Name: "shop", MaxTokensPerOwner: ptr(2), OwnerRateLimit: rl})
	if err != nil || app.MaxTokensPerOwner == nil || *app.MaxTokensPerOwner != 2 || app.OwnerRateLimit == nil || *app.OwnerRateLimit != *rl {
		t.Fatalf("CreateApp: %+v, %v", app, err)
	}
	for i, name := range []string{"a", "b"} {
		if _, _, err := svc.CreateToken(ctx, tokend.SystemActor, tokend.TokenInput{AppID: app.ID, Name: name, OwnerID: "acct_1"}); err != nil {
			t.Fatalf("token %d: %v", i+1, err)
		}
	}
	_, _, err = svc.CreateToken(ctx, tokend.SystemActor, tokend.TokenInput{AppID: app.ID, Name: "c", OwnerID: "acct_1"})
	if tokend.CodeOf(err) != tokend.ECodeConflict || !strings.Contains(err.Error(), "max_tokens_per_owner") || !strings.Contains(err.Error(), "2") {
		t.Errorf("a third token: %v, want a conflict naming the limit of 2", err)
	}

	// Raise the limit, then remove both settings.
	app, err = svc.UpdateApp(ctx, tokend.SystemActor, app.ID, tokend.AppPatch{MaxTokensPerOwner: ptr(3)}, 0)
	if err != nil || *app.MaxTokensPerOwner != 3 {
		t.Fatalf("raise: %+v, %v", app, err)
	}
	if _, _, err := svc.CreateToken(ctx, tokend.SystemActor, tokend.TokenInput{AppID: app.ID, Name: "c", OwnerID: "acct_1"}); err != nil {
		t.Errorf("a third token under a limit of 3: %v", err)
	}
	if _, err := svc.UpdateApp(ctx, tokend.SystemActor, app.ID, tokend.AppPatch{MaxTokensPerOwner: ptr(0)}, 0); tokend.CodeOf(err) != tokend.ECodeInvalid {
		t.Errorf("max 0 by PATCH: %v, want 422", err)
	}
	app, err = svc.UpdateApp(ctx, tokend.SystemActor, app.ID, tokend.AppPatch{Null: []string{"max_tokens_per_owner", "owner_rate_limit"}}, 0)
	if err != nil || app.MaxTokensPerOwner != nil || app.OwnerRateLimit != nil {
		t.Errorf("clear: %+v, %v", app, err)
	}

	// Revoke all of one owner's tokens.
	if _, _, err := svc.CreateToken(ctx, tokend.SystemActor, tokend.TokenInput{AppID: app.ID, Name: "a", OwnerID: "acct_2"}); err != nil {
		t.Fatal(err)
	}
	n, err := svc.RevokeOwner(ctx, tokend.SystemActor, app.ID, "acct_1")
	if err != nil || n != 3 {
		t.Errorf("RevokeOwner = %d, %v; want 3", n, err)
	}
	if c, _ := svc.CountTokens(ctx, tokend.SystemActor, tokend.TokenFilter{AppID: app.ID, Status: tokend.StatusActive}); c != 1 {
		t.Errorf("%d active tokens left, want acct_2's one", c)
	}
	evs, err := svc.Events(ctx, tokend.SystemActor, tokend.EventFilter{Action: tokend.ActionOwnerRevokeAll})
	if err != nil || len(evs.Items) != 1 || evs.Items[0].Details["owner_id"] != "acct_1" {
		t.Errorf("owner revoke events: %+v, %v", evs.Items, err)
	}
	for _, bad := range []string{"", "a b", "a\x00", strings.Repeat("a", 129), "\xff"} {
		if _, err := svc.RevokeOwner(ctx, tokend.SystemActor, app.ID, bad); tokend.CodeOf(err) != tokend.ECodeNotFound {
			t.Errorf("RevokeOwner(%q): %v, want 404", bad, err)
		}
	}
	if _, err := svc.RevokeOwner(ctx, tokend.Actor{Kind: "token", ID: "tok_r", Permissions: []string{tokend.PermTokensRead}}, app.ID, "acct_2"); tokend.CodeOf(err) != tokend.ECodeForbidden {
		t.Errorf("RevokeOwner without tokens:write: %v", err)
	}
}

// fieldMessages joins the messages of an error's fields.
func fieldMessages(err error) string {
	var msgs []string
	if e, ok := err.(*tokend.Error); ok {
		for _, f := range e.Fields {
			msgs = append(msgs, f.Field+": "+f.Message)
		}
	}
	return strings.Join(msgs, "; ")
}
