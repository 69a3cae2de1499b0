package web

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/tokend/tokend"
)

// Sealed cookies carry what the browser must bring back on its next request
// but must neither read nor change: the flash message and a new secret on
// its way to the page that shows it once. They are encrypted and
// authenticated with AES-256-GCM under Options.Key, which every instance
// shares (it is derived from the pepper), so any instance can open what
// another sealed. Each kind seals with its own additional data, and the
// secret's also names the session and the token, so a cookie cannot be
// replayed in another session, for another token, or as another kind.
// Sealing alone cannot stop the same cookie being sent twice, so a secret's
// also carries a random id that the page showing it records as used in the
// store (see takeReveal): once means once, across instances.

// sealer encrypts and authenticates small cookie values.
type sealer struct {
	aead cipher.AEAD
}

// newSealer makes a sealer from a 32-byte key; any other length is a wiring
// mistake. A nil key gets a random one, good for a single instance only
// (tests).
func newSealer(key []byte) (*sealer, error) {
	if len(key) == 0 {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
	}
	if len(key) != 32 {
		return nil, errors.New("web: Options.Key must be 32 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

// sealedValue is what a sealed cookie holds: the payload and its own end,
// which the server checks whatever the cookie's Max-Age said.
type sealedValue[T any] struct {
	Exp int64 `json:"e"`
	V   T     `json:"v"`
}

func (s *sealer) seal(ad string, v any, exp time.Time) (string, error) {
	plain, err := json.Marshal(sealedValue[any]{Exp: exp.Unix(), V: v})
	if err != nil {
		return "", err
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte(ad))), nil
}

// open decrypts what seal made with the same additional data, refusing it
// after its end.
func open[T any](s *sealer, ad, value string, now time.Time) (T, bool) {
	var zero T
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(raw) < s.aead.NonceSize()+s.aead.Overhead() {
		return zero, false
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], []byte(ad))
	if err != nil {
		return zero, false
	}
	var sv sealedValue[T]
	if err := json.Unmarshal(plain, &sv); err != nil || now.Unix() >= sv.Exp {
		return zero, false
	}
	return sv.V, true
}

const (
	flashTTL  = time.Minute
	revealTTL = 60 * time.Second
)

// setFlash shows text at the top of the next page the browser gets.
func (s *Server) setFlash(w http.ResponseWriter, kind, text string) {
	v, err := s.auth.seal.seal("flash", flash{Kind: kind, Text: text}, s.now().Add(flashTTL))
	if err != nil {
		s.log.Error("sealing a flash message", "err", err)
		return
	}
	http.SetCookie(w, s.cookie(cookieFlash, v, flashTTL, http.SameSiteLaxMode))
}

// takeFlash answers and clears the pending flash message, if any.
func (s *Server) takeFlash(w http.ResponseWriter, r *http.Request) *flash {
	c, err := r.Cookie(s.cookieName(cookieFlash))
	if err != nil {
		return nil
	}
	http.SetCookie(w, s.clearCookie(cookieFlash))
	f, ok := open[flash](s.auth.seal, "flash", c.Value, s.now())
	if !ok || (f.Kind != "ok" && f.Kind != "error") || f.Text == "" {
		return nil
	}
	return &f
}

type revealed struct {
	// ID names this hand-over; showing it records the id as used in the
	// store, so the secret is shown once even when the cookie is sent again.
	ID     []byte `json:"i"`
	Secret string `json:"s"`
}

// revealIDLen is the length of a hand-over's random id.
const revealIDLen = 16

// revealKeep is how long past a hand-over's end its id stays recorded as
// used: the sweep may run on an instance whose clock is ahead of the one
// that opens the cookie.
const revealKeep = 5 * time.Minute

// revealState is what a token page finds of a hand-over.
type revealState int

const (
	revealNone        revealState = iota // no hand-over for this page
	revealShown                          // the secret, shown now and never again
	revealUsed                           // already shown: the cookie was sent again
	revealUnavailable                    // the store did not answer: not shown, the cookie kept
)

// revealAD binds a handed-over secret to the session and the token.
func revealAD(sessionHash []byte, tokenID string) string {
	return "reveal\x00" + hex.EncodeToString(sessionHash) + "\x00" + tokenID
}

// reveal hands a new secret to the next GET of the token's page, once:
// sealed in a short-lived cookie bound to the session, with a random id
// that the page records as used when it shows the secret. The secret is
// never stored and never logged.
func (s *Server) reveal(w http.ResponseWriter, r *http.Request, tokenID, secret string) {
	sess, ok := currentSession(r.Context())
	if !ok {
		return
	}
	id := make([]byte, revealIDLen)
	_, _ = rand.Read(id) // never fails (crypto/rand panics instead)
	v, err := s.auth.seal.seal(revealAD(sess.IDHash, tokenID), revealed{ID: id, Secret: secret}, s.now().Add(revealTTL))
	if err != nil {
		s.log.Error("sealing a new secret for its page", "token_id", tokenID, "err", err)
		return
	}
	http.SetCookie(w, s.cookie(cookieReveal, v, revealTTL, http.SameSiteStrictMode))
}

// takeReveal answers the secret handed over by reveal for this token,
// once: the first request to record the hand-over's id as used in the
// store, on any instance sharing it, gets revealShown; a request that
// brings the same cookie again gets revealUsed and no secret. Whatever it
// finds is cleared from the browser, except when the store does not answer
// (revealUnavailable, no secret): then a reload may try again.
func (s *Server) takeReveal(w http.ResponseWriter, r *http.Request, tokenID string) (secret string, state revealState) {
	c, err := r.Cookie(s.cookieName(cookieReveal))
	if err != nil {
		return "", revealNone
	}
	sess, ok := currentSession(r.Context())
	if !ok {
		http.SetCookie(w, s.clearCookie(cookieReveal))
		return "", revealNone
	}
	v, ok := open[revealed](s.auth.seal, revealAD(sess.IDHash, tokenID), c.Value, s.now())
	if !ok || v.Secret == "" || len(v.ID) != revealIDLen {
		// Another token's, another session's, expired, or not ours.
		http.SetCookie(w, s.clearCookie(cookieReveal))
		return "", revealNone
	}
	if s.users == nil {
		s.log.Error("no user store: a new secret cannot be shown once", "token_id", tokenID)
		return "", revealUnavailable
	}
	// The cookie opens until revealTTL after now at most; the record
	// outlives it.
	err = s.users.ConsumeReveal(r.Context(), v.ID, s.now().Add(revealTTL+revealKeep))
	switch {
	case err == nil:
		http.SetCookie(w, s.clearCookie(cookieReveal))
		return v.Secret, revealShown
	case errors.Is(err, tokend.ErrConflict):
		http.SetCookie(w, s.clearCookie(cookieReveal))
		return "", revealUsed
	default:
		s.log.Error("recording a new secret as shown", "token_id", tokenID, "err", err)
		return "", revealUnavailable
	}
}
