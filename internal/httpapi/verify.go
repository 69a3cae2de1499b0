package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"
	"github.com/go-json-experiment/json/jsontext"

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

// presented answers the token a request presents as Authorization: Bearer,
// else as X-API-Key, or the 401 for a request that presents none.
func presented(authorization, apiKey string) (string, error) {
	tok := bearer(authorization)
	if tok == "" {
		tok = strings.TrimSpace(apiKey)
	}
	if tok == "" {
		return "", missingCredentials()
	}
	return tok, nil
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
		if op := ctx.Operation(); op == nil || !needsAdmin(op.Security) {
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
		res, err := v.Verify(ctx.Context(), tokend.VerifyRequest{Token: tok, IP: ip, Peer: tokend.PeerKey(tokend.DoorAdmin, ip),
			UserAgent: ctx.Header("User-Agent"), Endpoint: tokend.EndpointAdmin})
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
		if actor.Scope != nil && !scopedOperations[ctx.Operation().OperationID] {
			fail(problemFrom(scopeRefusal))
			return
		}
		next(huma.WithValue(ctx, keyActor, actor))
	}
}

// needsAdmin reports whether an operation's security requirement is an
// admin token (the "bearer" scheme); public operations have none, and
// GET /v1/self checks its own token.
func needsAdmin(security []map[string][]string) bool {
	for _, req := range security {
		if _, ok := req["bearer"]; ok {
			return true
		}
	}
	return false
}

func (p *Problem) withDetail(d string) *Problem {
	p.Detail = d
	return p
}

// verifyPeer is the failure throttle's key for a verification: the address
// the request came from (see clientIP), never the ip of its body, which is
// the caller's word about its own client.
func verifyPeer(ctx context.Context) string {
	if _, ok := ctx.Value(keyClientIP).(string); !ok {
		if p := connPeerOf(ctx); p != nil {
			return p.verifyPeer
		}
	}
	return tokend.PeerKey(tokend.DoorVerify, ClientIP(ctx))
}

type forwardAuthInput struct {
	Authorization  string `header:"Authorization" doc:"Bearer <token>."`
	APIKey         string `header:"X-API-Key" doc:"The token, for clients that cannot send Authorization."`
	Origin         string `header:"Origin"`
	UserAgent      string `header:"User-Agent" doc:"The original request's User-Agent (proxies pass the client's headers on): kept only in the security events a secret can raise."`
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
	TokenOwner         string `header:"X-Token-Owner" doc:"The token's owner_id; absent when it has none."`
	RateLimitLimit     string `header:"RateLimit-Limit"`
	RateLimitRemaining string `header:"RateLimit-Remaining"`
	RateLimitReset     string `header:"RateLimit-Reset"`
}

