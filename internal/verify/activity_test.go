package verify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tokend/tokend"
)

func TestActivityIsWrittenByTheFlushNotPerVerification(t *testing.T) {
	h := newHarness(t)
	sec := h.token(func(t *tokend.Token) { t.ID = "tok_act"; t.Access = tokend.AccessReadOnly })
	t0 := h.clock.Now().UTC()
	h.verify(tokend.VerifyRequest{Token: sec, IP: "192.0.2.1"})
	h.clock.Advance(time.Second)
	h.verify(tokend.VerifyRequest{Token: sec, IP: "2001:db8::7", Permissions: []string{"write"},
		Method: "post", Path: "/orders/7?api_key=hunter2#frag"})
	h.clock.Advance(time.Second)
	h.verify(tokend.VerifyRequest{Token: sec, IP: "192.0.2.3", Method: "GET", Path: "/"})
	h.verify(tokend.VerifyRequest{Token: "not a token", IP: "192.0.2.4"}) // no token: nothing to note

	if n := h.store.actCalls.Load(); n != 0 {
		t.Fatalf("activity written on the hot path: %d calls", n)
	}
	if err := h.e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := h.store.actCalls.Load(); n != 1 {
		t.Errorf("one flush made %d activity writes, want 1 batch", n)
	}
	want := []tokend.Activity{
		{TokenID: "tok_act", At: t0, IP: "192.0.2.1", Code: tokend.CodeValid},
		{TokenID: "tok_act", At: t0.Add(time.Second), IP: "2001:db8::7", Code: tokend.CodeInsufficientPermissions, Method: "POST", Path: "/orders/7"},
		{TokenID: "tok_act", At: t0.Add(2 * time.Second), IP: "192.0.2.3", Code: tokend.CodeValid, Method: "GET", Path: "/"},
	}
	if diff := cmp.Diff(want, h.store.activityOf("tok_act")); diff != "" {
		t.Errorf("activity written (-want +got):\n%s", diff)
	}
	// Written once: the next flush has nothing new.
	if err := h.e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := h.store.activityOf("tok_act"); len(got) != 3 {
		t.Errorf("after a second flush %d rows, want the same 3", len(got))
	}
}

func TestActivityRingKeepsTheNewest(t *testing.T) {
	h := newHarness(t)
	sec := h.token(func(t *tokend.Token) { t.ID = "tok_ring" })
	for i := range 3*tokend.MaxActivity + 7 {
		h.verify(tokend.VerifyRequest{Token: sec, Method: "GET", Path: fmt.Sprintf("/r/%d", i)})
		h.clock.Advance(time.Millisecond)
	}
	if err := h.e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := h.store.activityOf("tok_ring")
	if len(got) != tokend.MaxActivity {
		t.Fatalf("%d rows written, want the %d newest", len(got), tokend.MaxActivity)
	}
	first, last := 3*tokend.MaxActivity+7-tokend.MaxActivity, 3*tokend.MaxActivity+6
	if got[0].Path != fmt.Sprintf("/r/%d", first) || got[len(got)-1].Path != fmt.Sprintf("/r/%d", last) {
		t.Errorf("rows from %s to %s, want /r/%d to /r/%d", got[0].Path, got[len(got)-1].Path, first, last)
	}
	// Part of the ring after a flush: only what is new.
	for i := range 5 {
		h.verify(tokend.VerifyRequest{Token: sec, Path: fmt.Sprintf("/n/%d", i)})
	}
	if err := h.e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := h.store.activityOf("tok_ring"); len(got) != tokend.MaxActivity+5 || got[len(got)-1].Path != "/n/4" {
		t.Errorf("after 5 more: %d rows written in all, last %q; want %d, /n/4", len(got), got[len(got)-1].Path, tokend.MaxActivity+5)
	}
}

