package main

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

// rotateNow rotates a token without grace and answers the new secret.
func (in *instance) rotateNow(t *testing.T, admin, id string) string {
	t.Helper()
	var c created
	in.mustCall(t, 200, "POST", "/v1/tokens/"+id+"/rotate", admin, nil, &c)
	return c.Secret
}

// verifyUA asks /v1/verify with a user_agent in the body.
func (in *instance) verifyUA(t *testing.T, sec, ip, ua string) tokend.Code {
	t.Helper()
	var res tokend.VerifyResult
	in.mustCall(t, 200, "POST", "/v1/verify", "", tokend.VerifyRequest{Token: sec, IP: ip, UserAgent: ua}, &res)
	return res.Code
}

// forwardAuth asks GET /v1/auth with a User-Agent header.
func (in *instance) forwardAuth(t *testing.T, sec, ua string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", in.url+"/v1/auth", nil)
	req.Header.Set("Authorization", "Bearer "+sec)
	req.Header.Set("User-Agent", ua)
	req.Header.Set("X-Forwarded-For", "198.51.100.77")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var p struct {
		Reason string `json:"reason"`
	}
	json.NewDecoder(res.Body).Decode(&p)
	return res.StatusCode, p.Reason
}

// events answers the token's events of one type, newest first, waiting up
// to 10s for at least want of them.
func (in *instance) events(t *testing.T, admin, tokenID, typ string, want int) []tokend.Notification {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var page tokend.Page[tokend.Notification]
		in.mustCall(t, 200, "GET", "/v1/events?token_id="+tokenID+"&type="+typ, admin, nil, &page)
		if len(page.Items) >= want || time.Now().After(deadline) {
			return page.Items
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A secret replaced by rotation answers ROTATED at both doors, raises
// token.rotated_secret_used with the client's address and user agent, and
// leaves the new secret working.
func TestRotatedSecretE2E(t *testing.T) {
	bin := buildTokend(t)
	in := startProcess(t, bin, nil, "--data-dir", t.TempDir(), "--trusted-proxies", "127.0.0.1/32")
	admin := in.bootstrap
	app := in.newApp(t, admin, "shop")
	tok := in.newToken(t, admin, app.ID, "ci")
	newSec := in.rotateNow(t, admin, tok.Token.ID)

	if c := in.verifyUA(t, tok.Secret, "203.0.113.9", "deploy-script/1.0"); c != tokend.CodeRotated {
		t.Fatalf("old secret at /v1/verify: %s, want ROTATED", c)
	}
	if status, reason := in.forwardAuth(t, tok.Secret, "curl/8.5.0"); status != 401 || reason != string(tokend.CodeRotated) {
		t.Fatalf("old secret at /v1/auth: %d %q, want 401 ROTATED", status, reason)
	}
	if c := in.verifyUA(t, newSec, "203.0.113.9", "deploy-script/1.0"); c != tokend.CodeValid {
		t.Fatalf("new secret: %s, want VALID", c)
	}
	evs := in.events(t, admin, tok.Token.ID, tokend.EventTokenRotatedSecretUsed, 1)
	if len(evs) != 1 {
		t.Fatalf("token.rotated_secret_used events = %d, want 1 (one per token per hour)", len(evs))
	}
	d := evs[0].Data
	if d["ip"] != "203.0.113.9" || d["user_agent"] != "deploy-script/1.0" || d["endpoint"] != tokend.EndpointVerify ||
		d["grace_until"] == nil || d["policy"] != "notify" {
		t.Errorf("event data = %v", d)
	}
	// At forward auth, the client's User-Agent header and the address the
	// trusted proxy names.
	tok2 := in.newToken(t, admin, app.ID, "proxy")
	in.rotateNow(t, admin, tok2.Token.ID)
	if status, reason := in.forwardAuth(t, tok2.Secret, "curl/8.5.0"); status != 401 || reason != string(tokend.CodeRotated) {
		t.Fatalf("second token's old secret at /v1/auth: %d %q, want 401 ROTATED", status, reason)
	}
	evs = in.events(t, admin, tok2.Token.ID, tokend.EventTokenRotatedSecretUsed, 1)
	if len(evs) != 1 || evs[0].Data["user_agent"] != "curl/8.5.0" || evs[0].Data["endpoint"] != tokend.EndpointForwardAuth ||
		evs[0].Data["ip"] != "198.51.100.77" {
		t.Errorf("forward auth's events = %+v", evs)
	}
	var got tokend.Token
	in.mustCall(t, 200, "GET", "/v1/tokens/"+tok.Token.ID, admin, nil, &got)
	if got.Status != tokend.StatusActive {
		t.Errorf("with the policy notify the token is %s, want active", got.Status)
	}
}

// With the app's policy disable, the token is disabled: its new secret
// answers DISABLED, token.disabled is raised and audited, and all of it
// survives kill -9 right after.
func TestRotatedSecretPolicyDisableE2E(t *testing.T) {
	bin := buildTokend(t)
	dir := t.TempDir()
	in := startProcess(t, bin, nil, "--data-dir", dir, "--flush-interval", "1h")
	admin := in.bootstrap
	var app tokend.App
	in.mustCall(t, 201, "POST", "/v1/apps", admin, tokend.AppInput{Name: "strict", RotatedSecretPolicy: tokend.RotatedDisable}, &app)
	tok := in.newToken(t, admin, app.ID, "ci")
	newSec := in.rotateNow(t, admin, tok.Token.ID)

	if c := in.verifyUA(t, tok.Secret, "203.0.113.10", "stolen/1"); c != tokend.CodeRotated {
		t.Fatalf("old secret: %s, want ROTATED", c)
	}
	// The flush interval is an hour: only the prompt disable can do this.
	deadline := time.Now().Add(10 * time.Second)
	for in.verifyCode(t, newSec) != tokend.CodeDisabled {
		if time.Now().After(deadline) {
			t.Fatal("the token was not disabled within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	in.kill()

	b := startProcess(t, bin, nil, "--data-dir", dir)
	if c := b.verifyCode(t, newSec); c != tokend.CodeDisabled {
		t.Fatalf("after kill -9: new secret %s, want DISABLED", c)
	}
	for _, typ := range []string{tokend.EventTokenDisabled, tokend.EventTokenRotatedSecretUsed} {
		if evs := b.events(t, admin, tok.Token.ID, typ, 1); len(evs) != 1 {
			t.Errorf("%s events after kill -9 = %d, want 1", typ, len(evs))
		}
	}
	var audit tokend.Page[tokend.Event]
	b.mustCall(t, 200, "GET", "/v1/audit?token_id="+tok.Token.ID+"&action="+tokend.ActionTokenDisable, admin, nil, &audit)
	if len(audit.Items) != 1 || audit.Items[0].Details["reason"] != "rotated_secret_used" {
		t.Errorf("audit rows of the disable = %+v", audit.Items)
	}
}

// Past the retention, a rotated-out secret is forgotten: it answers
// NOT_FOUND.
func TestRotatedSecretRetentionE2E(t *testing.T) {
	bin := buildTokend(t)
	in := startProcess(t, bin, nil, "--data-dir", t.TempDir(),
		"--rotated-secret-retention", "1s", "--rotated-secret-sweep", "50ms", "--cache-ttl", "100ms")
	admin := in.bootstrap
	app := in.newApp(t, admin, "shop")
	tok := in.newToken(t, admin, app.ID, "ci")
	newSec := in.rotateNow(t, admin, tok.Token.ID)
	if c := in.verifyCode(t, tok.Secret); c != tokend.CodeRotated {
		t.Fatalf("old secret at once: %s, want ROTATED", c)
	}
	deadline := time.Now().Add(15 * time.Second)
	for in.verifyCode(t, tok.Secret) != tokend.CodeNotFound {
		if time.Now().After(deadline) {
			t.Fatal("the old secret was not forgotten within 15s of a 1s retention")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if c := in.verifyCode(t, newSec); c != tokend.CodeValid {
		t.Errorf("new secret: %s, want VALID", c)
	}
}