// handleForwardAuth answers reverse proxies (nginx auth_request, Caddy
// forward_auth, Traefik ForwardAuth): 200 with identity headers, or 401, 403,
// 429.
func handleForwardAuth(v tokend.Verifier) func(context.Context, *forwardAuthInput) (*forwardAuthOutput, error) {
	return func(ctx context.Context, in *forwardAuthInput) (*forwardAuthOutput, error) {
		tok, err := presented(in.Authorization, in.APIKey)
		if err != nil {
			return nil, err
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
			Peer: tokend.PeerKey(tokend.DoorVerify, ip), Method: method, Path: uri,
			UserAgent: in.UserAgent, Endpoint: tokend.EndpointForwardAuth})
		if err != nil {
			return nil, tokend.Unavailable(err)
		}
		if !res.Valid {
			p := refusal(res)
			addRateLimitHeaders(p, res.RateLimit)
			return nil, p
		}
		out := &forwardAuthOutput{TokenID: res.Token.ID, TokenApp: res.Token.AppID, TokenName: res.Token.Name, TokenOwner: res.Token.OwnerID}
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

// registerVerify serves POST /v1/verify, the hot path, with a plain net/http
// handler on mux (huma's generic request handling cost more than the whole
// verification), and adds the operation to the OpenAPI document as
// huma.Register would document it: op's summary, tags and security, the
// schemas VerifyRequest and VerifyResult from huma's registry, a Problem
// answer for op's errors and 500. The body is read by decodeVerify; every
// error is a Problem written by writeProblem, as every operation's.
func registerVerify(api huma.API, mux *http.ServeMux, log *slog.Logger, op huma.Operation, v tokend.Verifier) {
	documentPlain(api, &op, reflect.TypeFor[tokend.VerifyRequest](), "VerifyRequest", reflect.TypeFor[tokend.VerifyResult](), "VerifyResult")

	mux.HandleFunc(op.Method+" "+op.Path, func(w http.ResponseWriter, r *http.Request) {
		req, err := readVerify(r)
		if err == nil {
			req.Peer = verifyPeer(r.Context())
			req.Endpoint = tokend.EndpointVerify
			var res tokend.VerifyResult
			if res, err = v.Verify(r.Context(), req); err == nil {
				writeJSON(w, res)
				return
			}
			err = tokend.Unavailable(err)
		}
		p := problemFrom(err)
		if p.Status >= 500 {
			log.ErrorContext(r.Context(), "request failed", "operation", op.OperationID, "code", p.Code, "err", p.cause)
		}
		writeProblem(api, w, r, p)
	})
}

// verifyReader is the reusable state of reading one verify body.
type verifyReader struct {
	body io.LimitedReader
	buf  bytes.Buffer
	dec  jsontext.Decoder
}

var verifyReaders = sync.Pool{New: func() any { return new(verifyReader) }}

// readVerify reads the body of a POST /v1/verify: JSON (415 otherwise), at
// most MaxBodyBytes (413), decoded by decodeVerify.
func readVerify(r *http.Request) (tokend.VerifyRequest, error) {
	if ct := r.Header.Get("Content-Type"); !isJSON(ct) {
		return tokend.VerifyRequest{}, newProblem(http.StatusUnsupportedMediaType, "unknown content type: "+ct)
	}
	vr := verifyReaders.Get().(*verifyReader)
	defer func() {
		vr.body.R = nil // the pool keeps no request alive
		if vr.buf.Cap() <= 4<<10 {
			verifyReaders.Put(vr)
		}
	}()
	vr.body = io.LimitedReader{R: r.Body, N: MaxBodyBytes + 1}
	vr.buf.Reset()
	if _, err := vr.buf.ReadFrom(&vr.body); err != nil {
		return tokend.VerifyRequest{}, newProblem(http.StatusBadRequest, "cannot read the request body")
	}
	if vr.buf.Len() > MaxBodyBytes {
		return tokend.VerifyRequest{}, newProblem(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is too large limit=%d bytes", MaxBodyBytes))
	}
	return vr.decodeVerify()
}

// decodeVerify decodes the body in vr.buf strictly, as the schema of
// VerifyRequest says: one JSON object, nothing after it; member names exactly
// token, permissions, ip, origin, user_agent (spelled so after unescaping, each at most
// once), token among them; token, ip and origin strings, permissions a list
// of strings (or null, as the schema allows), within their maxLength (in
// characters) and maxItems; valid UTF-8 throughout. Any other member is
// refused by name. The answer is 400 for a body that is not JSON, 422 listing
// every field at fault otherwise; the body's ip must also pass
// VerifyRequest.Check.
func (vr *verifyReader) decodeVerify() (tokend.VerifyRequest, error) {
	var req tokend.VerifyRequest
	body := vr.buf.Bytes()
	if len(bytes.TrimSpace(body)) == 0 {
		return req, newProblem(http.StatusBadRequest, "request body is required")
	}
	dec := &vr.dec
	dec.Reset(&vr.buf) // reads body in place, emptying vr.buf
	var p tokend.Problems
	if dec.PeekKind() != '{' {
		if _, err := dec.ReadValue(); err != nil {
			return req, syntaxProblem(body, err)
		}
		p.Add("", "expected object")
	} else if err := decodeVerifyObject(dec, &req, &p); err != nil {
		return req, syntaxProblem(body, err)
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		if err == nil {
			return req, newProblem(http.StatusBadRequest, "unexpected data after the JSON object")
		}
		return req, syntaxProblem(body, err)
	}
	if err := p.Err(); err != nil {
		return req, err
	}
	return req, req.Check()
}

// decodeVerifyObject reads the object at dec into req, adding what the
// schema refuses to p; an error is the decoder's (the body is not JSON).
func decodeVerifyObject(dec *jsontext.Decoder, req *tokend.VerifyRequest, p *tokend.Problems) error {
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	token := false
	for dec.PeekKind() != '}' {
		name, err := dec.ReadValue()
		if err != nil {
			return err
		}
		switch field := unquote(name); string(field) {
		case "token":
			token = true
			err = readString(dec, p, "token", 512, &req.Token)
		case "ip":
			err = readString(dec, p, "ip", 64, &req.IP)
		case "origin":
			err = readString(dec, p, "origin", 512, &req.Origin)
		case "user_agent":
			err = readString(dec, p, "user_agent", 512, &req.UserAgent)
		case "permissions":
			err = readStrings(dec, p, "permissions", 32, &req.Permissions)
		default:
			p.Add(string(field), "unexpected property")
			err = dec.SkipValue()
		}
		if err != nil {
			return err
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	if !token {
		*p = slices.Insert(*p, 0, tokend.FieldError{Field: "token", Message: "is required"})
	}
	return nil
}

// readString reads a string of at most maxLen characters into dst.
func readString(dec *jsontext.Decoder, p *tokend.Problems, field string, maxLen int, dst *string) error {
	v, err := dec.ReadValue()
	if err != nil {
		return err
	}
	if v.Kind() != '"' {
		p.Add(field, "expected string")
		return nil
	}
	s := unquote(v)
	if utf8.RuneCount(s) > maxLen {
		p.Add(field, "expected length <= %d", maxLen)
		return nil
	}
	*dst = string(s)
	return nil
}

// readStrings reads null or a list of at most maxItems strings (of any
// length) into dst.
func readStrings(dec *jsontext.Decoder, p *tokend.Problems, field string, maxItems int, dst *[]string) error {
	switch dec.PeekKind() {
	case 'n':
		_, err := dec.ReadValue()
		return err
	case '[':
	default:
		p.Add(field, "expected array")
		return dec.SkipValue()
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	*dst = []string{}
	for i := 0; dec.PeekKind() != ']'; i++ {
		v, err := dec.ReadValue()
		if err != nil {
			return err
		}
		if v.Kind() != '"' {
			p.Add(field+"["+strconv.Itoa(i)+"]", "expected string")
			continue
		}
		*dst = append(*dst, string(unquote(v)))
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	if len(*dst) > maxItems {
		p.Add(field, "expected array length <= %d", maxItems)
	}
	return nil
}

// unquote answers the text of a JSON string the decoder has checked.
func unquote(v jsontext.Value) []byte {
	if bytes.IndexByte(v, '\\') < 0 {
		return v[1 : len(v)-1]
	}
	b, _ := jsontext.AppendUnquote(nil, v)
	return b
}

// syntaxProblem turns the decoder's error about body into a problem:
// checkJSON's 422 for a duplicate name or invalid UTF-8, else 400.
func syntaxProblem(body []byte, err error) error {
	if p := checkJSON(body); p != nil {
		return p
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return newProblem(http.StatusBadRequest, "unexpected end of JSON input")
	}
	return newProblem(http.StatusBadRequest, strings.TrimPrefix(err.Error(), "jsontext: "))
}
