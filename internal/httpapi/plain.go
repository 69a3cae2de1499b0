package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"sync"

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

// jsonWriter is the reusable state of writeJSON: the answer is encoded
// into buf and handed to the connection in one Write.
type jsonWriter struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var jsonWriters = sync.Pool{New: func() any {
	jw := new(jsonWriter)
	jw.enc = json.NewEncoder(&jw.buf)
	jw.enc.SetEscapeHTML(false)
	return jw
}}

// writeJSON answers 200 with v, as huma's JSON format writes it.
func writeJSON(w http.ResponseWriter, v any) {
	jw := jsonWriters.Get().(*jsonWriter)
	jw.buf.Reset()
	jw.enc.Encode(v)
	w.Header()["Content-Type"] = headerJSON
	w.WriteHeader(http.StatusOK)
	w.Write(jw.buf.Bytes())
	if jw.buf.Cap() <= 16<<10 {
		jsonWriters.Put(jw)
	}
}
