package client

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/tokend/tokend"
)

// TokenListOptions selects tokens, newest first. Empty fields do not filter.
type TokenListOptions struct {
	AppID   string
	OwnerID string        // only the tokens of this owner
	Status  tokend.Status // active, disabled, revoked or expired
	Type    tokend.TokenType
	Query   string // case-insensitive substring of the name; also a token id, or the last 4 of a secret
	// UnusedFor keeps tokens not used for this many days, such as "30d"
	// (never used: since creation).
	UnusedFor string
	Sort      string // name, created_at, expires_at or last_used_at
	Order     string // asc or desc
	Limit     int
	Cursor    string
	// Decoy lists only decoy tokens, which are otherwise left out.
	Decoy bool
}

func (o TokenListOptions) values() url.Values {
	q := ListOptions{Limit: o.Limit, Cursor: o.Cursor}.values()
	setIf(q, "app_id", o.AppID)
	setIf(q, "owner_id", o.OwnerID)
	setIf(q, "status", string(o.Status))
	setIf(q, "type", string(o.Type))
	setIf(q, "q", o.Query)
	setIf(q, "unused_for", o.UnusedFor)
	setIf(q, "sort", o.Sort)
	setIf(q, "order", o.Order)
	if o.Decoy {
		q.Set("decoy", "true")
	}
	return q
}

// Tokens lists tokens.
func (c *Client) Tokens(ctx context.Context, o TokenListOptions) (tokend.Page[tokend.Token], error) {
	var p tokend.Page[tokend.Token]
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/tokens", query: o.values()}, &p)
	return p, err
}

// issued is the answer to create and rotate: the only time a secret is seen.
type issued struct {
	Token  tokend.Token `json:"token"`
	Secret string       `json:"secret"`
}

// CreateToken creates a token and answers it with its secret. The secret is
// shown this once: the server keeps only a keyed hash of it.
func (c *Client) CreateToken(ctx context.Context, in tokend.TokenInput) (tokend.Token, string, error) {
	var out issued
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/tokens", body: in}, &out)
	return out.Token, out.Secret, err
}

// Token answers one token.
func (c *Client) Token(ctx context.Context, id string) (tokend.Token, error) {
	var t tokend.Token
	p, err := seg("token", id)
	if err != nil {
		return t, err
	}
	err = c.do(ctx, request{method: http.MethodGet, path: "/v1/tokens/" + p}, &t)
	return t, err
}

// UpdateToken edits a token: fields of patch left nil stay as they are,
// fields named in patch.Null are cleared.
func (c *Client) UpdateToken(ctx context.Context, id string, patch tokend.TokenPatch, opts ...RequestOption) (tokend.Token, error) {
	return c.tokenCall(ctx, http.MethodPatch, id, "", patch, opts)
}

// DisableToken stops a token from verifying until it is enabled again.
func (c *Client) DisableToken(ctx context.Context, id string, opts ...RequestOption) (tokend.Token, error) {
	return c.tokenCall(ctx, http.MethodPost, id, "/disable", nil, opts)
}

// EnableToken lets a disabled token verify again.
func (c *Client) EnableToken(ctx context.Context, id string, opts ...RequestOption) (tokend.Token, error) {
	return c.tokenCall(ctx, http.MethodPost, id, "/enable", nil, opts)
}

// RevokeToken revokes a token for good; it stays listed for the audit.
func (c *Client) RevokeToken(ctx context.Context, id string, opts ...RequestOption) (tokend.Token, error) {
	return c.tokenCall(ctx, http.MethodPost, id, "/revoke", nil, opts)
}

// RotateToken gives a token a new secret, keeping its id and settings, and
// answers the token with the new secret (shown this once). The old secret
// keeps working for grace (0: not at all).
func (c *Client) RotateToken(ctx context.Context, id string, grace tokend.Duration, opts ...RequestOption) (tokend.Token, string, error) {
	p, err := seg("token", id)
	if err != nil {
		return tokend.Token{}, "", err
	}
	var body any
	if grace != 0 {
		body = struct {
			GracePeriod tokend.Duration `json:"grace_period"`
		}{grace}
	}
	var out issued
	err = c.do(ctx, newRequest(http.MethodPost, "/v1/tokens/"+p+"/rotate", body, opts), &out)
	return out.Token, out.Secret, err
}

// DeleteToken deletes a token permanently.
func (c *Client) DeleteToken(ctx context.Context, id string, opts ...RequestOption) error {
	p, err := seg("token", id)
	if err != nil {
		return err
	}
	return c.do(ctx, newRequest(http.MethodDelete, "/v1/tokens/"+p, nil, opts), nil)
}

// TokenUsage answers a token's verifications per hour and outcome in
// [from, to), oldest first. Zero times leave the bound to the server.
func (c *Client) TokenUsage(ctx context.Context, id string, from, to time.Time) ([]tokend.UsageCount, error) {
	p, err := seg("token", id)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	if !from.IsZero() {
		q.Set("from", from.UTC().Format(time.RFC3339))
	}
	if !to.IsZero() {
		q.Set("to", to.UTC().Format(time.RFC3339))
	}
	var out struct {
		Items []tokend.UsageCount `json:"items"`
	}
	err = c.do(ctx, request{method: http.MethodGet, path: "/v1/tokens/" + p + "/usage", query: q}, &out)
	for i := range out.Items {
		out.Items[i].TokenID = id
	}
	return out.Items, err
}

// TokenActivity answers the token's recent verifications, newest first (at
// most 50).
func (c *Client) TokenActivity(ctx context.Context, id string) ([]tokend.Activity, error) {
	p, err := seg("token", id)
	if err != nil {
		return nil, err
	}
	var out struct {
		Items []tokend.Activity `json:"items"`
	}
	err = c.do(ctx, request{method: http.MethodGet, path: "/v1/tokens/" + p + "/activity"}, &out)
	for i := range out.Items {
		out.Items[i].TokenID = id
	}
	return out.Items, err
}

func (c *Client) tokenCall(ctx context.Context, method, id, action string, body any, opts []RequestOption) (tokend.Token, error) {
	var t tokend.Token
	p, err := seg("token", id)
	if err != nil {
		return t, err
	}
	err = c.do(ctx, newRequest(method, "/v1/tokens/"+p+action, body, opts), &t)
	return t, err
}

// ReportLeaks reports leaked secrets (POST /v1/leaks, at most
// tokend.MaxLeakSecrets at a time): each one of a token is handled by its
// application's leak policy. The results are in the order of r.Tokens.
func (c *Client) ReportLeaks(ctx context.Context, r tokend.LeakReport) ([]tokend.LeakResult, error) {
	var out struct {
		Results []tokend.LeakResult `json:"results"`
	}
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/leaks", body: r}, &out)
	return out.Results, err
}
