package client

import (
	"context"
	"net/http"

	"github.com/tokend/tokend"
)

// CreatePortalSession mints a single-use link to the customer portal for
// one owner of an application (POST /v1/portal/sessions): redirect that
// customer's browser to the answer's URL within its 5 minutes. The admin
// token needs tokens:write; an owner-scoped one mints only for its owner.
func (c *Client) CreatePortalSession(ctx context.Context, in tokend.PortalInput) (tokend.PortalSessionAnswer, error) {
	var out tokend.PortalSessionAnswer
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/portal/sessions", body: in}, &out)
	return out, err
}
