package httpapi

import (
	"net/http"
	"slices"
	"strconv"

	"github.com/danielgtaylor/huma/v2"

	"github.com/tokend/tokend"
)

// finishDocument completes the OpenAPI document once every operation is
// registered: the closed sets of the problem document's codes, from the
// lists the code draws them from, and each operation's error answers cut
// to those it can give.
func finishDocument(api huma.API) {
	doc := api.OpenAPI()
	if p := doc.Components.Schemas.Map()["Problem"]; p != nil {
		if s := p.Properties["code"]; s != nil {
			s.Enum = nil
			for _, c := range tokend.ErrorCodes {
				s.Enum = append(s.Enum, string(c))
			}
		}
		if s := p.Properties["reason"]; s != nil {
			s.Enum = nil
			for _, c := range tokend.Codes {
				if c != tokend.CodeValid {
					s.Enum = append(s.Enum, string(c))
				}
			}
		}
	}
	for _, item := range doc.Paths {
		for _, op := range []*huma.Operation{item.Get, item.Post, item.Put, item.Patch, item.Delete} {
			if op != nil && op.RequestBody == nil {
				// No body: nothing to be malformed, too large or of
				// another type.
				for _, s := range []int{http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType} {
					delete(op.Responses, strconv.Itoa(s))
				}
				op.Errors = slices.DeleteFunc(op.Errors, func(s int) bool {
					return s == http.StatusBadRequest || s == http.StatusRequestEntityTooLarge || s == http.StatusUnsupportedMediaType
				})
			}
		}
	}
}
