package httpapi

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/manage"
)

// etag is the strong ETag of a version.
func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// ifMatch reads an If-Match header: 0 when absent or "*", else the version
// it names. A value that names no version can match nothing: 412.
func ifMatch(h string) (int64, error) {
	h = strings.TrimSpace(h)
	if h == "" || h == "*" {
		return 0, nil
	}
	h = strings.TrimPrefix(h, "W/")
	v, err := strconv.ParseInt(strings.Trim(h, `"`), 10, 64)
	if err != nil || v <= 0 {
		return 0, tokend.ErrStale
	}
	return v, nil
}

type idPath struct {
	ID string `path:"id" maxLength:"64" doc:"The token id (tok_…)."`
}

type idMatchInput struct {
	ID      string `path:"id" maxLength:"64" doc:"The token id (tok_…)."`
	IfMatch string `header:"If-Match" doc:"The ETag from a previous read; 412 if the token changed since."`
}

type tokenOutput struct {
	ETag string `header:"ETag"`
	Body tokend.Token
}

func tokenOut(t tokend.Token, err error) (*tokenOutput, error) {
	if err != nil {
		return nil, err
	}
	return &tokenOutput{ETag: etag(t.Version), Body: t}, nil
}

// TokenWithSecret is the answer to create and rotate: the only time the
// secret is ever shown.
type TokenWithSecret struct {
	Token  tokend.Token `json:"token"`
	Secret string       `json:"secret" doc:"The secret. It is shown only this once and cannot be retrieved again." example:"tkd_4X0bVg6sW2mR8qJ1pLk9cT3nH5yZ7aE2dF0gB4uQ1wM_1a2B3c"`
}

type tokenSecretOutput struct {
	ETag string `header:"ETag"`
	Body TokenWithSecret
}

type createTokenInput struct {
	Body checked[tokend.TokenInput]
}

func handleTokenCreate(api huma.API, svc *manage.Service) func(context.Context, *createTokenInput) (*tokenSecretOutput, error) {
	return func(ctx context.Context, in *createTokenInput) (*tokenSecretOutput, error) {
		body, ctx, probs, err := decodeChecked(ctx, api, in.Body)
		if err != nil {
			return nil, err
		}
		t, sec, err := svc.CreateToken(ctx, actorFrom(ctx), body)
		if err = withBodyProblems(probs, err); err != nil {
			return nil, err
		}
		return &tokenSecretOutput{ETag: etag(t.Version), Body: TokenWithSecret{Token: t, Secret: sec.Reveal()}}, nil
	}
}

type listTokensInput struct {
	AppID   string `query:"app_id" maxLength:"64"`
	OwnerID string `query:"owner_id" maxLength:"128" doc:"Only the tokens of this owner."`
	Status  string `query:"status" enum:"active,disabled,revoked,expired"`
	Type    string `query:"type" enum:"standard,plugin"`
	Q       string `query:"q" maxLength:"100" doc:"Case-insensitive search in names; a token id (tok_…) also finds that token, and 4 letters or digits also the tokens whose masked secret ends with them (exact case)."`
	// UnusedFor is read here, not by huma, so that a bad value is a
	// problem on the field like every other.
	UnusedFor string `query:"unused_for" maxLength:"16" doc:"Only tokens not used for this long (never used: since creation), in days: 30d, 90d; 1d to 36500d." example:"30d"`
	Sort      string `query:"sort" enum:"name,created_at,expires_at,last_used_at" doc:"Sort key, default created_at. Tokens without one (never used, never expiring) come last in either order."`
	Order     string `query:"order" enum:"asc,desc" doc:"Default: desc for created_at and last_used_at, asc for name and expires_at. A cursor is valid only with the sort and order that gave it."`
	Limit     int    `query:"limit" minimum:"1" maximum:"200" doc:"Page size, default 50."`
	Cursor    string `query:"cursor" maxLength:"512"`
	Decoy     bool   `query:"decoy" doc:"true lists only decoy tokens, which are otherwise left out."`
}

// unusedFor reads the unused_for parameter: a whole number of days.
func unusedFor(s string) (tokend.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := tokend.ParseDuration(s)
	if err != nil || !strings.HasSuffix(s, "d") || d <= 0 {
		var p tokend.Problems
		p.Add("unused_for", "must be a number of days from 1d to 36500d, such as 30d")
		return 0, p.Err()
	}
	return d, nil
}

type tokenPageOutput struct {
	Body tokend.Page[tokend.Token]
}

func handleTokenList(svc *manage.Service) func(context.Context, *listTokensInput) (*tokenPageOutput, error) {
	return func(ctx context.Context, in *listTokensInput) (*tokenPageOutput, error) {
		unused, err := unusedFor(in.UnusedFor)
		if err != nil {
			return nil, err
		}
		page, err := svc.Tokens(ctx, actorFrom(ctx), tokend.TokenFilter{
			AppID: in.AppID, OwnerID: in.OwnerID, Status: tokend.Status(in.Status), Type: tokend.TokenType(in.Type),
			Query: in.Q, UnusedFor: unused, Sort: in.Sort, Order: in.Order, Limit: in.Limit, Cursor: in.Cursor,
			Decoy: in.Decoy,
		})
		if err != nil {
			return nil, err
		}
		return &tokenPageOutput{Body: page}, nil
	}
}

func handleTokenGet(svc *manage.Service) func(context.Context, *idPath) (*tokenOutput, error) {
	return func(ctx context.Context, in *idPath) (*tokenOutput, error) {
		return tokenOut(svc.TokenWithNetworks(ctx, actorFrom(ctx), in.ID))
	}
}

