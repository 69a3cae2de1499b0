package web

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tokend/tokend"
)

// The footer of every page tells signed-in users tokend's version, and
// tells nobody else: a stranger would learn which flaws to try.
func TestFooterShowsTheVersionToSignedInUsersOnly(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Version = "v9.8.7-test" })
	const footer = `<footer class="foot" data-testid="version">tokend v9.8.7-test</footer>`

	c := h.login(t, tokend.RoleViewer)
	for _, path := range []string{"/", "/tokens", "/apps"} {
		res := c.get(t, path)
		wantStatus(t, res, http.StatusOK)
		if !strings.Contains(res.Body, footer) {
			t.Errorf("%s for a signed-in viewer has no version footer", path)
		}
	}
	res := h.client().get(t, "/login")
	wantStatus(t, res, http.StatusOK)
	if strings.Contains(res.Body, "v9.8.7-test") {
		t.Error("the sign-in page tells a stranger the version")
	}
}
