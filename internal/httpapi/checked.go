package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"reflect"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/manage"
)

// checked is the body of a create or edit operation, which the operation
// validates itself rather than huma: huma's schema validation answers
// before the handler runs, so that a missing required field (or one of the
// wrong type) hid every problem only the service finds (an unknown access,
// a bad IP range). The handler validates the body against the same schema,
// decodes the members the schema accepts, and hands the schema's problems
// to the service (manage.WithProblems), which adds its own: one 422 names
// every invalid field. The OpenAPI document describes T, as for any body.
type checked[T any] struct{ raw []byte }

func (c *checked[T]) setRaw(b []byte) { c.raw = b }

// Schema makes the document describe the body as T.
func (*checked[T]) Schema(r huma.Registry) *huma.Schema {
	return r.Schema(reflect.TypeFor[T](), true, "")
}

// rawBody is what the JSON format hands the raw body to instead of decoding.
type rawBody interface{ setRaw([]byte) }

// withRawBodies answers formats whose JSON decoding hands a checked body
// its bytes as they came: the operation decodes them itself.
func withRawBodies(formats map[string]huma.Format) map[string]huma.Format {
	out := maps.Clone(formats)
	for ct, f := range out {
		unmarshal := f.Unmarshal
		f.Unmarshal = func(data []byte, v any) error {
			if r, ok := v.(rawBody); ok {
				r.setRaw(data)
				return nil
			}
			return unmarshal(data, v)
		}
		out[ct] = f
	}
	return out
}

// checkBody is an operation whose body is checked: huma does not validate
// it, the handler does (decodeChecked).
func checkBody(o huma.Operation) huma.Operation { o.SkipValidateBody = true; return o }

// decodeChecked validates body against T's schema and decodes it. It
// answers the body's members that the schema accepts, in T, and a context
// that carries the schema's problems for the service (manage.WithProblems);
// an error only for a body that is no JSON (400).
func decodeChecked[T any](ctx context.Context, api huma.API, body checked[T]) (T, context.Context, tokend.Problems, error) {
	var v T
	var parsed any
	if err := json.Unmarshal(body.raw, &parsed); err != nil {
		return v, ctx, nil, newProblem(http.StatusBadRequest, "validation failed", &huma.ErrorDetail{Location: "body", Message: err.Error()})
	}
	reg := api.OpenAPI().Components.Schemas
	pb := huma.NewPathBuffer([]byte{}, 0)
	pb.Push("body")
	res := &huma.ValidateResult{}
	huma.Validate(reg, reg.Schema(reflect.TypeFor[T](), true, ""), pb, huma.ModeWriteToServer, parsed, res)
	var probs tokend.Problems
	refused := map[string]bool{} // top-level members the schema refuses
	for _, err := range res.Errors {
		var d *huma.ErrorDetail
		if !errors.As(err, &d) {
			probs.Add("", "%s", err.Error())
			continue
		}
		probs = append(probs, fieldError(d))
		if member, ok := strings.CutPrefix(d.Location, "body."); ok {
			member, _, _ = strings.Cut(member, ".")
			member, _, _ = strings.Cut(member, "[")
			refused[member] = true
		}
	}
	obj, isObject := parsed.(map[string]any)
	if !isObject {
		return v, manage.WithProblems(ctx, probs), probs, nil
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(body.raw, &members); err != nil {
		return v, ctx, nil, newProblem(http.StatusBadRequest, "validation failed", &huma.ErrorDetail{Location: "body", Message: err.Error()})
	}
	for k := range obj {
		if refused[k] {
			delete(members, k)
		}
	}
	accepted, err := json.Marshal(members)
	if err == nil {
		err = json.Unmarshal(accepted, &v)
	}
	if err != nil && len(probs) == 0 {
		// The schema took what Go cannot decode: still a field problem.
		probs.Add("", "%s", err.Error())
	}
	return v, manage.WithProblems(ctx, probs), probs, nil
}

// withBodyProblems answers what the service answered for a checked body:
// its VALIDATION_FAILED (which started from the schema's problems) with
// each field the schema named once, in the schema's words; any other
// answer as it is (a 403 or 404 comes before what the body holds). The
// service never writes a body with problems: should it answer success,
// the schema's problems are answered all the same.
func withBodyProblems(probs tokend.Problems, err error) error {
	if len(probs) == 0 {
		return err
	}
	var te *tokend.Error
	if err != nil && (!errors.As(err, &te) || te.Code != tokend.ECodeInvalid) {
		return err
	}
	named := map[string]bool{}
	for _, f := range probs {
		named[f.Field] = true
	}
	out := probs
	if te != nil {
		for _, f := range te.Fields {
			if !named[f.Field] {
				out = append(out, f)
			}
		}
	}
	return out.Err()
}
