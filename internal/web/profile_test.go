package web

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/tokend/tokend"
)

func TestProfileMailOptOut(t *testing.T) {
	h := newHarness(t)
	viewer := h.login(t, tokend.RoleViewer)
	me := h.users[tokend.RoleViewer]

	res := viewer.get(t, "/tokens")
	wantStatus(t, res, http.StatusOK)
	if !strings.Contains(res.Body, `href="/profile"`) {
		t.Error("the header does not link the user's name to /profile")
	}
	res = viewer.get(t, "/profile")
	wantStatus(t, res, http.StatusOK)
	for _, typ := range tokend.MailedEventTypes {
		if !strings.Contains(res.Body, `name="receive" value="`+typ+`" checked`) {
			t.Errorf("the profile does not offer %s, ticked", typ)
		}
	}
	if !strings.Contains(res.Body, `data-testid="mail-off"`) {
		t.Error("the profile does not say this server sends no mail")
	}

	// Untick everything but token.expired.
	res = viewer.submit(t, "/profile", "/profile", url.Values{"receive": {tokend.EventTokenExpired}})
	wantRedirect(t, res, "/profile")
	want := slices.DeleteFunc(slices.Clone(tokend.MailedEventTypes), func(typ string) bool { return typ == tokend.EventTokenExpired })
	if got := storedUser(t, h, me.ID).MailOptOut; !slices.Equal(got, want) {
		t.Errorf("opted out of %v, want %v", got, want)
	}
	res = viewer.get(t, "/profile")
	if strings.Contains(res.Body, `value="`+tokend.EventTokenExpiring+`" checked`) || !strings.Contains(res.Body, `value="`+tokend.EventTokenExpired+`" checked`) {
		t.Errorf("the profile does not show the choice:\n%s", res.Body)
	}

	// A type tokend does not mail is refused and changes nothing.
	before := storedUser(t, h, me.ID)
	res = viewer.submit(t, "/profile", "/profile", url.Values{"receive": {"token.created\r\nX: y"}})
	wantStatus(t, res, http.StatusBadRequest)
	if storedUser(t, h, me.ID).Version != before.Version {
		t.Error("a refused form changed the user")
	}
	// Without a CSRF token, nothing happens.
	res = viewer.post(t, "/profile", url.Values{})
	wantStatus(t, res, http.StatusForbidden)
	if got := storedUser(t, h, me.ID).MailOptOut; !slices.Equal(got, want) {
		t.Errorf("a form without CSRF changed the opt-outs to %v", got)
	}
	// Another user's choice is their own.
	owner := h.login(t, tokend.RoleOwner)
	wantRedirect(t, owner.submit(t, "/profile", "/profile", url.Values{}), "/profile")
	if got := storedUser(t, h, me.ID).MailOptOut; !slices.Equal(got, want) {
		t.Errorf("the owner's profile changed the viewer's opt-outs to %v", got)
	}
	if got := storedUser(t, h, h.users[tokend.RoleOwner].ID).MailOptOut; len(got) != len(tokend.MailedEventTypes) {
		t.Errorf("the owner, who ticked nothing, opted out of %v", got)
	}
	// Signed out: to the sign-in page.
	if res := h.client().get(t, "/profile"); res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Location(), "/login") {
		t.Errorf("GET /profile signed out: %d %s", res.StatusCode, res.Location())
	}
}
