package httpapi

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/tokend/tokend"
)

// strictJSON is the huma middleware that refuses, before any operation
// decodes it, a JSON request body that holds invalid UTF-8 (which Go's
// decoder would silently replace with U+FFFD) or an object with the same
// name twice (whose first value the decoder would silently drop): 422,
// naming the field. The body is read once, bounded by MaxBodyBytes, and
// handed on unchanged; a body too large or not JSON at all is left to huma,
// which answers 413 or 400. POST /v1/verify is no huma operation: its own
// decoder refuses the same (decodeVerify).
func strictJSON(api huma.API) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		r, w := humago.Unwrap(ctx)
		if op := ctx.Operation(); op != nil && op.SkipValidateBody && r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody &&
			!isJSON(r.Header.Get("Content-Type")) {
			// A checked body (checked.go): huma, which would say so, does
			// not look at it.
			writeProblem(api, w, r, problemFrom(newProblem(http.StatusUnsupportedMediaType, "unknown content type: "+r.Header.Get("Content-Type"))))
			return
		}
		if r.Body == nil || r.Body == http.NoBody || !isJSON(r.Header.Get("Content-Type")) {
			next(ctx)
			return
		}
		b, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
		if err != nil || len(b) > MaxBodyBytes {
			r.Body = replay{io.MultiReader(bytes.NewReader(b), r.Body), r.Body}
			next(ctx)
			return
		}
		if p := checkJSON(b); p != nil {
			writeProblem(api, w, r, p)
			return
		}
		r.Body = replay{bytes.NewReader(b), r.Body}
		next(ctx)
	}
}

// replay gives back a body strictJSON read, to huma.
type replay struct {
	io.Reader
	io.Closer
}

func isJSON(ct string) bool {
	ct, _, _ = strings.Cut(ct, ";")
	ct = strings.TrimSpace(strings.ToLower(ct))
	return ct == "application/json" || (strings.HasPrefix(ct, "application/") && strings.HasSuffix(ct, "+json"))
}

// checkJSON answers the problem with a JSON body that is syntactically JSON
// but holds invalid UTF-8 or a duplicate object name, or nil. It does not
// allocate for a valid body.
func checkJSON(b []byte) *Problem {
	if jsontext.Value(b).IsValid() {
		return nil
	}
	if len(bytes.TrimSpace(b)) == 0 || !jsontext.Value(b).IsValid(jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)) {
		return nil // not JSON at all: huma says why
	}
	dec := jsontext.NewDecoder(bytes.NewReader(b))
	_, err := dec.ReadValue()
	var se *jsontext.SyntacticError
	if !errors.As(err, &se) {
		return nil
	}
	var p tokend.Problems
	if errors.Is(err, jsontext.ErrDuplicateName) {
		p.Add(fieldOfPointer(se.JSONPointer), "is given more than once (duplicate name in a JSON object)")
	} else {
		p.Add(fieldOfPointer(se.JSONPointer), "holds invalid UTF-8")
	}
	return problemFrom(p.Err())
}

// fieldOfPointer writes a JSON pointer (/rate_limit/limit, /allowed_ips/0)
// as the API's field names do (rate_limit.limit, allowed_ips[0]; [0].token
// in a body that is an array).
func fieldOfPointer(ptr jsontext.Pointer) string {
	var b strings.Builder
	for tok := range ptr.Tokens() {
		if _, err := strconv.Atoi(tok); err == nil {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}
