package httpapi_test

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/secret"
)

// sameAnswer fails unless two answers are identical but for their Date.
func sameAnswer(t *testing.T, what string, decoy, unknown resp) {
	t.Helper()
	dh, uh := decoy.header.Clone(), unknown.header.Clone()
	dh.Del("Date")
	uh.Del("Date")
	if decoy.status != unknown.status || !reflect.DeepEqual(dh, uh) || string(decoy.body) != string(unknown.body) {
		t.Errorf("%s: a decoy and an unknown secret are told apart:\ndecoy   %d %v %s\nunknown %d %v %s",
			what, decoy.status, dh, decoy.body, unknown.status, uh, unknown.body)
	}
}

// TestDecoyIsAnsweredAsAnUnknownSecret creates a decoy of a product app and
// one of the system app, and compares every answer they get with the answer
// an unknown, well-formed secret of the same app gets: at /v1/verify, at
// /v1/auth, and as the management API's bearer token. Then it reads the
// events they raised.
func TestDecoyIsAnsweredAsAnUnknownSecret(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			h := newHarness(t, st.opts)
			app := h.createApp(tokend.AppInput{Name: "acme", TokenPrefix: "acme", Permissions: []string{"orders:read"}})
			tok, sec := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "planted in CI", Decoy: true})
			if !tok.Decoy || !strings.HasPrefix(sec, "acme_") || !strings.HasPrefix(tok.Masked, "acme_…") || tok.Masked[len(tok.Masked)-4:] != sec[len(sec)-4:] {
				t.Fatalf("decoy = %+v, secret %q: want a token like any of its app", tok, sec)
			}
			if _, ok := secret.Check(sec); !ok {
				t.Fatal("a decoy's secret does not pass the checksum")
			}
			unknown, _ := secret.Generate("acme")
			ua := []string{"User-Agent", "curl/8.5.0"}
			for _, body := range []string{
				`{"token":%q,"ip":"192.0.2.9","user_agent":"curl/8.5.0","permissions":["orders:read"]}`,
				`{"token":%q}`,
			} {
				sameAnswer(t, "POST /v1/verify", h.do("POST", "/v1/verify", "", fmtJSON(body, sec), ua...),
					h.do("POST", "/v1/verify", "", fmtJSON(body, unknown.Reveal()), ua...))
			}
			for _, path := range []string{"/v1/auth", "/v1/auth?permission=orders:read"} {
				sameAnswer(t, "GET "+path, h.do("GET", path, sec, nil, ua...), h.do("GET", path, unknown.Reveal(), nil, ua...))
			}
			if res := h.verify(tokend.VerifyRequest{Token: sec}); res.Code != tokend.CodeNotFound || res.Valid || res.Token != nil || res.RateLimit != nil {
				t.Errorf("decoy verified as %+v, want NOT_FOUND alone", res)
			}

			// A decoy admin token, the best bait, is refused as an unknown
			// admin token is.
			admin, adminSec := h.createToken(tokend.TokenInput{AppID: tokend.SystemAppID, Name: "root (bait)", Access: tokend.AccessFull, Decoy: true})
			if !admin.Decoy {
				t.Fatalf("admin decoy = %+v", admin)
			}
			unknownAdmin, _ := secret.Generate(strings.SplitN(adminSec, "_", 2)[0])
			for _, path := range []string{"/v1/apps", "/v1/tokens?decoy=true"} {
				sameAnswer(t, "GET "+path, h.do("GET", path, adminSec, nil, ua...), h.do("GET", path, unknownAdmin.Reveal(), nil, ua...))
			}

			if err := h.engine.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			// One event per decoy: the later presentations came from the
			// same peer within 10 minutes.
			evs := h.events(t, tokend.EventTokenDecoyUsed, tok.ID)
			if len(evs) != 1 {
				t.Fatalf("token.decoy_used events of the product decoy = %d, want 1", len(evs))
			}
			d := evs[0].Data
			if d["token_id"] != tok.ID || d["app_id"] != app.ID || d["masked"] != tok.Masked || d["name"] != tok.Name ||
				d["user_agent"] != "curl/8.5.0" || d["endpoint"] != tokend.EndpointVerify || d["peer"] != "127.0.0.1" || d["ip"] != "192.0.2.9" {
				t.Errorf("event data = %v", d)
			}
			evs = h.events(t, tokend.EventTokenDecoyUsed, admin.ID)
			if len(evs) != 1 || evs[0].Data["endpoint"] != tokend.EndpointAdmin || evs[0].Data["user_agent"] != "curl/8.5.0" {
				t.Fatalf("token.decoy_used events of the admin decoy = %+v", evs)
			}
			if strings.Contains(h.logs.String(), sec[5:25]) || strings.Contains(h.logs.String(), adminSec[5:25]) {
				t.Error("a decoy's secret is in the log")
			}
		})
	}
}

