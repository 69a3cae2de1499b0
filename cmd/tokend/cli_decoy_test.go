package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/secret"
)

// TestDecoyEndToEnd: a decoy made with `tokend token create --decoy` looks
// like a token of its app; presented at /v1/verify it gets exactly the
// answer of an unknown secret of that app, and raises token.decoy_used
// (with the client address, user agent and endpoint) in GET /v1/events;
// `token list` leaves it out, `token list --decoy` shows it alone.
func TestDecoyEndToEnd(t *testing.T) {
	in := startTokend(t, t.TempDir(), nil)
	cmd := cliOf(t, in)
	var app tokend.App
	json.Unmarshal([]byte(cmd("app", "create", "--name", "shop", "--prefix", "shop", "--json")), &app)
	var real, decoy createdToken
	json.Unmarshal([]byte(cmd("token", "create", "--app", app.ID, "--name", "ci", "--json")), &real)
	json.Unmarshal([]byte(cmd("token", "create", "--app", app.ID, "--name", "aws-backup", "--decoy", "--json")), &decoy)
	if !decoy.Token.Decoy || !strings.HasPrefix(decoy.Secret, "shop_") || !strings.HasPrefix(decoy.Token.Masked, "shop_…") {
		t.Fatalf("decoy = %+v", decoy)
	}
	if out := cmd("token", "create", "--app", app.ID, "--name", "bait 2", "--decoy"); !strings.Contains(out, "Created decoy token") {
		t.Errorf("token create --decoy says:\n%s", out)
	}

	post := func(sec string) (int, http.Header, []byte) {
		t.Helper()
		b, _ := json.Marshal(tokend.VerifyRequest{Token: sec, IP: "203.0.113.50", UserAgent: "aws-cli/2.15.0"})
		res, err := http.Post(in.url+"/v1/verify", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		res.Header.Del("Date")
		return res.StatusCode, res.Header, body
	}
	unknown, _ := secret.Generate("shop")
	ds, dh, db := post(decoy.Secret)
	us, uh, ub := post(unknown.Reveal())
	if ds != us || string(db) != string(ub) || !equalHeaders(dh, uh) {
		t.Errorf("decoy and unknown told apart:\n%d %v %s\n%d %v %s", ds, dh, db, us, uh, ub)
	}
	var res tokend.VerifyResult
	json.Unmarshal(db, &res)
	if ds != http.StatusOK || res.Code != tokend.CodeNotFound || res.Valid {
		t.Errorf("decoy answered %d %s", ds, db)
	}

	// The event reaches storage with the next flush.
	ev := decoyEvent(t, in, cmd, decoy.Token.ID, nil)
	if d := ev.Data; d["ip"] != "203.0.113.50" || d["user_agent"] != "aws-cli/2.15.0" || d["endpoint"] != tokend.EndpointVerify ||
		d["masked"] != decoy.Token.Masked || d["peer"] != "127.0.0.1" {
		t.Errorf("token.decoy_used data = %v", d)
	}

	list := cmd("token", "list", "--app", app.ID)
	if !strings.Contains(list, real.Token.ID) || strings.Contains(list, decoy.Token.ID) {
		t.Errorf("token list shows a decoy, or not the real token:\n%s", list)
	}
	list = cmd("token", "list", "--app", app.ID, "--decoy")
	if strings.Contains(list, real.Token.ID) || !strings.Contains(list, decoy.Token.ID) {
		t.Errorf("token list --decoy:\n%s", list)
	}
	if out := cmd("token", "get", decoy.Token.ID); !strings.Contains(out, "decoy") {
		t.Errorf("token get does not say it is a decoy:\n%s", out)
	}
	for where, text := range map[string]string{"logs": in.stderr.String() + in.stdout.String()} {
		if strings.Contains(text, decoy.Secret) {
			t.Errorf("the %s hold the decoy's secret", where)
		}
	}
}

func equalHeaders(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if strings.Join(v, "\n") != strings.Join(b[k], "\n") {
			return false
		}
	}
	return true
}

