package main

import (
	"reflect"
	"testing"
)

func TestTokenActivityCLI(t *testing.T) {
	body := `{"items":[{"at":"2026-11-23T09:00:07Z","ip":"203.0.113.9","code":"INSUFFICIENT_PERMISSIONS","method":"POST","path":"/orders/7"},` +
		`{"at":"2026-11-23T09:00:01Z","ip":"2001:db8::7","code":"VALID"}]}`
	a := newFakeAPI(t, map[string]reply{
		"GET /v1/tokens/tok_1/activity": {200, body},
		"GET /v1/tokens/tok_2/activity": {200, `{"items":[]}`},
	})
	r := cli(t, a, nil, nil, "token", "activity", "tok_1")
	if r.err != nil {
		t.Fatal(r.err)
	}
	want := `TIME                     ADDRESS      CODE                      METHOD  PATH
2026-11-23 09:00:07 UTC  203.0.113.9  INSUFFICIENT_PERMISSIONS  POST    /orders/7
2026-11-23 09:00:01 UTC  2001:db8::7  VALID                     -       -
`
	if r.stdout != want {
		t.Errorf("table:\n%s\nwant:\n%s", r.stdout, want)
	}

	r = cli(t, a, nil, nil, "token", "activity", "tok_1", "--json")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !reflect.DeepEqual(canon(t, r.stdout), canon(t, body)) {
		t.Errorf("json:\n%s\nwant:\n%s", r.stdout, body)
	}

	r = cli(t, a, nil, nil, "token", "activity", "tok_2")
	if r.err != nil || r.stdout != "" || r.stderr != "No recent verifications.\n" {
		t.Errorf("empty: err %v, stdout %q, stderr %q", r.err, r.stdout, r.stderr)
	}
	r = cli(t, a, nil, nil, "token", "activity", "tok_2", "--json")
	if r.err != nil || !reflect.DeepEqual(canon(t, r.stdout), canon(t, `{"items":[]}`)) {
		t.Errorf("empty json: err %v, stdout %q", r.err, r.stdout)
	}
	if r := cli(t, a, nil, nil, "token", "activity"); r.err == nil {
		t.Error("no id: no error")
	}
}
