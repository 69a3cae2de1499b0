package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/manage"
)

// bearer reads a bearer token from an Authorization header value.
func bearer(h string) string {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// refusal is the HTTP answer to a verification that did not pass: 401 for a
// token that is no good, 403 for a good token that may not do this, 429 when
// rate limited.
func refusal(res tokend.VerifyResult) *Problem {
	p := &Problem{Type: "about:blank", Reason: res.Code}
	switch res.Code {
	case tokend.CodeIPNotAllowed, tokend.CodeOriginNotAllowed, tokend.CodeInsufficientPermissions:
		p.Status, p.Code = http.StatusForbidden, tokend.ECodeForbidden
		if res.Code == tokend.CodeInsufficientPermissions {
			p.withHeader("WWW-Authenticate", `Bearer realm="tokend", error="insufficient_scope"`)
		}
	case tokend.CodeRateLimited:
		p.Status, p.Code = http.StatusTooManyRequests, tokend.ECodeRateLimited
		retry := 1
		if res.RateLimit != nil && res.RateLimit.RetryAfter > 0 {
			retry = res.RateLimit.RetryAfter
		}
		p.withHeader("Retry-After", strconv.Itoa(retry))
	default:
		p.Status, p.Code = http.StatusUnauthorized, tokend.ECodeUnauthenticated
		p.withHeader("WWW-Authenticate", `Bearer realm="tokend", error="invalid_token"`)
	}
	p.Title = http.StatusText(p.Status)
	p.Detail = describe(res)
	return p
}

func describe(res tokend.VerifyResult) string {
	switch res.Code {
	case tokend.CodeMalformed:
		return "the token is malformed"
	case tokend.CodeNotFound:
		return "the token is not known"
	case tokend.CodeExpired:
		return "the token has expired"
	case tokend.CodeDisabled:
		return "the token is disabled"
	case tokend.CodeRevoked:
		return "the token is revoked"
	case tokend.CodeUsageExceeded:
		return "the token has reached its maximum number of uses"
	case tokend.CodeIPNotAllowed:
		return "the token may not be used from this address"
	case tokend.CodeOriginNotAllowed:
		return "the token may not be used from this origin"
	case tokend.CodeInsufficientPermissions:
		return "the token lacks a permission this request needs"
	case tokend.CodeRateLimited:
		if res.Reason != "" {
			return "too many failed attempts from this address; slow down"
		}
		return "the token's rate limit is used up"
	}
	return string(res.Code)
}

func missingCredentials() *Problem {
	p := &Problem{Type: "about:blank", Status: http.StatusUnauthorized, Title: http.StatusText(http.StatusUnauthorized),
		Code: tokend.ECodeUnauthenticated, Detail: "a bearer token is required"}
	return p.withHeader("WWW-Authenticate", `Bearer realm="tokend"`)
}

// authenticate is the huma middleware that guards every operation with a
// security requirement: the bearer must be a valid admin token (a token of
// the system app). The actor it makes carries the token's permissions; each
// service call checks the one it needs.
func authenticate(api huma.API, v tokend.Verifier, log *slog.Logger) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		if op := ctx.Operation(); op == nil || len(op.Security) == 0 {
			next(ctx)
			return
		}
		fail := func(p *Problem) {
			for k, vs := range p.headers {
				for _, v := range vs {
					ctx.SetHeader(k, v)
				}
			}
			huma.WriteErr(api, ctx, p.Status, p.Detail, p)
		}
		tok := bearer(ctx.Header("Authorization"))
		if tok == "" {
			fail(missingCredentials())
			return
		}
		ip := ClientIP(ctx.Context())
		res, err := v.Verify(ctx.Context(), tokend.VerifyRequest{Token: tok, IP: ip})
		if err != nil {
			log.ErrorContext(ctx.Context(), "cannot verify admin token", "err", err)
			fail(problemFrom(tokend.Unavailable(err)))
			return
		}
		if !res.Valid {
			fail(refusal(res))
			return
		}
		if res.Token == nil || res.Token.AppID != tokend.SystemAppID {
			fail(refusal(tokend.VerifyResult{Code: tokend.CodeNotFound}).withDetail("this is not an admin token"))
			return
		}
		actor := manage.AdminActor(*res.Token, ip)
		next(huma.WithValue(ctx, keyActor, actor))
	}
}

