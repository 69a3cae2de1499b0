package client

import (
	"context"
	"net/http"

	"github.com/tokend/tokend"
)

// WebhookListOptions selects webhook endpoints, oldest first.
type WebhookListOptions struct {
	AppID  string // only the endpoints limited to this application
	Limit  int
	Cursor string
}

// DeliveryListOptions selects the deliveries to one endpoint, newest first.
type DeliveryListOptions struct {
	Status string // pending, delivered or failed; "" for all
	Limit  int
	Cursor string
}

// Webhooks lists webhook endpoints.
func (c *Client) Webhooks(ctx context.Context, o WebhookListOptions) (tokend.Page[tokend.Webhook], error) {
	q := ListOptions{Limit: o.Limit, Cursor: o.Cursor}.values()
	setIf(q, "app_id", o.AppID)
	var p tokend.Page[tokend.Webhook]
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/webhooks", query: q}, &p)
	return p, err
}

// CreateWebhook adds an endpoint and answers it with its signing secret,
// shown this once.
func (c *Client) CreateWebhook(ctx context.Context, in tokend.WebhookInput) (tokend.Webhook, string, error) {
	var out tokend.WebhookWithSecret
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/webhooks", body: in}, &out)
	return out.Webhook, out.Secret, err
}

// Webhook answers one endpoint.
func (c *Client) Webhook(ctx context.Context, id string) (tokend.Webhook, error) {
	return c.webhookCall(ctx, http.MethodGet, id, nil, nil)
}

// UpdateWebhook edits an endpoint: fields of patch left nil stay as they
// are.
func (c *Client) UpdateWebhook(ctx context.Context, id string, patch tokend.WebhookPatch, opts ...RequestOption) (tokend.Webhook, error) {
	return c.webhookCall(ctx, http.MethodPatch, id, patch, opts)
}

// DeleteWebhook deletes an endpoint and its deliveries.
func (c *Client) DeleteWebhook(ctx context.Context, id string, opts ...RequestOption) error {
	p, err := seg("webhook", id)
	if err != nil {
		return err
	}
	return c.do(ctx, newRequest(http.MethodDelete, "/v1/webhooks/"+p, nil, opts), nil)
}

// RotateWebhookSecret gives an endpoint a new signing secret, shown this
// once; the old one signs alongside it for 24 hours.
func (c *Client) RotateWebhookSecret(ctx context.Context, id string, opts ...RequestOption) (tokend.Webhook, string, error) {
	var out tokend.WebhookWithSecret
	p, err := seg("webhook", id)
	if err != nil {
		return out.Webhook, "", err
	}
	err = c.do(ctx, newRequest(http.MethodPost, "/v1/webhooks/"+p+"/rotate-secret", nil, opts), &out)
	return out.Webhook, out.Secret, err
}

// TestWebhook sends a webhook.test event to one endpoint and answers the
// event's id.
func (c *Client) TestWebhook(ctx context.Context, id string) (string, error) {
	p, err := seg("webhook", id)
	if err != nil {
		return "", err
	}
	var out tokend.WebhookTestAnswer
	err = c.do(ctx, request{method: http.MethodPost, path: "/v1/webhooks/" + p + "/test"}, &out)
	return out.EventID, err
}

// WebhookDeliveries lists the deliveries to one endpoint, each with its
// attempts.
func (c *Client) WebhookDeliveries(ctx context.Context, id string, o DeliveryListOptions) (tokend.Page[tokend.Delivery], error) {
	var page tokend.Page[tokend.Delivery]
	p, err := seg("webhook", id)
	if err != nil {
		return page, err
	}
	q := ListOptions{Limit: o.Limit, Cursor: o.Cursor}.values()
	setIf(q, "status", o.Status)
	err = c.do(ctx, request{method: http.MethodGet, path: "/v1/webhooks/" + p + "/deliveries", query: q}, &page)
	return page, err
}

// RetryDelivery sends a delivery of an endpoint again now, whatever its
// state.
func (c *Client) RetryDelivery(ctx context.Context, webhookID, deliveryID string) (tokend.Delivery, error) {
	var d tokend.Delivery
	p, err := seg("webhook", webhookID)
	if err != nil {
		return d, err
	}
	dp, err := seg("delivery", deliveryID)
	if err != nil {
		return d, err
	}
	err = c.do(ctx, request{method: http.MethodPost, path: "/v1/webhooks/" + p + "/deliveries/" + dp + "/retry"}, &d)
	return d, err
}

// webhookCall makes a request to /v1/webhooks/{id} that answers the
// endpoint.
func (c *Client) webhookCall(ctx context.Context, method, id string, body any, opts []RequestOption) (tokend.Webhook, error) {
	var w tokend.Webhook
	p, err := seg("webhook", id)
	if err != nil {
		return w, err
	}
	err = c.do(ctx, newRequest(method, "/v1/webhooks/"+p, body, opts), &w)
	return w, err
}