// createdToken is what `token create --json` prints.
type createdToken struct {
	Token  tokend.Token `json:"token"`
	Secret string       `json:"secret"`
}

// cliOf answers a runner of the CLI against in, as its bootstrap owner: it
// answers stdout and stderr, and fails the test on an error.
func cliOf(t *testing.T, in *instance) func(args ...string) string {
	vars := map[string]string{"TOKEND_URL": in.url, "TOKEND_TOKEN": in.bootstrap}
	return func(args ...string) string {
		t.Helper()
		var out, errOut strings.Builder
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := run(ctx, args, func(k string) string { return vars[k] }, strings.NewReader(""), &out, &errOut); err != nil {
			t.Fatalf("tokend %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut.String())
		}
		return out.String() + errOut.String()
	}
}

// decoyEvent waits (10s at most) for the first token.decoy_used of the
// decoy id, calling again (when not nil) before each look.
func decoyEvent(t *testing.T, in *instance, cmd func(args ...string) string, id string, again func()) tokend.Notification {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if again != nil {
			again()
		}
		var page tokend.Page[tokend.Notification]
		json.Unmarshal([]byte(cmd("events", "--type", tokend.EventTokenDecoyUsed, "--token-id", id, "--json")), &page)
		if len(page.Items) > 0 {
			return page.Items[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no token.decoy_used event within 10s; log:\n%s", in.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDecoyPresentedByAThrottledPeer is the review's 6-decoy-throttled.sh:
// a client past the failure throttle (here 5 failures a minute) sprays
// secrets, a decoy among them that was never presented before. It gets
// the answer of any other secret (RATE_LIMITED, client_throttled), and the
// decoy raises token.decoy_used naming it.
func TestDecoyPresentedByAThrottledPeer(t *testing.T) {
	in := startTokend(t, t.TempDir(), nil, "--failure-limit", "5")
	cmd := cliOf(t, in)
	var app tokend.App
	json.Unmarshal([]byte(cmd("app", "create", "--name", "thr", "--prefix", "thr", "--json")), &app)
	var decoy createdToken
	json.Unmarshal([]byte(cmd("token", "create", "--app", app.ID, "--name", "thr decoy", "--decoy", "--json")), &decoy)
	if !decoy.Token.Decoy {
		t.Fatalf("decoy = %+v", decoy.Token)
	}

	// The sprayer: its own loopback address, as the script's curl --interface.
	client := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 77)},
	}).DialContext}}
	post := func(sec string) (int, []byte) {
		t.Helper()
		b, _ := json.Marshal(tokend.VerifyRequest{Token: sec, UserAgent: "spray/1.0"})
		res, err := client.Post(in.url+"/v1/verify", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, body
	}
	unknown := func() string { s, _ := secret.Generate("thr"); return s.Reveal() }
	for range 5 {
		post(unknown())
	}
	_, blocked := post(unknown())
	var res tokend.VerifyResult
	json.Unmarshal(blocked, &res)
	if res.Code != tokend.CodeRateLimited || res.Reason != "client_throttled" {
		t.Fatalf("after 5 failures: %s", blocked)
	}
	// The decoy is presented until its event shows (the engine reads the
	// decoys a second after the creation told it to); every answer is
	// the blocked client's for any secret (but for its seconds to wait).
	ev := decoyEvent(t, in, cmd, decoy.Token.ID, func() {
		status, body := post(decoy.Secret)
		_, want := post(unknown())
		var got, other tokend.VerifyResult
		json.Unmarshal(body, &got)
		json.Unmarshal(want, &other)
		if status != http.StatusOK || got.Code != other.Code || got.Reason != other.Reason || got.Valid || got.Token != nil {
			t.Fatalf("the throttled client's decoy got %d %s, an unknown secret %s", status, body, want)
		}
	})
	if d := ev.Data; d["peer"] != "127.0.0.77" || d["user_agent"] != "spray/1.0" || d["endpoint"] != tokend.EndpointVerify {
		t.Errorf("token.decoy_used data = %v", d)
	}
}