func (p *Problem) withDetail(d string) *Problem {
	p.Detail = d
	return p
}

type verifyInput struct {
	Body tokend.VerifyRequest
}

type verifyOutput struct {
	Body tokend.VerifyResult
}

func handleVerify(v tokend.Verifier) func(context.Context, *verifyInput) (*verifyOutput, error) {
	return func(ctx context.Context, in *verifyInput) (*verifyOutput, error) {
		res, err := v.Verify(ctx, in.Body)
		if err != nil {
			return nil, tokend.Unavailable(err)
		}
		return &verifyOutput{Body: res}, nil
	}
}

type forwardAuthInput struct {
	Authorization  string `header:"Authorization" doc:"Bearer <token>."`
	APIKey         string `header:"X-API-Key" doc:"The token, for clients that cannot send Authorization."`
	Origin         string `header:"Origin"`
	ForwardedMeth  string `header:"X-Forwarded-Method" doc:"The original request's method (Caddy, Traefik)."`
	OriginalMethod string `header:"X-Original-Method" doc:"The original request's method (nginx examples)."`
	Permission     string `query:"permission" doc:"The permission the request needs; without one, GET, HEAD and OPTIONS need read and every other method write."`
}

type forwardAuthOutput struct {
	TokenID            string `header:"X-Token-Id"`
	TokenApp           string `header:"X-Token-App"`
	TokenName          string `header:"X-Token-Name"`
	RateLimitLimit     string `header:"RateLimit-Limit"`
	RateLimitRemaining string `header:"RateLimit-Remaining"`
	RateLimitReset     string `header:"RateLimit-Reset"`
}

// handleForwardAuth answers reverse proxies (nginx auth_request, Caddy
// forward_auth, Traefik ForwardAuth): 200 with identity headers, or 401, 403,
// 429.
func handleForwardAuth(v tokend.Verifier) func(context.Context, *forwardAuthInput) (*forwardAuthOutput, error) {
	return func(ctx context.Context, in *forwardAuthInput) (*forwardAuthOutput, error) {
		tok := bearer(in.Authorization)
		if tok == "" {
			tok = strings.TrimSpace(in.APIKey)
		}
		if tok == "" {
			return nil, missingCredentials()
		}
		perm := in.Permission
		if perm == "" {
			method := in.ForwardedMeth
			if method == "" {
				method = in.OriginalMethod
			}
			switch strings.ToUpper(method) {
			case "", http.MethodGet, http.MethodHead, http.MethodOptions:
				perm = tokend.PermRead
			default:
				perm = tokend.PermWrite
			}
		}
		res, err := v.Verify(ctx, tokend.VerifyRequest{Token: tok, Permissions: []string{perm}, IP: ClientIP(ctx), Origin: in.Origin})
		if err != nil {
			return nil, tokend.Unavailable(err)
		}
		if !res.Valid {
			p := refusal(res)
			addRateLimitHeaders(p, res.RateLimit)
			return nil, p
		}
		out := &forwardAuthOutput{TokenID: res.Token.ID, TokenApp: res.Token.AppID, TokenName: res.Token.Name}
		if rl := res.RateLimit; rl != nil {
			out.RateLimitLimit = strconv.Itoa(rl.Limit)
			out.RateLimitRemaining = strconv.Itoa(rl.Remaining)
			out.RateLimitReset = strconv.Itoa(rl.Reset)
		}
		return out, nil
	}
}

func addRateLimitHeaders(p *Problem, rl *tokend.RateLimitState) {
	if rl == nil {
		return
	}
	p.withHeader("RateLimit-Limit", strconv.Itoa(rl.Limit))
	p.withHeader("RateLimit-Remaining", strconv.Itoa(rl.Remaining))
	p.withHeader("RateLimit-Reset", strconv.Itoa(rl.Reset))
}
