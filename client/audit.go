package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/tokend/tokend"
)

// EventListOptions selects audit events, newest first. Empty fields do not
// filter.
type EventListOptions struct {
	TokenID string
	AppID   string
	Action  string    // such as token.revoke
	Since   time.Time // inclusive
	Until   time.Time // exclusive
	Limit   int
	Cursor  string
}

func (o EventListOptions) values() url.Values {
	q := ListOptions{Limit: o.Limit, Cursor: o.Cursor}.values()
	setIf(q, "token_id", o.TokenID)
	setIf(q, "app_id", o.AppID)
	setIf(q, "action", o.Action)
	if !o.Since.IsZero() {
		q.Set("since", o.Since.UTC().Format(time.RFC3339Nano))
	}
	if !o.Until.IsZero() {
		q.Set("until", o.Until.UTC().Format(time.RFC3339Nano))
	}
	return q
}

// Events lists audit events.
func (c *Client) Events(ctx context.Context, o EventListOptions) (tokend.Page[tokend.Event], error) {
	var p tokend.Page[tokend.Event]
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/audit", query: o.values()}, &p)
	return p, err
}

// Verify asks whether a presented secret is good for a request. A well-formed
// question always has an answer (Valid false with a Code saying why); an
// error means tokend could not answer, and the caller must refuse the request.
// Verify does not send the Client's admin token: it needs none.
//
// The request's UserAgent is sent as user_agent, which a tokend older than
// that field refuses (422 naming it): Verify then asks again without it, and
// leaves it out for this Client from then on, so that a service may update
// the SDK before tokend.
func (c *Client) Verify(ctx context.Context, r tokend.VerifyRequest) (tokend.VerifyResult, error) {
	if c.oldServer.Load() {
		r.UserAgent = ""
	}
	var out tokend.VerifyResult
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/verify", body: r, noAuth: true}, &out)
	if r.UserAgent != "" && refusedField(err, "user_agent") {
		c.oldServer.Store(true)
		r.UserAgent = ""
		out = tokend.VerifyResult{}
		err = c.do(ctx, request{method: http.MethodPost, path: "/v1/verify", body: r, noAuth: true}, &out)
	}
	return out, err
}

// refusedField reports whether err is a 422 naming field.
func refusedField(err error, field string) bool {
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusUnprocessableEntity {
		return false
	}
	for _, f := range e.Fields {
		if f.Field == field {
			return true
		}
	}
	return false
}

// Healthy reports whether the server process answers (/healthz).
func (c *Client) Healthy(ctx context.Context) error {
	return c.do(ctx, request{method: http.MethodGet, path: "/healthz", noAuth: true}, nil)
}

// Ready reports whether the server can serve requests, its storage included
// (/readyz).
func (c *Client) Ready(ctx context.Context) error {
	return c.do(ctx, request{method: http.MethodGet, path: "/readyz", noAuth: true}, nil)
}