func fmtJSON(format, sec string) string { return strings.Replace(format, "%q", `"`+sec+`"`, 1) }

// TestDecoysAreListedApart: GET /v1/tokens leaves decoys out, ?decoy=true
// lists only them; an edit cannot make a decoy of a token or the reverse.
func TestDecoysAreListedApart(t *testing.T) {
	h := newHarness(t)
	app := h.createApp(tokend.AppInput{Name: "acme"})
	real, _ := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "real"})
	decoy, _ := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "bait", Decoy: true})
	list := func(q string) []string {
		t.Helper()
		r := h.do("GET", "/v1/tokens?app_id="+app.ID+q, h.owner, nil)
		if r.status != http.StatusOK {
			t.Fatalf("list: %d %s", r.status, r.body)
		}
		var p tokend.Page[tokend.Token]
		r.json(t, &p)
		var ids []string
		for _, tk := range p.Items {
			ids = append(ids, tk.ID)
		}
		return ids
	}
	if got := list(""); !reflect.DeepEqual(got, []string{real.ID}) {
		t.Errorf("GET /v1/tokens = %v, want only %s", got, real.ID)
	}
	if got := list("&decoy=true"); !reflect.DeepEqual(got, []string{decoy.ID}) {
		t.Errorf("GET /v1/tokens?decoy=true = %v, want only %s", got, decoy.ID)
	}
	if got := list("&decoy=false"); !reflect.DeepEqual(got, []string{real.ID}) {
		t.Errorf("GET /v1/tokens?decoy=false = %v", got)
	}
	if r := h.do("GET", "/v1/tokens?decoy=maybe", h.owner, nil); r.status != http.StatusUnprocessableEntity {
		t.Errorf("decoy=maybe: %d %s", r.status, r.body)
	}
	r := h.do("GET", "/v1/tokens/"+decoy.ID, h.owner, nil)
	var got tokend.Token
	r.json(t, &got)
	if r.status != http.StatusOK || !got.Decoy {
		t.Errorf("GET a decoy: %d %s", r.status, r.body)
	}
	for id, body := range map[string]string{decoy.ID: `{"decoy":false}`, real.ID: `{"decoy":true}`} {
		r := h.do("PATCH", "/v1/tokens/"+id, h.owner, body)
		if r.status < 400 || r.status >= 500 {
			t.Errorf("PATCH %s: %d %s, want a refusal", body, r.status, r.body)
		}
	}
	if got := list("&decoy=true"); !reflect.DeepEqual(got, []string{decoy.ID}) {
		t.Errorf("after the edits, decoys = %v", got)
	}
}

// TestLeakReportOfADecoyOnlyNotifies: a decoy reported leaked stays as it
// is (it must stay planted); the report answers notified and raises
// token.leaked with decoy: true.
func TestLeakReportOfADecoyOnlyNotifies(t *testing.T) {
	h := newHarness(t)
	app := h.createApp(tokend.AppInput{Name: "acme", LeakPolicy: tokend.LeakRevoke})
	decoy, sec := h.createToken(tokend.TokenInput{AppID: app.ID, Name: "bait", Decoy: true})
	res := h.leakReport(t, tokend.LeakReport{Tokens: []string{sec}, Source: "gitleaks"})
	if len(res) != 1 || res[0].Result != tokend.LeakResultNotified || res[0].TokenID != decoy.ID {
		t.Fatalf("results = %+v, want notified", res)
	}
	r := h.do("GET", "/v1/tokens/"+decoy.ID, h.owner, nil)
	var got tokend.Token
	r.json(t, &got)
	if got.Status != tokend.StatusActive || !got.Decoy {
		t.Errorf("decoy after the report: %+v", got)
	}
	evs := h.events(t, tokend.EventTokenLeaked, decoy.ID)
	if len(evs) != 1 || evs[0].Data["decoy"] != true || evs[0].Data["action"] != tokend.LeakResultNotified {
		t.Fatalf("token.leaked = %+v", evs)
	}
	if evs := h.events(t, tokend.EventTokenRevoked, decoy.ID); len(evs) != 0 {
		t.Errorf("a decoy reported leaked raised token.revoked: %+v", evs)
	}
}