type patchTokenInput struct {
	ID      string `path:"id" maxLength:"64" doc:"The token id (tok_…)."`
	IfMatch string `header:"If-Match" doc:"The ETag from a previous read; 412 if the token changed since."`
	Body    checked[tokend.TokenPatch]
}

func handleTokenPatch(api huma.API, svc *manage.Service) func(context.Context, *patchTokenInput) (*tokenOutput, error) {
	return func(ctx context.Context, in *patchTokenInput) (*tokenOutput, error) {
		v, err := ifMatch(in.IfMatch)
		if err != nil {
			return nil, err
		}
		patch, ctx, probs, err := decodeChecked(ctx, api, in.Body)
		if err != nil {
			return nil, err
		}
		t, err := svc.UpdateToken(ctx, actorFrom(ctx), in.ID, patch, v)
		return tokenOut(t, withBodyProblems(probs, err))
	}
}

// handleTokenState serves disable, enable and revoke, which differ only in
// the service call.
func handleTokenState(do func(context.Context, tokend.Actor, string, int64) (tokend.Token, error)) func(context.Context, *idMatchInput) (*tokenOutput, error) {
	return func(ctx context.Context, in *idMatchInput) (*tokenOutput, error) {
		v, err := ifMatch(in.IfMatch)
		if err != nil {
			return nil, err
		}
		return tokenOut(do(ctx, actorFrom(ctx), in.ID, v))
	}
}

// RotateRequest is the optional body of rotate.
type RotateRequest struct {
	GracePeriod string `json:"grace_period,omitempty" doc:"How long the old secret keeps working, e.g. 1h; default 0 (stops at once), at most 30d."`
}

type rotateInput struct {
	ID      string         `path:"id" maxLength:"64" doc:"The token id (tok_…)."`
	IfMatch string         `header:"If-Match" doc:"The ETag from a previous read; 412 if the token changed since."`
	Body    *RotateRequest `required:"false"`
}

func handleTokenRotate(svc *manage.Service) func(context.Context, *rotateInput) (*tokenSecretOutput, error) {
	return func(ctx context.Context, in *rotateInput) (*tokenSecretOutput, error) {
		v, err := ifMatch(in.IfMatch)
		if err != nil {
			return nil, err
		}
		var grace tokend.Duration
		if in.Body != nil && in.Body.GracePeriod != "" {
			if grace, err = tokend.ParseDuration(in.Body.GracePeriod); err != nil {
				var p tokend.Problems
				p.Add("grace_period", "must be a duration such as 30m, 1h or 1d")
				return nil, p.Err()
			}
		}
		t, sec, err := svc.RotateToken(ctx, actorFrom(ctx), in.ID, grace, v)
		if err != nil {
			return nil, err
		}
		return &tokenSecretOutput{ETag: etag(t.Version), Body: TokenWithSecret{Token: t, Secret: sec.Reveal()}}, nil
	}
}

func handleTokenDelete(svc *manage.Service) func(context.Context, *idMatchInput) (*struct{}, error) {
	return func(ctx context.Context, in *idMatchInput) (*struct{}, error) {
		v, err := ifMatch(in.IfMatch)
		if err != nil {
			return nil, err
		}
		return nil, svc.DeleteToken(ctx, actorFrom(ctx), in.ID, v)
	}
}

type usageInput struct {
	ID   string `path:"id" maxLength:"64" doc:"The token id (tok_…)."`
	From string `query:"from" doc:"RFC 3339 start (inclusive); default 7 days before to."`
	To   string `query:"to" doc:"RFC 3339 end (exclusive); default the end of this hour."`
}

// UsageAnswer lists hourly counts by outcome.
type UsageAnswer struct {
	Items []tokend.UsageCount `json:"items" nullable:"false"`
}

type usageOutput struct {
	Body UsageAnswer
}

func handleTokenUsage(svc *manage.Service) func(context.Context, *usageInput) (*usageOutput, error) {
	return func(ctx context.Context, in *usageInput) (*usageOutput, error) {
		var p tokend.Problems
		from := parseTime(&p, "from", in.From)
		to := parseTime(&p, "to", in.To)
		if err := p.Err(); err != nil {
			return nil, err
		}
		u, err := svc.TokenUsage(ctx, actorFrom(ctx), in.ID, from, to)
		if err != nil {
			return nil, err
		}
		return &usageOutput{Body: UsageAnswer{Items: u}}, nil
	}
}

type activityInput struct {
	ID string `path:"id" maxLength:"64" doc:"The token id (tok_…)."`
}

// ActivityAnswer lists a token's recent verifications, newest first: at
// most 50, written by the verification engine's usage flush (so a
// verification shows up within the flush interval).
type ActivityAnswer struct {
	Items []tokend.Activity `json:"items" nullable:"false" maxItems:"50"`
}

type activityOutput struct {
	Body ActivityAnswer
}

func handleTokenActivity(svc *manage.Service) func(context.Context, *activityInput) (*activityOutput, error) {
	return func(ctx context.Context, in *activityInput) (*activityOutput, error) {
		act, err := svc.TokenActivity(ctx, actorFrom(ctx), in.ID)
		if err != nil {
			return nil, err
		}
		return &activityOutput{Body: ActivityAnswer{Items: act}}, nil
	}
}

func parseTime(p *tokend.Problems, field, s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		p.Add(field, "must be an RFC 3339 time such as 2026-01-02T15:04:05Z")
	}
	return t
}
