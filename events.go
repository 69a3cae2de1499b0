package tokend

import (
	"context"
	"time"
)

// Event types: what subscribers (GET /v1/events, webhooks, mail) hear. Each
// is raised in the same transaction as the change it reports (see Notice),
// or, for the time-based ones, by the scheduler exactly once.
const (
	EventTokenCreated           = "token.created"
	EventTokenUpdated           = "token.updated"
	EventTokenDisabled          = "token.disabled"
	EventTokenEnabled           = "token.enabled"
	EventTokenRotated           = "token.rotated"
	EventTokenRevoked           = "token.revoked"
	EventTokenDeleted           = "token.deleted"
	EventAppTokensRevoked       = "app.tokens_revoked"
	EventOwnerTokensRevoked     = "owner.tokens_revoked"
	EventTokenExpiring          = "token.expiring"
	EventTokenExpired           = "token.expired"
	EventTokenInactive          = "token.inactive"
	EventTokenRotatedSecretUsed = "token.rotated_secret_used"
	EventTokenLeaked            = "token.leaked"
	EventTokenDecoyUsed         = "token.decoy_used"
	EventTokenNewNetwork        = "token.new_network"
	EventWebhookDisabled        = "webhook.disabled"
	EventWebhookTest            = "webhook.test"
)

// EventTypes lists every type a webhook may subscribe to, in the order the
// documentation gives them. webhook.test is sent only to the endpoint it
// tests and is not listed.
var EventTypes = []string{
	EventTokenCreated, EventTokenUpdated, EventTokenDisabled, EventTokenEnabled,
	EventTokenRotated, EventTokenRevoked, EventTokenDeleted, EventAppTokensRevoked,
	EventOwnerTokensRevoked, EventTokenExpiring, EventTokenExpired, EventTokenInactive,
	EventTokenRotatedSecretUsed, EventTokenLeaked, EventTokenDecoyUsed, EventTokenNewNetwork,
	EventWebhookDisabled,
}

// MailedEventTypes are the types mailed to owners and admins (when SMTP is
// configured), each of whom may opt out per type.
var MailedEventTypes = []string{
	EventTokenExpiring, EventTokenExpired, EventWebhookDisabled, EventTokenRotatedSecretUsed, EventTokenLeaked,
	EventTokenDecoyUsed,
}

// Notice is an event a change raises. The service puts it in the audit
// Event of the change (Event.Notices), and the store writes it to the
// outbox in the same transaction as the change and its audit row: a change
// without its event, or an event without its change, cannot be committed.
type Notice struct {
	// ID is the event's id (evt_…) when the caller must know it (the
	// answer to sending a test event); empty for the store to make one.
	ID   string
	Type string
	// Data is the subject's public fields (a token as the API shows it,
	// never a secret or digest), and what the type adds.
	Data map[string]any
}

// Notification is one event as subscribers see it: GET /v1/events, the body
// of a webhook delivery, the subject of a mail.
type Notification struct {
	// Seq orders the outbox; subscribers see ID.
	Seq        int64          `json:"-"`
	ID         string         `json:"id" example:"evt_4Lx0u1ZbT5uJ9mYtq2c3Qe"`
	Type       string         `json:"type" example:"token.revoked"`
	OccurredAt time.Time      `json:"occurred_at"`
	AppID      string         `json:"app_id"`
	TokenID    string         `json:"token_id"`
	Actor      EventActor     `json:"actor"`
	Data       map[string]any `json:"data"`
}

// EventActor is who caused an event: a token, a dashboard user, a portal
// customer ("owner"), or tokend itself ("system": the scheduler, the
// verification engine).
type EventActor struct {
	Type string `json:"type" example:"token"`
	ID   string `json:"id" example:"tok_4Lx0u1ZbT5uJ9mYtq2c3Qe"`
	Name string `json:"name"`
}

// NotificationFilter selects events, newest first.
type NotificationFilter struct {
	Type    string
	AppID   string
	TokenID string
	Since   time.Time // inclusive; zero for no bound
	Until   time.Time // exclusive; zero for no bound
	// Scope, when set, keeps only the events of tokens the scope admits.
	Scope  *AdminScope
	Limit  int
	Cursor string
}