// A caller's header never poisons a flush: a field that is not text is
// dropped, the row kept.
func TestActivityFieldsAreTextOrDropped(t *testing.T) {
	h := newHarness(t)
	sec := h.token(func(t *tokend.Token) { t.ID = "tok_txt" })
	long := "/" + strings.Repeat("é", tokend.MaxActivityPath) // 2 bytes each
	cases := []struct {
		name       string
		r          tokend.VerifyRequest
		wantMethod string
		wantPath   string
		wantIP     string
	}{
		{"NUL in the path", tokend.VerifyRequest{Method: "GET", Path: "/a\x00b"}, "GET", "", ""},
		{"invalid UTF-8 in the path", tokend.VerifyRequest{Path: "/a\xffb"}, "", "", ""},
		{"bidi control in the path", tokend.VerifyRequest{Path: "/a\u202eb"}, "", "", ""},
		{"control in the method", tokend.VerifyRequest{Method: "G\x01T", Path: "/x"}, "", "/x", ""},
		{"overlong method", tokend.VerifyRequest{Method: strings.Repeat("A", 17), Path: "/x"}, "", "/x", ""},
		{"long path cut on a character", tokend.VerifyRequest{Path: long}, "", long[:tokend.MaxActivityPath-1], ""},
		{"query after the cut point is still gone", tokend.VerifyRequest{Path: "/p?" + strings.Repeat("s", 400)}, "", "/p", ""},
		{"ip with a zone loses it", tokend.VerifyRequest{IP: "fe80::1%eth0"}, "", "", "fe80::1"},
		{"ip that is not an address is dropped", tokend.VerifyRequest{IP: "not\x00an ip"}, "", "", ""},
	}
	for _, c := range cases {
		c.r.Token = sec
		h.verify(c.r)
	}
	if err := h.e.Flush(context.Background()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	got := h.store.activityOf("tok_txt")
	if len(got) != len(cases) {
		t.Fatalf("%d rows written, want %d (one per verification, none dropped)", len(got), len(cases))
	}
	for i, c := range cases {
		a := got[i]
		if a.Method != c.wantMethod || a.Path != c.wantPath || a.IP != c.wantIP {
			t.Errorf("%s: method %q path %q ip %q; want %q %q %q", c.name, a.Method, a.Path, a.IP, c.wantMethod, c.wantPath, c.wantIP)
		}
		for _, s := range []string{a.Method, a.Path, a.IP} {
			if p := tokend.TextProblem(s, tokend.LineText); p != "" {
				t.Errorf("%s: stored %q: %s", c.name, s, p)
			}
		}
	}
}

func TestActivityRefusedRowIsDroppedAndTheRestWritten(t *testing.T) {
	h := newHarness(t)
	sec := h.token(func(t *tokend.Token) { t.ID = "tok_ref" })
	h.store.set(func(s *fakeStore) { s.refuseAct = func(a tokend.Activity) bool { return a.Path == "/bad" } })
	for _, p := range []string{"/a", "/b", "/bad", "/c", "/d"} {
		h.verify(tokend.VerifyRequest{Token: sec, Path: p})
	}
	if err := h.e.Flush(context.Background()); err == nil {
		t.Error("Flush reported no error although a row was refused")
	}
	var paths []string
	for _, a := range h.store.activityOf("tok_ref") {
		paths = append(paths, a.Path)
	}
	if diff := cmp.Diff([]string{"/a", "/b", "/c", "/d"}, paths); diff != "" {
		t.Errorf("rows written (-want +got):\n%s", diff)
	}
}

func TestActivityIsKeptWhileStorageIsDown(t *testing.T) {
	h := newHarness(t)
	sec := h.token(func(t *tokend.Token) { t.ID = "tok_down" })
	h.store.set(func(s *fakeStore) { s.actErr = tokend.Unavailable(errors.New("down")) })
	h.verify(tokend.VerifyRequest{Token: sec, Path: "/1"})
	if err := h.e.Flush(context.Background()); err == nil {
		t.Fatal("Flush reported no error while storage is down")
	}
	h.verify(tokend.VerifyRequest{Token: sec, Path: "/2"})
	h.store.set(func(s *fakeStore) { s.actErr = nil })
	if err := h.e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, a := range h.store.activityOf("tok_down") {
		paths = append(paths, a.Path)
	}
	if diff := cmp.Diff([]string{"/1", "/2"}, paths); diff != "" {
		t.Errorf("rows written once storage is back (-want +got):\n%s", diff)
	}
}

// The cached path notes activity without allocating, with forward-auth
// fields set.
func TestActivityNotesAllocateNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts mean nothing under the race detector")
	}
	h := newHarness(t)
	sec := h.token()
	r := tokend.VerifyRequest{Token: sec, IP: "192.0.2.1", Method: "POST", Path: "/orders/7?x=1"}
	h.verify(r)
	if n := testing.AllocsPerRun(1000, func() { h.verify(r) }); n != 0 {
		t.Errorf("a cached verification with activity allocates %v times, want 0", n)
	}
}
