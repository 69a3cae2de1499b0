// Package verifyfloor is the yardstick for POST /v1/verify: the least any
// verifier must do for one request, on bare net/http. bench/floor serves it
// over TCP for bench/verify.sh; BenchmarkVerifyHTTPFloor in internal/httpapi
// runs it beside tokend's handler.
package verifyfloor

import (
	"encoding/json"
	"net/http"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/secret"
)

// MaxBodyBytes bounds a request body, as tokend's API does.
const MaxBodyBytes = 64 << 10

// Handler answers POST /v1/verify: it decodes the JSON body, checks the
// secret's checksum, HMAC-SHA256s it with h, looks the digest up in answers
// and encodes what it finds (NOT_FOUND when nothing, MALFORMED for a secret
// whose checksum fails), shaped like tokend's answer.
func Handler(h *secret.Hasher, answers map[[32]byte]*tokend.VerifyResult) http.Handler {
	notFound := &tokend.VerifyResult{Code: tokend.CodeNotFound}
	malformed := &tokend.VerifyResult{Code: tokend.CodeMalformed}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/verify", func(w http.ResponseWriter, r *http.Request) {
		var req tokend.VerifyRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes)).Decode(&req); err != nil {
			http.Error(w, "unreadable body", http.StatusBadRequest)
			return
		}
		res := notFound
		if _, ok := secret.Check(req.Token); !ok {
			res = malformed
		} else if a, ok := answers[h.Sum(req.Token)]; ok {
			res = a
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(res)
	})
	return mux
}
