package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tokend/tokend"
)

// The application form sets the rotated-secret policy (notify by default),
// shows it, and refuses a value that is none.
func TestRotatedSecretPolicyForm(t *testing.T) {
	h := newHarness(t)
	admin := h.login(t, tokend.RoleAdmin)
	res := admin.submit(t, "/apps/new", "/apps", url.Values{"name": {"Shop"}, "rotated_secret_policy": {"revoke"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantInBody(t, res, `href="#a-rotated"`)
	res = admin.submit(t, "/apps/new", "/apps", url.Values{"name": {"Shop"}})
	wantStatus(t, res, http.StatusSeeOther)
	id := strings.TrimPrefix(res.Location(), "/apps/")
	page := "/apps/" + id
	wantInBody(t, admin.get(t, page), `data-testid="app-rotated-policy">notify<`)
	wantRedirect(t, admin.submit(t, page, page, url.Values{"version": {"1"}, "name": {"Shop"}, "token_prefix": {"tkd"}, "rotated_secret_policy": {"disable"}}), page)
	app, _ := h.svc.App(context.Background(), tokend.SystemActor, id)
	if app.RotatedSecretPolicy != tokend.RotatedDisable {
		t.Errorf("after editing: %q, want disable", app.RotatedSecretPolicy)
	}
	wantInBody(t, admin.get(t, page), `data-testid="app-rotated-policy">disable<`, `<option value="disable" selected>Disable the token`)
}
