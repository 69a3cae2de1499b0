package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

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
	p := &Problem{Type: "about:blank", Reason: res.Code, Status: res.Code.Status()}
	switch p.Status {
	case http.StatusForbidden:
		p.Code = tokend.ECodeForbidden
		if res.Code == tokend.CodeInsufficientPermissions {
			p.withHeader("WWW-Authenticate", `Bearer realm="tokend", error="insufficient_scope"`)
		}
	case http.StatusTooManyRequests:
		p.Code = tokend.ECodeRateLimited
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
	p.Detail = res.Describe()
	return p
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
		// Failed admin tokens count against the peer at a door of their
		// own: failures at verification never lock anybody out of the
		// management API, nor the other way round.
		res, err := v.Verify(ctx.Context(), tokend.VerifyRequest{Token: tok, IP: ip, Peer: tokend.PeerKey(tokend.DoorAdmin, ip)})
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

// verifyPeer is the failure throttle's key for a verification: the address
// the request came from (see clientIP), never the ip of its body, which is
// the caller's word about its own client.
func verifyPeer(ctx context.Context) string {
	return tokend.PeerKey(tokend.DoorVerify, ClientIP(ctx))
}

type verifyInput struct {
	Body tokend.VerifyRequest
}

type verifyOutput struct {
	Body tokend.VerifyResult
}

func handleVerify(v tokend.Verifier) func(context.Context, *verifyInput) (*verifyOutput, error) {
	return func(ctx context.Context, in *verifyInput) (*verifyOutput, error) {
		if err := in.Body.Check(); err != nil {
			return nil, err
		}
		req := in.Body
		req.Peer = verifyPeer(ctx)
		res, err := v.Verify(ctx, req)
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
	ForwardedURI   string `header:"X-Forwarded-Uri" doc:"The original request's URI (Caddy, Traefik): its path, without the query string, is kept in the token's recent activity."`
	OriginalURI    string `header:"X-Original-URI" doc:"The original request's URI (nginx examples): as X-Forwarded-Uri."`
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
		method := in.ForwardedMeth
		if method == "" {
			method = in.OriginalMethod
		}
		uri := in.ForwardedURI
		if uri == "" {
			uri = in.OriginalURI
		}
		perm := in.Permission
		if perm == "" {
			switch strings.ToUpper(method) {
			case "", http.MethodGet, http.MethodHead, http.MethodOptions:
				perm = tokend.PermRead
			default:
				perm = tokend.PermWrite
			}
		}
		ip := ClientIP(ctx)
		res, err := v.Verify(ctx, tokend.VerifyRequest{Token: tok, Permissions: []string{perm}, IP: ip, Origin: in.Origin,
			Peer: tokend.PeerKey(tokend.DoorVerify, ip), Method: method, Path: uri})
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

// registerVerify serves POST /v1/verify, the hot path, with a plain
// net/http handler: huma's generic request handling (the body decoded twice,
// once into a map to validate it against the schema) cost more than the
// whole verification. The operation is still registered through huma, on a
// view of the API whose adapter keeps the handler instead of routing it, so
// the OpenAPI document describes it exactly as every other operation, and
// that handler still answers every request the fast path does not take
// (unusual content types, bodies that are not a plain valid question): all
// errors keep coming from huma's one error path, newProblem.
func registerVerify(api huma.API, log *slog.Logger, op huma.Operation, v tokend.Verifier) {
	kept := &keptRoute{Adapter: api.Adapter()}
	register(docOnly{API: api, adapter: kept}, log, op, handleVerify(v))
	slow, kop := kept.handler, kept.op
	api.Adapter().Handle(kop, func(hctx huma.Context) {
		r, w := humago.Unwrap(hctx)
		if !fastVerifyAsk(r) {
			slow(hctx)
			return
		}
		buf := bodyPool.Get().(*bytes.Buffer)
		defer func() {
			if buf.Cap() <= 4<<10 {
				buf.Reset()
				bodyPool.Put(buf)
			}
		}()
		buf.Reset()
		_, err := buf.ReadFrom(io.LimitReader(r.Body, MaxBodyBytes+1))
		if err != nil || buf.Len() > MaxBodyBytes {
			// huma answers it, having read the same bytes: 413, or the
			// read error.
			r.Body = replay{io.MultiReader(bytes.NewReader(buf.Bytes()), r.Body), r.Body}
			slow(hctx)
			return
		}
		if p := checkJSON(buf.Bytes()); p != nil {
			writeProblem(api, w, r, p)
			return
		}
		req, ok := decodeVerifyRequest(buf.Bytes())
		if ok {
			if err := req.Check(); err != nil {
				writeProblem(api, w, r, problemFrom(err))
				return
			}
		}
		if !ok {
			r.Body = replay{bytes.NewReader(buf.Bytes()), r.Body}
			slow(hctx)
			return
		}
		req.Peer = verifyPeer(r.Context())
		res, err := v.Verify(r.Context(), req)
		if err != nil {
			p := problemFrom(tokend.Unavailable(err))
			log.ErrorContext(r.Context(), "request failed", "operation", op.OperationID, "code", p.Code, "err", p.cause)
			writeProblem(api, w, r, p)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false) // as huma's JSON format writes
		enc.Encode(res)
	})
}

var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// replay gives back a body the fast path read, to huma's handler.
type replay struct {
	io.Reader
	io.Closer
}

// docOnly is the API as huma.Register sees it for the verify operation:
// everything is the real API's, but the route goes to keptRoute.
type docOnly struct {
	huma.API
	adapter huma.Adapter
}

func (d docOnly) Adapter() huma.Adapter { return d.adapter }

// Config passes the API's configuration through to huma.Register.
func (d docOnly) Config() huma.Config {
	if c, ok := d.API.(interface{ Config() huma.Config }); ok {
		return c.Config()
	}
	return huma.Config{}
}

// keptRoute keeps the handler huma.Register makes instead of routing it.
type keptRoute struct {
	huma.Adapter
	op      *huma.Operation
	handler func(huma.Context)
}

func (k *keptRoute) Handle(op *huma.Operation, h func(huma.Context)) { k.op, k.handler = op, h }

// fastVerifyAsk reports whether the request asks in JSON for a JSON answer:
// anything else (CBOR, other types) is huma's to negotiate.
func fastVerifyAsk(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if ct != "application/json" && !strings.HasPrefix(ct, "application/json;") {
		return false
	}
	switch r.Header.Get("Accept") {
	case "", "*/*", "application/json":
		return true
	}
	return false
}

// decodeVerifyRequest decodes a body that huma's validation would pass
// unchanged: one JSON object whose keys are exactly fields of VerifyRequest
// (token among them), holding strings and lists of strings within the
// schema's limits, no null anywhere. Whatever else it refuses goes to huma,
// which decides and explains.
func decodeVerifyRequest(b []byte) (tokend.VerifyRequest, bool) {
	var req tokend.VerifyRequest
	if len(b) == 0 || bytes.Contains(b, []byte("null")) {
		return req, false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, false
	}
	if len(bytes.TrimLeft(b[dec.InputOffset():], " \t\r\n")) != 0 {
		return req, false
	}
	// Byte lengths bound rune counts (the schema's unit) from above.
	if len(req.Token) > 512 || len(req.IP) > 64 || len(req.Origin) > 512 || len(req.Permissions) > 32 {
		return req, false
	}
	// encoding/json matched keys without regard to case; the schema does
	// not.
	return req, exactVerifyKeys(b)
}

// exactVerifyKeys reports whether every key of the object b (which decoded
// into a VerifyRequest, so its values are strings or lists of strings) is
// spelled exactly as a VerifyRequest field, and token is present.
func exactVerifyKeys(b []byte) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i++
	token := false
	for {
		i = skipSpace(b, i)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case '}':
			return token
		case ',':
			i++
			continue
		case '"':
		default:
			return false
		}
		end := bytes.IndexByte(b[i+1:], '"')
		if end < 0 {
			return false
		}
		key := b[i+1 : i+1+end]
		if bytes.IndexByte(key, '\\') >= 0 {
			return false
		}
		switch string(key) {
		case "token":
			token = true
		case "permissions", "ip", "origin":
		default:
			return false
		}
		i = skipSpace(b, i+1+end+1)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == '[' {
			for i++; ; {
				i = skipSpace(b, i)
				if i >= len(b) {
					return false
				}
				if b[i] == ']' {
					i++
					break
				}
				if b[i] == ',' {
					i++
					continue
				}
				if i = skipString(b, i); i < 0 {
					return false
				}
			}
		} else if i = skipString(b, i); i < 0 {
			return false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// skipString answers the index after the JSON string at b[i], or -1.
func skipString(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}
