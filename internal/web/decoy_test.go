package web

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/tokend/tokend"
)

// A decoy made with the create form's checkbox is listed only in the
// Decoys view, its page says what it is, and its secret never verifies.
func TestDecoyFromTheDashboard(t *testing.T) {
	h, f, admin := withFixture(t, tokend.RoleAdmin)
	if body := admin.get(t, "/tokens/new").Body; !strings.Contains(body, `data-testid="decoy-checkbox"`) {
		t.Fatal("the create form has no Decoy checkbox")
	}
	form := createForm(f.app, "aws backup key")
	form.Set("decoy", "1")
	res := admin.submit(t, "/tokens", "/tokens", form)
	wantStatus(t, res, http.StatusSeeOther)
	id := strings.TrimPrefix(res.Location(), "/tokens/")
	tok := h.token(t, id)
	if !tok.Decoy || !strings.HasPrefix(tok.Masked, "acme_") {
		t.Fatalf("created %+v, want a decoy like any token of its app", tok)
	}
	page := admin.get(t, res.Location())
	wantStatus(t, page, http.StatusOK)
	wantInBody(t, page, `data-testid="decoy"`, "This token is a decoy")
	if sec, ok := revealedSecret(page.Body); !ok || h.verify(t, sec) != tokend.CodeNotFound {
		t.Errorf("the decoy's secret: shown %v, verifies %s", ok, h.verify(t, sec))
	}
	if body := admin.get(t, "/tokens/"+f.active.ID).Body; strings.Contains(body, `data-testid="decoy"`) {
		t.Error("a real token's page says it is a decoy")
	}

	list := admin.get(t, "/tokens")
	if rows := tokenRows(list.Body); slices.Contains(rows, id) || !slices.Contains(rows, f.active.ID) {
		t.Errorf("/tokens rows = %v: a decoy among them, or the real token missing", rows)
	}
	if linkOf(list.Body, "decoys-link") != "/tokens?kind=decoy" {
		t.Error("the list has no link to the Decoys view")
	}
	decoys := admin.get(t, "/tokens?kind=decoy")
	wantStatus(t, decoys, http.StatusOK)
	wantInBody(t, decoys, `data-testid="decoys-view"`)
	if rows := tokenRows(decoys.Body); !slices.Equal(rows, []string{id}) {
		t.Errorf("Decoys view rows = %v, want only %s", rows, id)
	}
	// The edit form offers no checkbox: a decoy is one for good.
	if body := page.Body; strings.Contains(body, `name="decoy"`) {
		t.Error("the token page's edit form offers the Decoy checkbox")
	}
}
