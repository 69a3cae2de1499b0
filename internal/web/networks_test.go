package web

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

// The token page lists the networks the token was used from, most recently
// seen first, with when each was first and last seen.
func TestTokenPageShowsNetworks(t *testing.T) {
	h, f, viewer := withFixture(t, tokend.RoleViewer)
	page := "/tokens/" + f.active.ID
	wantInBody(t, viewer.get(t, page), `data-testid="networks-empty"`)

	at := h.clock.Now().UTC()
	uses := []tokend.NetworkUse{
		{TokenID: f.active.ID, Network: "203.0.113.0/24", IP: "203.0.113.7", First: at, Last: at.Add(time.Minute)},
		{TokenID: f.active.ID, Network: "2001:db8:7::/48", IP: "2001:db8:7::1", First: at.Add(time.Hour), Last: at.Add(2 * time.Hour)},
	}
	raise := func(n tokend.NewNetwork) tokend.Event { return n.Event(nil) }
	if err := h.store.RecordNetworks(t.Context(), uses, raise); err != nil {
		t.Fatal(err)
	}
	res := viewer.get(t, page)
	wantStatus(t, res, http.StatusOK)
	wantInBody(t, res, `data-testid="networks-table"`, "203.0.113.0/24", "2001:db8:7::/48",
		at.Format("2006-01-02 15:04:05 UTC"), at.Add(2*time.Hour).Format("2006-01-02 15:04:05 UTC"))
	table := res.Body[strings.Index(res.Body, `data-testid="networks-table"`):]
	if strings.Index(table, "2001:db8:7::/48") > strings.Index(table, "203.0.113.0/24") {
		t.Error("the most recently seen network is not first")
	}
}
