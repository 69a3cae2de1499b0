package manage_test

import (
	"context"
	"testing"

	"github.com/tokend/tokend"
)

func TestCountTokensFollowsTheFiltersAndThePermissions(t *testing.T) {
	svc, app := newService(t)
	ctx := context.Background()
	for _, in := range []tokend.TokenInput{
		{AppID: app.ID, Name: "a", ExpiresIn: "3d"},
		{AppID: app.ID, Name: "b", ExpiresIn: "30d"},
		{AppID: app.ID, Name: "c", ExpiresIn: "unlimited"},
	} {
		if _, _, err := svc.CreateToken(ctx, tokend.SystemActor, in); err != nil {
			t.Fatal(err)
		}
	}
	soon := svc.Now().AddDate(0, 0, 7)
	for _, c := range []struct {
		f    tokend.TokenFilter
		want int
	}{
		{tokend.TokenFilter{AppID: app.ID}, 3},
		{tokend.TokenFilter{Status: tokend.StatusActive, ExpiresBefore: soon}, 1},
		{tokend.TokenFilter{Status: tokend.StatusRevoked}, 0},
	} {
		if n, err := svc.CountTokens(ctx, tokend.SystemActor, c.f); err != nil || n != c.want {
			t.Errorf("CountTokens(%+v) = %d, %v; want %d", c.f, n, err, c.want)
		}
	}
	if _, err := svc.CountTokens(ctx, tokend.SystemActor, tokend.TokenFilter{Status: "asleep"}); tokend.CodeOf(err) != tokend.ECodeInvalid {
		t.Errorf("an unknown status: %v", err)
	}
	nobody := tokend.Actor{Kind: "token", ID: "tok_x", Permissions: []string{tokend.PermAppsRead}}
	if _, err := svc.CountTokens(ctx, nobody, tokend.TokenFilter{}); tokend.CodeOf(err) != tokend.ECodeForbidden {
		t.Errorf("without tokens:read: %v", err)
	}
}
