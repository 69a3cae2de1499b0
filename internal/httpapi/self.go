package httpapi

import (
	"context"
	"errors"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/manage"
)

// Self is what a token learns about itself at GET /v1/self: never its
// secret, its hash, nor anything an admin keeps about it (who made it,
// where it was last used).
type Self struct {
	ID          string                 `json:"id" example:"tok_2xV9kQ7mN3pL8rT4wY6zA1"`
	AppID       string                 `json:"app_id"`
	AppName     string                 `json:"app_name"`
	OwnerID     string                 `json:"owner_id,omitempty" doc:"The owner of the token; absent when it has none."`
	Name        string                 `json:"name"`
	Type        tokend.TokenType       `json:"type" enum:"standard,plugin"`
	Access      tokend.Access          `json:"access" enum:"read_only,full_access,custom"`
	Permissions []string               `json:"permissions,omitempty" doc:"A custom token's permissions that its app's catalog still has."`
	ExpiresAt   *time.Time             `json:"expires_at,omitempty" doc:"Absent when the token never expires."`
	Status      tokend.Status          `json:"status" enum:"active" doc:"Always active: a token that is not (disabled, revoked, expired) is answered 401."`
	RateLimit   *tokend.RateLimitState `json:"rate_limit,omitempty" doc:"The token's rate limit as it stands (the tighter of its own and its owner's): asking spends none of it. Absent without a limit."`
	Metadata    map[string]any         `json:"metadata,omitempty"`
}

type selfInput struct {
	Authorization string `header:"Authorization" doc:"Bearer <token>: the token asking about itself."`
	APIKey        string `header:"X-API-Key" doc:"The token, for clients that cannot send Authorization."`
	Origin        string `header:"Origin"`
	UserAgent     string `header:"User-Agent"`
}

type selfOutput struct {
	Body Self
}

// handleSelf answers a token about itself. The secret goes through the
// verification engine like any other (the failure throttle of
// verification's door, the filter of known secrets, the token's IP and
// origin rules), asking without using: it spends no rate limit and counts
// no use, so that a client can look before it spends.
func handleSelf(svc *manage.Service, v tokend.Verifier) func(context.Context, *selfInput) (*selfOutput, error) {
	return func(ctx context.Context, in *selfInput) (*selfOutput, error) {
		tok, err := presented(in.Authorization, in.APIKey)
		if err != nil {
			return nil, err
		}
		ip := ClientIP(ctx)
		res, err := v.Verify(ctx, tokend.VerifyRequest{Token: tok, IP: ip, Origin: in.Origin,
			Peer: tokend.PeerKey(tokend.DoorVerify, ip), UserAgent: in.UserAgent, Endpoint: tokend.EndpointSelf, Peek: true})
		if err != nil {
			return nil, tokend.Unavailable(err)
		}
		if !res.Valid || res.Token == nil {
			p := refusal(res)
			addRateLimitHeaders(p, res.RateLimit)
			return nil, p
		}
		t := res.Token
		app, err := svc.Store().App(ctx, t.AppID)
		if errors.Is(err, tokend.ErrNotFound) { // deleted with its app a moment ago
			return nil, refusal(tokend.VerifyResult{Code: tokend.CodeNotFound})
		}
		if err != nil {
			return nil, tokend.Unavailable(err)
		}
		return &selfOutput{Body: Self{
			ID: t.ID, AppID: t.AppID, AppName: app.Name, OwnerID: t.OwnerID, Name: t.Name, Type: t.Type,
			Access: t.Access, Permissions: t.Permissions, ExpiresAt: t.ExpiresAt, Status: tokend.StatusActive,
			RateLimit: res.RateLimit, Metadata: t.Metadata,
		}}, nil
	}
}
