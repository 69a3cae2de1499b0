package httpapi

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"

	"github.com/danielgtaylor/huma/v2"
)

// Routes served plainly, not as huma operations (POST /v1/verify for speed,
// POST /v1/leaks/github to check a signature on the raw body first), are
// documented by documentPlain and answer through writeJSON and writeProblem.

// documentPlain adds op to the OpenAPI document: its JSON request body of
// type req, its 200 answer of type resp, and a problem for each of its
// errors and for 500.
func documentPlain(api huma.API, op *huma.Operation, req reflect.Type, reqName string, resp reflect.Type, respName string) {
	reg := api.OpenAPI().Components.Schemas
	op.RequestBody = &huma.RequestBody{Required: true, Content: map[string]*huma.MediaType{
		"application/json": {Schema: reg.Schema(req, true, reqName)},
	}}
	op.Responses = map[string]*huma.Response{strconv.Itoa(op.DefaultStatus): {Description: http.StatusText(op.DefaultStatus),
		Content: map[string]*huma.MediaType{"application/json": {Schema: reg.Schema(resp, true, respName)}}}}
	problem := reg.Schema(reflect.TypeFor[Problem](), true, "Problem")
	for _, code := range append(op.Errors, http.StatusInternalServerError) {
		op.Responses[strconv.Itoa(code)] = &huma.Response{Description: http.StatusText(code),
			Content: map[string]*huma.MediaType{"application/problem+json": {Schema: problem}}}
	}
	api.OpenAPI().AddOperation(op)
}

// writeJSON answers 200 with v, as huma's JSON format writes it.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}
