package manage_test

import (
	"context"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/manage"
)

// TestAdminActorLimits: the actor of a verified admin token carries the
// token's expiry, IP ranges and rate limit, which bound the admin tokens it
// creates; a dashboard user is not bounded by them.
func TestAdminActorLimits(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	if err := svc.EnsureSystemApp(ctx); err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	rl := &tokend.RateLimit{Limit: 5, Window: tokend.Duration(time.Hour)}
	a := manage.AdminActor(tokend.VerifiedToken{ID: "tok_p", Access: tokend.AccessFull, ExpiresAt: &exp,
		Admin: &tokend.AdminDetails{AllowedIPs: []string{"10.0.0.0/8"}, RateLimit: rl}}, "10.1.2.3")
	if a.Limits == nil || !a.Limits.ExpiresAt.Equal(exp) || len(a.Limits.AllowedIPs) != 1 || *a.Limits.RateLimit != *rl {
		t.Fatalf("limits = %+v", a.Limits)
	}
	if u := manage.AdminActor(tokend.VerifiedToken{ID: "tok_u", Access: tokend.AccessFull}, ""); u.Limits != nil {
		t.Errorf("an unrestricted token's actor has limits %+v", u.Limits)
	}
	loose := tokend.TokenInput{AppID: tokend.SystemAppID, Name: "loose", Access: tokend.AccessFull, ExpiresIn: "36500d"}
	if _, _, err := svc.CreateToken(ctx, a, loose); tokend.CodeOf(err) != tokend.ECodeInvalid {
		t.Fatalf("loose child of a restricted admin token: %v", err)
	}
	ok := loose
	ok.Name, ok.ExpiresIn, ok.AllowedIPs, ok.RateLimit = "ok", "30m", []string{"10.1.0.0/16"}, &tokend.RateLimit{Limit: 1, Window: tokend.Duration(time.Hour)}
	if _, _, err := svc.CreateToken(ctx, a, ok); err != nil {
		t.Fatalf("child within bounds: %v", err)
	}
	// A dashboard user has no limits to pass on, even were some set.
	user := tokend.Actor{Kind: "user", ID: "usr_1", Permissions: tokend.AdminPermissions, Limits: a.Limits}
	if _, _, err := svc.CreateToken(ctx, user, loose); err != nil {
		t.Fatalf("user: %v", err)
	}
}
