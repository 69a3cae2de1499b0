package client

import (
	"context"
	"iter"
	"net/http"
	"net/url"
	"time"

	"github.com/tokend/tokend"
)

// NotificationListOptions selects events (GET /v1/events), newest first.
// Empty fields do not filter.
type NotificationListOptions struct {
	Type    string // such as token.expiring
	TokenID string
	AppID   string
	Since   time.Time // inclusive
	Until   time.Time // exclusive
	Limit   int
	Cursor  string
}

func (o NotificationListOptions) values() url.Values {
	q := EventListOptions{TokenID: o.TokenID, AppID: o.AppID, Since: o.Since, Until: o.Until, Limit: o.Limit, Cursor: o.Cursor}.values()
	setIf(q, "type", o.Type)
	return q
}

// Notifications lists events: token.created, token.expiring and the rest
// (docs/events.md).
func (c *Client) Notifications(ctx context.Context, o NotificationListOptions) (tokend.Page[tokend.Notification], error) {
	var p tokend.Page[tokend.Notification]
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/events", query: o.values()}, &p)
	return p, err
}

// AllNotifications follows the cursor from o.Cursor to the last page.
func (c *Client) AllNotifications(ctx context.Context, o NotificationListOptions) iter.Seq2[tokend.Notification, error] {
	return all(o.Cursor, func(cursor string) (tokend.Page[tokend.Notification], error) {
		o.Cursor = cursor
		return c.Notifications(ctx, o)
	})
}
