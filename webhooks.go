package tokend

import (
	"context"
	"encoding/json"
	"time"
)

// WebhookFilter selects webhook endpoints, oldest first.
type WebhookFilter struct {
	AppID  string
	Limit  int
	Cursor string
}

// DeliveryFilter selects deliveries, newest first.
type DeliveryFilter struct {
	WebhookID string
	Status    string // "" for any
	Limit     int
	Cursor    string
}

// ClaimedDelivery is a delivery a worker holds the lease of, with what it
// needs to attempt it.
type ClaimedDelivery struct {
	Delivery Delivery
	Event    Notification
	// Webhook is the endpoint of a webhook delivery as the dispatcher
	// read it when it began the attempt (the store leaves it nil: an
	// endpoint read at the claim may be edited while the delivery waits);
	// nil for a mail, or an endpoint deleted since.
	Webhook *Webhook
}

// WebhookStore keeps webhook endpoints and the deliveries of events to them
// and to mail recipients. Implementations pass the storetest conformance
// suite on both databases.
type WebhookStore interface {
	// CreateWebhook stores a new endpoint with its audit event.
	CreateWebhook(ctx context.Context, w Webhook, ev Event) error
	Webhook(ctx context.Context, id string) (Webhook, error)
	Webhooks(ctx context.Context, f WebhookFilter) (Page[Webhook], error)
	// UpdateWebhook runs fn on the stored endpoint in one transaction and
	// stores the result with Version+1 and the Event fn returns.
	UpdateWebhook(ctx context.Context, id string, fn func(w *Webhook) (Event, error)) (Webhook, error)
	// DeleteWebhook deletes the endpoint and its deliveries; version, when
	// not 0, must be the stored one (ErrStale otherwise).
	DeleteWebhook(ctx context.Context, id string, version int64, ev Event) error

	// DispatchEvents takes up to limit events of the outbox not yet
	// dispatched, oldest first, asks fan for the deliveries of each,
	// stores them (pending, due at once) and marks the events dispatched,
	// all in one transaction; it answers how many events it took. Several
	// instances may call it at once: each event is taken by one (on
	// PostgreSQL, FOR UPDATE SKIP LOCKED), and a delivery exists at most
	// once per event and endpoint or recipient.
	DispatchEvents(ctx context.Context, limit int, fan func(Notification) ([]Delivery, error)) (int, error)
	// ClaimDeliveries leases up to limit pending deliveries due at now
	// (next retry at or before now, and no lease or a lapsed one), oldest
	// event first, until now+lease, and answers them. A delivery is held
	// by one worker at a time, across instances; a worker that dies
	// leaves the lease to lapse and the delivery to be claimed again.
	ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]ClaimedDelivery, error)
	// FinishAttempt records an attempt of a claimed delivery and its new
	// state (d.Status, d.NextAt, d.LastStatus, d.LastError,
	// d.DeliveredAt; d.Attempts is a.N), releases the lease, and keeps
	// the endpoint's FailingSince: cleared by a success, set by the first
	// failure after one. It records a.N only over attempt a.N-1: when
	// another worker recorded attempt a.N first (this one's lease lapsed
	// and the delivery was claimed again), it changes nothing and answers
	// ErrStale.
	FinishAttempt(ctx context.Context, d Delivery, a DeliveryAttempt) error
	Deliveries(ctx context.Context, f DeliveryFilter) (Page[Delivery], error)
	// Delivery answers a delivery with its History.
	Delivery(ctx context.Context, id string) (Delivery, error)
	// RetryDelivery makes a delivery pending and due at now, whatever its
	// state, with its audit event; a delivery a worker holds the lease of
	// is left to it (ErrConflict): a second attempt meanwhile would send
	// the event twice.
	RetryDelivery(ctx context.Context, id string, now time.Time, ev Event) (Delivery, error)
}

// WebhookSecrets makes webhook signing secrets: the secret as shown once
// (whsec_ and the base64 of its key, as the Standard Webhooks
// specification writes it), and as stored (sealed with a key derived from
// the pepper, which the database never holds).
type WebhookSecrets interface {
	NewSecret() (shown string, sealed []byte, err error)
}

// Mailer sends the mailed event types (MailedEventTypes) to the people who
// should hear of them.
type Mailer interface {
	// Recipients answers the addresses to mail about n: the owners and
	// admins of the dashboard and, for a token made in the dashboard, the
	// user who made it; none who opted out of n.Type or is disabled. Each
	// address once.
	Recipients(ctx context.Context, n Notification) ([]string, error)
	// Send mails n to one address; an error is retried later.
	Send(ctx context.Context, to string, n Notification) error
}

// Webhook audit actions.
const (
	ActionWebhookCreate       = "webhook.create"
	ActionWebhookUpdate       = "webhook.update"
	ActionWebhookDelete       = "webhook.delete"
	ActionWebhookRotateSecret = "webhook.rotate_secret"
	ActionWebhookTest         = "webhook.test"
	ActionDeliveryRetry       = "delivery.retry"
)

// Limits of a webhook endpoint.
const (
	MaxWebhookURLLen         = 2048 // bytes
	MaxWebhookDescriptionLen = 1000 // characters
)

// WebhookInput is what creating a webhook endpoint takes.
type WebhookInput struct {
	URL         string   `json:"url" example:"https://api.example.com/hooks/tokend" doc:"Absolute https URL (http only where the server allows it), at most 2048 bytes, without user:password."`
	Events      []string `json:"events" example:"[\"token.revoked\",\"token.rotated\"]" doc:"Event types to send, or [\"*\"] for all."`
	AppID       string   `json:"app_id,omitempty" doc:"Only the events of this application; absent for every application."`
	Description string   `json:"description,omitempty" doc:"Up to 1000 characters."`
}

// WebhookPatch is an edit of a webhook endpoint: absent fields stay as they
// are. Enabling a disabled endpoint clears its disabled_reason and
// failing_since.
type WebhookPatch struct {
	URL         *string   `json:"url,omitempty"`
	Events      *[]string `json:"events,omitempty"`
	Enabled     *bool     `json:"enabled,omitempty"`
	Description *string   `json:"description,omitempty"`

	// Null holds the JSON names of fields sent as null, which no field
	// of an endpoint may be.
	Null []string `json:"-"`
}

// UnmarshalJSON records which fields were sent as null.
func (p *WebhookPatch) UnmarshalJSON(b []byte) error {
	type plain WebhookPatch
	var v plain
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*p = WebhookPatch(v)
	p.Null = nullKeys(b)
	return nil
}

// WebhookWithSecret is the answer to creating an endpoint and to rotating
// its secret: the only time the signing secret is ever shown.
type WebhookWithSecret struct {
	Webhook Webhook `json:"webhook"`
	Secret  string  `json:"secret" doc:"The signing secret. It is shown only this once and cannot be retrieved again." example:"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"`
}

// WebhookTestAnswer is the answer to sending a test event.
type WebhookTestAnswer struct {
	EventID string `json:"event_id" example:"evt_4Lx0u1ZbT5uJ9mYtq2c3Qe" doc:"The webhook.test event, delivered to this endpoint only."`
}
