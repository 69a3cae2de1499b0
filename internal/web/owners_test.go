package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tokend/tokend"
)

func TestOwnersOnTheTokenPages(t *testing.T) {
	h, f, admin := withFixture(t, tokend.RoleAdmin)

	// Generate API token takes an optional owner.
	form := createForm(f.app, "CI deploys")
	form.Set("owner_id", "acct_42")
	form.Set("owner_name", "Acme <Ltd>")
	res := admin.submit(t, "/tokens", "/tokens", form)
	wantStatus(t, res, http.StatusSeeOther)
	id := strings.TrimPrefix(res.Location(), "/tokens/")
	if tok := h.token(t, id); tok.OwnerID != "acct_42" || tok.OwnerName != "Acme <Ltd>" {
		t.Fatalf("created owner %q %q", tok.OwnerID, tok.OwnerName)
	}
	// The same name for another owner is fine.
	form.Set("owner_id", "acct_43")
	wantStatus(t, admin.submit(t, "/tokens", "/tokens", form), http.StatusSeeOther)

	// The token page shows the owner, escaped.
	page := admin.get(t, "/tokens/"+id)
	wantStatus(t, page, http.StatusOK)
	wantInBody(t, page, `Acme &lt;Ltd&gt;`, `<span class="mono">acct_42</span>`)

	// The list shows the owner under the application, and filters by owner.
	list := admin.get(t, "/tokens?owner_id=acct_42")
	wantStatus(t, list, http.StatusOK)
	wantInBody(t, list, `Application · owner</th>`, `name="owner_id" value="acct_42"`, `data-testid="owner"`)
	if n := strings.Count(list.Body, `data-token-id="`); n != 1 {
		t.Errorf("the list filtered to acct_42 has %d rows, want 1", n)
	}
	all := admin.get(t, "/tokens")
	if !strings.Contains(all.Body, "—") || strings.Count(all.Body, `data-token-id="`) < 3 {
		t.Errorf("the whole list lacks tokens without owner (shown as —)")
	}
	// A junk filter is a 400 naming the problem, not a 500.
	bad := admin.get(t, "/tokens?owner_id="+url.QueryEscape("a b"))
	wantStatus(t, bad, http.StatusBadRequest)

	// A bad owner id in the form comes back with the field's problem.
	form.Set("owner_id", "has space")
	res = admin.submit(t, "/tokens", "/tokens", form)
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantInBody(t, res, "visible ASCII")
}
