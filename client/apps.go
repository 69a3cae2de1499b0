package client

import (
	"context"
	"net/http"

	"github.com/tokend/tokend"
)

// Apps lists applications, oldest first.
func (c *Client) Apps(ctx context.Context, o ListOptions) (tokend.Page[tokend.App], error) {
	var p tokend.Page[tokend.App]
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/apps", query: o.values()}, &p)
	return p, err
}

// CreateApp creates an application.
func (c *Client) CreateApp(ctx context.Context, in tokend.AppInput) (tokend.App, error) {
	var a tokend.App
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/apps", body: in}, &a)
	return a, err
}

// App answers one application.
func (c *Client) App(ctx context.Context, id string) (tokend.App, error) {
	var a tokend.App
	p, err := seg("app", id)
	if err != nil {
		return a, err
	}
	err = c.do(ctx, request{method: http.MethodGet, path: "/v1/apps/" + p}, &a)
	return a, err
}

// UpdateApp edits an application: fields of patch left nil stay as they are,
// fields named in patch.Null are cleared.
func (c *Client) UpdateApp(ctx context.Context, id string, patch tokend.AppPatch, opts ...RequestOption) (tokend.App, error) {
	var a tokend.App
	p, err := seg("app", id)
	if err != nil {
		return a, err
	}
	err = c.do(ctx, newRequest(http.MethodPatch, "/v1/apps/"+p, patch, opts), &a)
	return a, err
}

// DeleteApp deletes an application and every one of its tokens.
func (c *Client) DeleteApp(ctx context.Context, id string, opts ...RequestOption) error {
	p, err := seg("app", id)
	if err != nil {
		return err
	}
	return c.do(ctx, newRequest(http.MethodDelete, "/v1/apps/"+p, nil, opts), nil)
}

// RevokeAll revokes every token of an application that is not revoked yet
// and answers how many it revoked.
func (c *Client) RevokeAll(ctx context.Context, appID string) (int, error) {
	p, err := seg("app", appID)
	if err != nil {
		return 0, err
	}
	var out struct {
		Revoked int `json:"revoked"`
	}
	err = c.do(ctx, request{method: http.MethodPost, path: "/v1/apps/" + p + "/revoke-all"}, &out)
	return out.Revoked, err
}

// RevokeOwnerTokens revokes every live token of one owner of an
// application (POST /v1/apps/{id}/owners/{owner_id}/revoke-all) and answers
// how many it revoked.
func (c *Client) RevokeOwnerTokens(ctx context.Context, appID, ownerID string) (int, error) {
	p, err := seg("app", appID)
	if err != nil {
		return 0, err
	}
	o, err := seg("owner", ownerID)
	if err != nil {
		return 0, err
	}
	var out struct {
		Revoked int `json:"revoked"`
	}
	err = c.do(ctx, request{method: http.MethodPost, path: "/v1/apps/" + p + "/owners/" + o + "/revoke-all"}, &out)
	return out.Revoked, err
}

func newRequest(method, path string, body any, opts []RequestOption) request {
	r := request{method: method, path: path, body: body}
	for _, o := range opts {
		o(&r)
	}
	return r
}
