package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
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
	v, undecodable := decodeMembers[T](members)
	probs = append(probs, undecodable...)
	return v, manage.WithProblems(ctx, probs), probs, nil
}

// decodeMembers decodes the members the schema accepted into a T. A member
// that Go still cannot decode (a duration such as "soon", a number beyond
// the field's integer type) is a field problem and is left out: decoding
// the object whole would fail whole, and a patch with its own decoder
// would come out empty, so that one such member hid every problem the
// service finds in the others.
func decodeMembers[T any](members map[string]json.RawMessage) (T, tokend.Problems) {
	var v T
	if b, err := json.Marshal(members); err == nil && json.Unmarshal(b, &v) == nil {
		return v, nil
	}
	var probs tokend.Problems
	for _, k := range slices.Sorted(maps.Keys(members)) {
		if f, bad := memberProblem[T]([]string{k}, members[k]); bad {
			probs = append(probs, f)
			delete(members, k)
		}
	}
	v = *new(T)
	b, err := json.Marshal(members)
	if err == nil {
		err = json.Unmarshal(b, &v)
	}
	if err != nil {
		// Every member decodes alone but not together: still a problem
		// of the body, never a success.
		probs.Add("", "%s", decodeMessage(err))
	}
	return v, probs
}

// memberProblem answers the problem of the member at path, holding raw,
// decoded alone into a T; inside an object it names the innermost member
// at fault ("rate_limit.window", not "rate_limit").
func memberProblem[T any](path []string, raw json.RawMessage) (tokend.FieldError, bool) {
	var v T
	err := json.Unmarshal(nested(path, raw), &v)
	if err == nil {
		return tokend.FieldError{}, false
	}
	var sub map[string]json.RawMessage
	if json.Unmarshal(raw, &sub) == nil {
		for _, k := range slices.Sorted(maps.Keys(sub)) {
			if f, bad := memberProblem[T](append(slices.Clip(path), k), sub[k]); bad {
				return f, true
			}
		}
	}
	return tokend.FieldError{Field: strings.Join(path, "."), Message: decodeMessage(err)}, true
}

// nested answers raw wrapped in one object per name of path:
// {"a":{"b":raw}} for a.b.
func nested(path []string, raw json.RawMessage) []byte {
	var b []byte
	for _, k := range path {
		name, _ := json.Marshal(k)
		b = append(append(append(b, '{'), name...), ':')
	}
	b = append(b, raw...)
	return append(b, bytes.Repeat([]byte{'}'}, len(path))...)
}

// decodeMessage says why a value the schema accepted cannot be decoded,
// in the words of the field problems rather than Go's.
func decodeMessage(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Type != nil {
		switch max := ^uint64(0) >> (64 - te.Type.Bits()); te.Type.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			return fmt.Sprintf("must be a whole number from %d to %d", -int64(max>>1)-1, max>>1)
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			return fmt.Sprintf("must be a whole number from 0 to %d", max)
		}
		return "cannot be " + te.Value
	}
	return strings.TrimPrefix(err.Error(), "json: ")
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
