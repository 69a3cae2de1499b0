package tokend

import (
	"context"
	"time"
)

// The customer portal: a product's backend mints a single-use link for one
// of its signed-in customers (an owner of one of its applications); the
// link opens tokend's self-service page, where that customer manages only
// their own tokens of that application.

// PortalLinkTTL is how long a portal link may be opened; PortalIdle how
// long a portal session lasts without a request; PortalAbsolute how long
// it lasts at most.
const (
	PortalLinkTTL  = 5 * time.Minute
	PortalIdle     = 30 * time.Minute
	PortalAbsolute = 8 * time.Hour
)

// PortalUser is the product's signed-in user a link was minted for; it is
// recorded in the details of every audit event of the session.
type PortalUser struct {
	ID    string `json:"id" maxLength:"128" doc:"The product's id of its signed-in user, 1 to 128 visible ASCII characters."`
	Name  string `json:"name,omitempty" maxLength:"200" doc:"How the user is shown on the page."`
	Email string `json:"email,omitempty" maxLength:"254"`
}

// PortalInput is the body of POST /v1/portal/sessions.
type PortalInput struct {
	AppID              string     `json:"app_id" doc:"The product application whose tokens the customer manages."`
	OwnerID            string     `json:"owner_id" maxLength:"128" doc:"The customer (owner) the page is for, 1 to 128 visible ASCII characters."`
	OwnerName          string     `json:"owner_name,omitempty" maxLength:"200" doc:"How the customer is shown, and the owner_name of the tokens they create."`
	User               PortalUser `json:"user" doc:"The product's signed-in user, recorded in the audit log of every action."`
	ReturnURL          string     `json:"return_url" maxLength:"2048" doc:"Where sign-out goes: an absolute https URL (http only for localhost)."`
	AllowedAccess      []Access   `json:"allowed_access,omitempty" doc:"The access levels the customer may give their tokens (read_only, full_access, custom); default read_only and full_access."`
	AllowedPermissions []string   `json:"allowed_permissions,omitempty" doc:"With custom access: the permissions, from the app's catalog, the customer may pick; default the whole catalog."`
}

// PortalSessionAnswer is the answer to POST /v1/portal/sessions.
type PortalSessionAnswer struct {
	URL       string    `json:"url" doc:"The single-use link to send the customer's browser to (a redirect); it opens the page once."`
	ExpiresAt time.Time `json:"expires_at" doc:"When the link stops working, 5 minutes after it was made."`
}

// PortalGrant is what a portal link, then the session it opens, allows:
// one owner of one application, acting through the service as an actor
// scoped to them.
type PortalGrant struct {
	AppID              string     `json:"app_id"`
	OwnerID            string     `json:"owner_id"`
	OwnerName          string     `json:"owner_name,omitempty"`
	User               PortalUser `json:"user"`
	ReturnURL          string     `json:"return_url"`
	AllowedAccess      []Access   `json:"allowed_access,omitempty"`
	AllowedPermissions []string   `json:"allowed_permissions,omitempty"`
	// CreatedBy is the actor that minted the link (an admin token).
	CreatedBy string `json:"created_by"`
}

// PortalLink is a minted link: only the SHA-256 of its secret is stored.
type PortalLink struct {
	IDHash    []byte
	Grant     PortalGrant
	CreatedAt time.Time
	ExpiresAt time.Time
}

// PortalSession is a customer signed in through a link; the store keeps the
// SHA-256 of the id in the customer's cookie.
type PortalSession struct {
	IDHash     []byte
	Grant      PortalGrant
	CSRF       string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
}

// PortalStore keeps portal links and sessions. Both stores implement it and
// pass the storetest conformance suite.
type PortalStore interface {
	CreatePortalLink(ctx context.Context, l PortalLink) error
	// ConsumePortalLink deletes the link whose hash this is and answers it,
	// in one atomic statement, when it has not expired at now: of
	// concurrent callers, on any number of instances, exactly one gets it.
	// ErrNotFound for an unknown, used or expired link.
	ConsumePortalLink(ctx context.Context, idHash []byte, now time.Time) (PortalLink, error)
	CreatePortalSession(ctx context.Context, s PortalSession) error
	// PortalSession finds a session by the hash of its id; ErrNotFound
	// when there is none (expired ones may still be answered: callers
	// check).
	PortalSession(ctx context.Context, idHash []byte) (PortalSession, error)
	// TouchPortalSession moves LastSeenAt forward to at, never back.
	TouchPortalSession(ctx context.Context, idHash []byte, at time.Time) error
	DeletePortalSession(ctx context.Context, idHash []byte) error
	// DeleteExpiredPortal removes the links expired at now, and the
	// sessions past ExpiresAt or idle since before now-idle, and answers
	// how many rows it removed.
	DeleteExpiredPortal(ctx context.Context, now time.Time, idle time.Duration) (int, error)
}

// AppPortal is how an application's customer portal looks and where it
// may be embedded. Every URL is https; the colour is #rrggbb.
type AppPortal struct {
	ProductName string `json:"product_name,omitempty" doc:"The name the page shows; the application's name when empty. Up to 50 characters."`
	LogoURL     string `json:"logo_url,omitempty" doc:"An https URL of the product's logo, shown in the page's header."`
	AccentColor string `json:"accent_color,omitempty" doc:"The page's accent colour, #rrggbb."`
	SupportURL  string `json:"support_url,omitempty" doc:"An https URL of the product's support page, linked from the page."`
	// FrameAncestors are the https origins that may show the page in an
	// iframe (the CSP's frame-ancestors); none: not embeddable.
	FrameAncestors []string `json:"frame_ancestors,omitempty" doc:"https origins (such as https://app.example.com) that may embed the page in an iframe; empty: the page cannot be embedded."`
}

// MaxFrameAncestors bounds an application's frame_ancestors.
const MaxFrameAncestors = 20

// Audit actions of the portal.
const (
	ActionPortalLink   = "portal.link"
	ActionPortalOpen   = "portal.open"
	ActionPortalLogout = "portal.logout"
)