// EventMark names a time-based event so that it is raised once: the token,
// the kind ("expiring:7d", "expired") and the expiry it is about.
// (token.inactive needs none: it is raised with the change that disables
// the token, which happens once.)
type EventMark struct {
	TokenID string
	Kind    string
	At      time.Time
}

// Webhook is an endpoint that receives events, signed as the Standard
// Webhooks specification says.
type Webhook struct {
	ID          string   `json:"id" example:"whk_4Lx0u1ZbT5uJ9mYtq2c3Qe"`
	URL         string   `json:"url" example:"https://api.example.com/hooks/tokend"`
	Description string   `json:"description"`
	AppID       string   `json:"app_id" doc:"Only the events of this application; empty for every application."`
	Events      []string `json:"events" doc:"Event types, or [\"*\"] for all." nullable:"false"`
	Enabled     bool     `json:"enabled"`
	// DisabledReason says why tokend disabled the endpoint ("failing":
	// every delivery failed for 5 days); empty when enabled or disabled
	// by a person.
	DisabledReason string     `json:"disabled_reason,omitempty"`
	FailingSince   *time.Time `json:"failing_since" nullable:"true" doc:"When deliveries started failing without a success since; null when the last one succeeded."`
	// PreviousSecretUntil is when the signing secret replaced by the last
	// rotation stops signing alongside the new one.
	PreviousSecretUntil *time.Time `json:"previous_secret_expires_at" nullable:"true"`
	CreatedBy           string     `json:"created_by"`
	CreatedAt           time.Time  `json:"created_at"`
	UpdatedAt           time.Time  `json:"updated_at"`
	Version             int64      `json:"version"`

	// Secret and PreviousSecret are the signing secrets, sealed with a key
	// derived from the pepper; never shown.
	Secret         []byte `json:"-"`
	PreviousSecret []byte `json:"-"`
}

// Delivery kinds and states.
const (
	DeliveryWebhook = "webhook"
	DeliveryMail    = "mail"

	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed" // given up after the retry schedule
)

// Delivery is one event on its way to one webhook endpoint or one mail
// recipient.
type Delivery struct {
	ID          string     `json:"id" example:"dlv_4Lx0u1ZbT5uJ9mYtq2c3Qe"`
	Kind        string     `json:"kind" enum:"webhook,mail"`
	WebhookID   string     `json:"webhook_id,omitempty"`
	Recipient   string     `json:"recipient,omitempty"`
	EventSeq    int64      `json:"-"`
	EventID     string     `json:"event_id"`
	EventType   string     `json:"event_type"`
	TokenID     string     `json:"token_id"`
	Status      string     `json:"status" enum:"pending,delivered,failed"`
	Attempts    int        `json:"attempts"`
	NextAt      *time.Time `json:"next_retry_at" nullable:"true"`
	LastStatus  *int       `json:"last_status" nullable:"true" doc:"HTTP status of the last attempt; null when none answered."`
	LastError   string     `json:"last_error"`
	CreatedAt   time.Time  `json:"created_at"`
	DeliveredAt *time.Time `json:"delivered_at" nullable:"true"`
	// History is the delivery's attempts, oldest first, where the caller
	// asked for them.
	History []DeliveryAttempt `json:"history,omitempty"`
}

// DeliveryAttempt is one try of a delivery.
type DeliveryAttempt struct {
	N           int        `json:"n"`
	At          time.Time  `json:"at"`
	HTTPStatus  *int       `json:"http_status" nullable:"true"`
	DurationMS  int64      `json:"duration_ms"`
	Error       string     `json:"error"`
	NextRetryAt *time.Time `json:"next_retry_at" nullable:"true"`
}

// EventStore keeps the outbox and the marks of time-based events. The
// outbox itself is written by the Store's writes (Event.Notices).
type EventStore interface {
	// Notifications lists events newest first; like Store.Events, a reader
	// following the list never misses one with a lower seq.
	Notifications(ctx context.Context, f NotificationFilter) (Page[Notification], error)
	// RaiseOnce writes the mark and ev (with its Notices) in one
	// transaction, unless the mark exists: raised reports which. Of
	// concurrent calls with one mark, from any number of instances,
	// exactly one raises.
	RaiseOnce(ctx context.Context, mark EventMark, ev Event) (raised bool, err error)
}
