package httpapi_test

import (
	"net/url"
	"testing"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/httpapi"
)

func TestOwnersThroughTheAPI(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			h := newHarness(t, st.opts)
			app := h.createApp(tokend.AppInput{Name: "shop", MaxTokensPerOwner: ptrTo(2)})
			owner := `acct/42?#%`
			tok, sec := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "ci", OwnerID: owner, OwnerName: "Zoë"})
			if tok.OwnerID != owner || tok.OwnerName != "Zoë" {
				t.Fatalf("created owner %q %q", tok.OwnerID, tok.OwnerName)
			}
			_, other := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "ci"}) // no owner, same name
			h.createToken(tokend.TokenInput{AppID: app.ID, Name: "cd", OwnerID: owner})

			// The cap: a third live token of the owner is a conflict.
			r := h.do("POST", "/v1/tokens", h.owner, tokend.TokenInput{AppID: app.ID, Name: "third", OwnerID: owner})
			if r.status != 409 {
				t.Errorf("a third token of the owner = %d %s, want 409", r.status, r.body)
			}

			// The verification answer and forward auth carry the owner.
			if res := h.verify(tokend.VerifyRequest{Token: sec}); res.Token == nil || res.Token.OwnerID != owner {
				t.Errorf("verify answered %+v, want owner %q", res.Token, owner)
			}
			if res := h.verify(tokend.VerifyRequest{Token: other}); res.Token == nil || res.Token.OwnerID != "" {
				t.Errorf("verify of a token without owner answered %+v", res.Token)
			}
			if r := h.do("GET", "/v1/auth", sec, nil); r.status != 200 || r.header.Get("X-Token-Owner") != owner {
				t.Errorf("forward auth = %d, X-Token-Owner %q; want 200, %q", r.status, r.header.Get("X-Token-Owner"), owner)
			}
			if r := h.do("GET", "/v1/auth", other, nil); r.status != 200 || len(r.header.Values("X-Token-Owner")) != 0 {
				t.Errorf("forward auth of a token without owner = %d, X-Token-Owner %q; want none", r.status, r.header.Values("X-Token-Owner"))
			}

			// The list filter.
			var page tokend.Page[tokend.Token]
			h.do("GET", "/v1/tokens?owner_id="+url.QueryEscape(owner), h.owner, nil).json(t, &page)
			if len(page.Items) != 2 {
				t.Errorf("tokens of the owner: %d, want 2", len(page.Items))
			}

			// Revoke the owner's tokens: the path escapes the id.
			var ans httpapi.RevokeAllAnswer
			r = h.do("POST", "/v1/apps/"+app.ID+"/owners/"+url.PathEscape(owner)+"/revoke-all", h.owner, nil)
			if r.status != 200 {
				t.Fatalf("revoke-all of the owner = %d %s", r.status, r.body)
			}
			r.json(t, &ans)
			if ans.Revoked != 2 {
				t.Errorf("revoked %d, want 2", ans.Revoked)
			}
			if c := h.code(sec); c != tokend.CodeRevoked {
				t.Errorf("the owner's token verifies %s after revoke-all, want REVOKED", c)
			}
			if c := h.code(other); c != tokend.CodeValid {
				t.Errorf("a token without owner verifies %s, want VALID", c)
			}
		})
	}
}

func ptrTo[T any](v T) *T { return &v }
