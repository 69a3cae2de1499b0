package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

// The real server: a token's first network raises nothing, a new /24 raises
// one token.new_network once the usage flush wrote it, another address of
// a known /24 raises nothing (not even after a restart, when the engine has
// forgotten its networks and the store decides), and GET /v1/tokens/{id},
// `tokend token show` and the dashboard's token page list the networks.
func TestNewNetworkEndToEnd(t *testing.T) {
	dir := t.TempDir()
	in := startTokend(t, dir, nil)
	admin := in.bootstrap
	app := in.newApp(t, admin, "Networks shop")
	tok := in.newToken(t, admin, app.ID, "ci")
	id := tok.Token.ID

	verifyFrom := func(in *instance, ip string) {
		t.Helper()
		var res tokend.VerifyResult
		in.mustCall(t, 200, "POST", "/v1/verify", "", tokend.VerifyRequest{Token: tok.Secret, IP: ip}, &res)
		if !res.Valid {
			t.Fatalf("verify from %s: %s", ip, res.Code)
		}
	}
	networks := func(in *instance) []string {
		t.Helper()
		var got tokend.Token
		in.mustCall(t, 200, "GET", "/v1/tokens/"+id, admin, nil, &got)
		var out []string
		for _, n := range got.Networks {
			out = append(out, n.Network)
		}
		return out
	}
	events := func(in *instance) []tokend.Notification {
		t.Helper()
		var page tokend.Page[tokend.Notification]
		in.mustCall(t, 200, "GET", "/v1/events?type=token.new_network&token_id="+id, admin, nil, &page)
		return page.Items
	}

	verifyFrom(in, "203.0.113.7")
	waitFor(t, "the first network to be written", func() bool { return len(networks(in)) == 1 })
	if evs := events(in); len(evs) != 0 {
		t.Errorf("the first use raised %d token.new_network, want none", len(evs))
	}

	verifyFrom(in, "198.51.100.9")
	waitFor(t, "token.new_network", func() bool { return len(events(in)) > 0 })
	ev := events(in)[0]
	prev, _ := ev.Data["previous_networks"].([]any)
	if ev.Data["network"] != "198.51.100.0/24" || ev.Data["ip"] != "198.51.100.9" || ev.Data["name"] != "ci" ||
		ev.Data["masked"] != tok.Token.Masked || len(prev) != 1 || ev.Actor.Type != "system" {
		t.Errorf("token.new_network = %+v", ev)
	}
	if strings.Contains(toJSONString(t, ev), tok.Secret) {
		t.Error("the event holds the secret")
	}

	// The same /24 from another address, then after a restart; a new
	// network behind them shows when their flushes are done.
	verifyFrom(in, "198.51.100.20")
	in.stop()
	in = startTokend(t, dir, nil)
	verifyFrom(in, "198.51.100.20")
	verifyFrom(in, "2001:db8:7:1::5")
	waitFor(t, "the IPv6 network's event", func() bool { return len(events(in)) == 2 })
	if evs := events(in); evs[0].Data["network"] != "2001:db8:7::/48" {
		t.Errorf("events = %+v, want the /48's last", evs)
	}
	want := "[2001:db8:7::/48 198.51.100.0/24 203.0.113.0/24]"
	if got := networks(in); len(got) != 3 || "["+strings.Join(got, " ")+"]" != want {
		t.Errorf("GET /v1/tokens/{id} networks = %v, want %s", got, want)
	}
	// Lists leave them out.
	var page tokend.Page[tokend.Token]
	in.mustCall(t, 200, "GET", "/v1/tokens?app_id="+app.ID, admin, nil, &page)
	if len(page.Items) != 1 || page.Items[0].Networks != nil {
		t.Errorf("token list: %+v, want no networks", page.Items)
	}

	// The CLI shows them.
	var out, errOut strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	vars := map[string]string{"TOKEND_URL": in.url, "TOKEND_TOKEN": admin}
	if err := run(ctx, []string{"token", "show", id}, func(k string) string { return vars[k] }, strings.NewReader(""), &out, &errOut); err != nil {
		t.Fatalf("token show: %v\n%s", err, errOut.String())
	}
	for _, n := range []string{"2001:db8:7::/48", "198.51.100.0/24", "203.0.113.0/24"} {
		if !strings.Contains(out.String(), "network:") || !strings.Contains(out.String(), n+" (first seen ") {
			t.Errorf("token show lacks %s:\n%s", n, out.String())
		}
	}
}

func toJSONString(t *testing.T, v any) string {
	t.Helper()
	var b strings.Builder
	if err := printJSON(&b, v); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// --track-networks=false notes nothing and raises nothing.
func TestTrackNetworksOff(t *testing.T) {
	in := startTokend(t, t.TempDir(), nil, "--track-networks=false")
	admin := in.bootstrap
	app := in.newApp(t, admin, "Untracked")
	tok := in.newToken(t, admin, app.ID, "ci")
	for _, ip := range []string{"203.0.113.7", "198.51.100.9"} {
		in.mustCall(t, 200, "POST", "/v1/verify", "", tokend.VerifyRequest{Token: tok.Secret, IP: ip}, nil)
	}
	// The usage flush that writes the last use would have written the
	// networks too.
	waitFor(t, "the last use", func() bool {
		var got tokend.Token
		in.mustCall(t, 200, "GET", "/v1/tokens/"+tok.Token.ID, admin, nil, &got)
		return got.LastUsedIP == "198.51.100.9"
	})
	var got tokend.Token
	in.mustCall(t, 200, "GET", "/v1/tokens/"+tok.Token.ID, admin, nil, &got)
	if len(got.Networks) != 0 {
		t.Errorf("networks = %+v, want none", got.Networks)
	}
}
