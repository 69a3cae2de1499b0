package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"

	"github.com/danielgtaylor/huma/v2"
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/github"
	"github.com/tokend/tokend/internal/manage"
)

// GitHubKeys checks the signature of a report from GitHub's secret
// scanning (internal/github's Keys).
type GitHubKeys interface {
	Verify(keyID, signature string, body []byte) error
}

// githubSecurity names the two headers that together authenticate a
// report: GitHub's key and its signature of the body.
var githubSecurity = map[string]*huma.SecurityScheme{
	"github-key-id": {Type: "apiKey", In: "header", Name: github.HeaderKeyID,
		Description: "The identifier of the GitHub secret scanning key that signed the report (GitHub's published key list, --github-scanning-keys)."},
	"github-signature": {Type: "apiKey", In: "header", Name: github.HeaderSignature,
		Description: "Base64 of the ECDSA P-256 signature (ASN.1 DER) over SHA-256 of the raw request body, by that key."},
}

// registerGitHubLeaks serves POST /v1/leaks/github, the endpoint of
// GitHub's secret scanning partner program. It takes no admin token: the
// signature is the authentication, checked on the raw body before the body
// is decoded or anything is looked up. It is served plainly, not as a huma
// operation: huma (and strictJSON) would read and judge the body before
// the signature is checked.
func registerGitHubLeaks(api huma.API, mux *http.ServeMux, log *slog.Logger, op huma.Operation, svc *manage.Service, keys GitHubKeys) {
	op.Security = []map[string][]string{{"github-key-id": {}, "github-signature": {}}}
	op.Errors = []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge,
		http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity, http.StatusServiceUnavailable}
	for name, s := range githubSecurity {
		api.OpenAPI().Components.SecuritySchemes[name] = s
	}
	documentPlain(api, &op, reflect.TypeFor[[]tokend.GitHubMatch](), "GitHubReport",
		reflect.TypeFor[[]tokend.GitHubLabel](), "GitHubFeedback")

	mux.HandleFunc(op.Method+" "+op.Path, func(w http.ResponseWriter, r *http.Request) {
		labels, err := githubReport(r, svc, keys)
		if err == nil {
			log.InfoContext(r.Context(), "github secret scanning report applied", "matches", len(labels))
			writeJSON(w, labels)
			return
		}
		p := problemFrom(err)
		switch {
		case p.Status >= 500:
			log.ErrorContext(r.Context(), "request failed", "operation", op.OperationID, "code", p.Code, "err", p.cause)
		case p.Status == http.StatusUnauthorized:
			log.WarnContext(r.Context(), "github secret scanning report refused", "reason", p.Detail)
		}
		writeProblem(api, w, r, p)
	})
}

// githubReport authenticates, reads and applies a report.
func githubReport(r *http.Request, svc *manage.Service, keys GitHubKeys) ([]tokend.GitHubLabel, error) {
	keyID, sig := r.Header.Get(github.HeaderKeyID), r.Header.Get(github.HeaderSignature)
	if keyID == "" || sig == "" {
		return nil, githubRefusal(github.ErrUnsigned) // the body is not even read
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, tokend.MaxGitHubReportBytes+1))
	switch {
	case err != nil:
		return nil, newProblem(http.StatusBadRequest, "cannot read the request body")
	case len(body) > tokend.MaxGitHubReportBytes:
		return nil, newProblem(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is too large limit=%d bytes", tokend.MaxGitHubReportBytes))
	}
	if err := keys.Verify(keyID, sig, body); err != nil {
		return nil, githubRefusal(err)
	}
	if ct := r.Header.Get("Content-Type"); !isJSON(ct) {
		return nil, newProblem(http.StatusUnsupportedMediaType, "unknown content type: "+ct)
	}
	matches, err := decodeGitHubReport(body)
	if err != nil {
		return nil, err
	}
	return svc.ReportGitHubLeaks(r.Context(), RemoteIP(r), matches)
}

func githubRefusal(err error) *Problem {
	return &Problem{Type: "about:blank", Status: http.StatusUnauthorized, Title: http.StatusText(http.StatusUnauthorized),
		Code: tokend.ECodeUnauthenticated, Detail: err.Error()}
}

// githubEntry is a match as read before its fields are judged: each is
// kept raw, so that a field of another type spoils no other match.
type githubEntry struct {
	Token  jsontext.Value `json:"token"`
	Type   jsontext.Value `json:"type"`
	URL    jsontext.Value `json:"url"`
	Source jsontext.Value `json:"source"`
}

// decodeGitHubReport decodes a signed body: a JSON array of objects (400
// for a body that is not JSON, 422 for one that is not an array of objects
// or holds a name twice in an object). Within a match nothing refuses the
// report: a field that is not a string is read as empty, and invalid UTF-8
// in a string becomes U+FFFD (manage judges what is left). Names are
// spelled exactly; members GitHub may add later are ignored.
func decodeGitHubReport(body []byte) ([]tokend.GitHubMatch, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, newProblem(http.StatusBadRequest, "request body is required")
	}
	var entries []*githubEntry
	err := json.Unmarshal(body, &entries, jsontext.AllowInvalidUTF8(true))
	var se *json.SemanticError
	switch {
	case errors.As(err, &se) && !errors.As(err, new(*jsontext.SyntacticError)):
		var p tokend.Problems
		if se.JSONPointer == "" {
			p.Add("", "expected an array of matches")
		} else {
			p.Add(fieldOfPointer(se.JSONPointer), "must be an object (a match)")
		}
		return nil, p.Err()
	case err != nil:
		return nil, syntaxProblem(body, err)
	}
	matches := make([]tokend.GitHubMatch, len(entries))
	for i, e := range entries {
		if e == nil { // null
			var p tokend.Problems
			p.Add(fmt.Sprintf("[%d]", i), "must be an object (a match)")
			return nil, p.Err()
		}
		matches[i] = tokend.GitHubMatch{Token: githubString(e.Token), Type: githubString(e.Type),
			URL: githubString(e.URL), Source: githubString(e.Source)}
	}
	return matches, nil
}

// githubString answers a member that is a JSON string, "" for any other.
func githubString(v jsontext.Value) string {
	var s string
	if v.Kind() == '"' {
		json.Unmarshal(v, &s, jsontext.AllowInvalidUTF8(true)) // a string the decoder read whole: cannot fail
	}
	return s
}
