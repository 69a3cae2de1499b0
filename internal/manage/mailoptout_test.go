package manage_test

import (
	"slices"
	"testing"

	"github.com/tokend/tokend"
)

func TestSetMailOptOut(t *testing.T) {
	f := newUserFixture(t)
	owner := f.owner(t)
	viewer := f.create(t, owner, "Grace Hopper", "grace@example.com", tokend.RoleViewer)
	ctx := t.Context()

	// Kept once each, in the order of MailedEventTypes.
	got, err := f.svc.SetMailOptOut(ctx, viewer.Actor("192.0.2.3"), viewer.ID,
		[]string{tokend.EventWebhookDisabled, tokend.EventTokenExpiring, tokend.EventWebhookDisabled})
	if err != nil {
		t.Fatalf("SetMailOptOut: %v", err)
	}
	want := []string{tokend.EventTokenExpiring, tokend.EventWebhookDisabled}
	if !slices.Equal(got.MailOptOut, want) || !slices.Equal(f.stored(t, viewer.ID).MailOptOut, want) {
		t.Errorf("opt-outs answered %v, stored %v; want %v", got.MailOptOut, f.stored(t, viewer.ID).MailOptOut, want)
	}
	if got.PasswordHash != "" {
		t.Error("SetMailOptOut answered the password hash")
	}
	evs := f.events(t, tokend.ActionUserUpdate)
	if len(evs) != 1 || evs[0].Actor != "user:"+viewer.ID || evs[0].Details["mail_optout"] == nil {
		t.Fatalf("audit events %+v, want one user.update by the user with mail_optout", evs)
	}

	// The same list again changes nothing and audits nothing.
	if _, err := f.svc.SetMailOptOut(ctx, viewer.Actor(""), viewer.ID, want); err != nil {
		t.Fatal(err)
	}
	if n := len(f.events(t, tokend.ActionUserUpdate)); n != 1 {
		t.Errorf("%d user.update events after an unchanged list, want 1", n)
	}

	// Refusals change nothing.
	before := f.stored(t, viewer.ID)
	_, err = f.svc.SetMailOptOut(ctx, viewer.Actor(""), viewer.ID, []string{"token.created", "x\r\nBcc: a@b"})
	wantCode(t, "unknown types", err, tokend.ECodeInvalid)
	if d := fieldsOf(err); !slices.Equal(d, []string{"mail_optout[0]", "mail_optout[1]"}) {
		t.Errorf("problem fields %v", d)
	}
	_, err = f.svc.SetMailOptOut(ctx, owner.Actor(""), viewer.ID, nil)
	wantCode(t, "an owner changing another's", err, tokend.ECodeForbidden)
	_, err = f.svc.SetMailOptOut(ctx, bootActor, viewer.ID, nil)
	wantCode(t, "an admin token", err, tokend.ECodeForbidden)
	scoped := viewer.Actor("")
	scoped.Scope = &tokend.AdminScope{OwnerID: "acct_1"}
	_, err = f.svc.SetMailOptOut(ctx, scoped, viewer.ID, nil)
	wantCode(t, "a scoped actor", err, tokend.ECodeForbidden)
	if after := f.stored(t, viewer.ID); after.Version != before.Version {
		t.Errorf("a refused change changed the user: version %d → %d", before.Version, after.Version)
	}

	// An empty list mails everything again.
	got, err = f.svc.SetMailOptOut(ctx, viewer.Actor(""), viewer.ID, nil)
	if err != nil || len(got.MailOptOut) != 0 {
		t.Errorf("clearing: %v, %v", got.MailOptOut, err)
	}
}
