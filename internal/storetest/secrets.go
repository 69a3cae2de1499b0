package storetest

import (
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

var secretTests = []test{
	{name: "every secret TokenBySecret finds, and only those, streamed and by token", run: testSecretHashes},
}

// SecretHashes answers exactly the hashes TokenBySecret finds a token for:
// every token's current secret whatever its status, decoys included, and
// the secrets replaced by rotation still kept, with or without grace; not
// those of deleted tokens nor forgotten retired secrets. The verification
// engine's filter of known secrets is built from it: a hash missing here
// would answer a real token NOT_FOUND.
func testSecretHashes(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	read := func(ids []string) map[string]bool {
		t.Helper()
		got := map[string]bool{}
		err := s.SecretHashes(ctx, ids, func(h []byte) {
			if got[string(h)] {
				t.Errorf("SecretHashes(%v) answers a hash twice", ids)
			}
			got[string(h)] = true
		})
		if err != nil {
			t.Fatalf("SecretHashes(%v): %v", ids, err)
		}
		return got
	}
	if got := read(nil); len(got) != 0 {
		t.Fatalf("SecretHashes of an empty store answers %d hashes", len(got))
	}
	mustCreateApp(t, s, newApp("app_a"))
	mk := func(tok tokend.Token, sec string) {
		tok.SecretHash = hashOf(sec)
		mustCreateToken(t, s, tok)
	}
	mk(newToken("tok_active", "app_a", "active"), "active")
	revoked := newToken("tok_revoked", "app_a", "revoked")
	revoked.Status, revoked.RevokedAt = tokend.StatusRevoked, ptr(t0)
	mk(revoked, "revoked")
	disabled := newToken("tok_disabled", "app_a", "disabled")
	disabled.Status = tokend.StatusDisabled
	mk(disabled, "disabled")
	expired := newToken("tok_expired", "app_a", "expired")
	expired.ExpiresAt = ptr(t0.Add(-time.Hour))
	mk(expired, "expired")
	mk(decoyToken("tok_decoy", "app_a", "acct_1", "bait"), "decoy")
	mk(newToken("tok_rotated", "app_a", "rotated"), "rot 1")
	rotate(t, s, "tok_rotated", "rot 2", at(time.Minute), ptr(at(time.Hour)))       // with grace
	rotate(t, s, "tok_rotated", "rot 3", at(2*time.Minute), ptr(at(2*time.Minute))) // without
	mk(newToken("tok_deleted", "app_a", "deleted"), "deleted")
	if err := s.DeleteToken(ctx, "tok_deleted", 0, newEvent(tokend.ActionTokenDelete, "app_a", "tok_deleted")); err != nil {
		t.Fatal(err)
	}
	mk(newToken("tok_forgotten", "app_a", "forgotten"), "forgotten 1")
	rotate(t, s, "tok_forgotten", "forgotten 2", at(time.Minute), ptr(at(time.Minute)))
	if _, err := s.ForgetRetiredSecrets(ctx, at(90*time.Second)); err != nil {
		t.Fatal(err)
	}
	// What ForgetRetiredSecrets kept of the rotated token's old secrets
	// is the store's to say: TokenBySecret decides which are wanted.
	all := []string{"active", "revoked", "disabled", "expired", "decoy", "rot 1", "rot 2", "rot 3", "deleted", "forgotten 1", "forgotten 2", "never stored"}
	want := map[string]bool{}
	for _, sec := range all {
		_, err := s.TokenBySecret(ctx, hashOf(sec))
		switch {
		case err == nil:
			want[string(hashOf(sec))] = true
		case !isNotFound(err):
			t.Fatalf("TokenBySecret(%q): %v", sec, err)
		}
	}
	for _, sec := range []string{"active", "revoked", "decoy", "rot 3", "forgotten 2"} {
		if !want[string(hashOf(sec))] {
			t.Fatalf("TokenBySecret does not find %q: the case is wrong", sec)
		}
	}
	if got := read(nil); !maps.Equal(got, want) {
		t.Errorf("SecretHashes answers %d hashes, TokenBySecret finds %d: %v", len(got), len(want), diffKeys(got, want))
	}
	if n, err := s.CountSecrets(ctx); err != nil || n != len(want) {
		t.Errorf("CountSecrets = %d, %v; want %d", n, err, len(want))
	}
	byToken := map[string]bool{}
	for _, sec := range []string{"rot 1", "rot 2", "rot 3", "decoy"} {
		if h := hashOf(sec); want[string(h)] {
			byToken[string(h)] = true
		}
	}
	if got := read([]string{"tok_rotated", "tok_decoy", "tok_deleted", "tok_none"}); !maps.Equal(got, byToken) {
		t.Errorf("SecretHashes of two tokens: %v", diffKeys(got, byToken))
	}
}

func isNotFound(err error) bool { return tokend.CodeOf(err) == tokend.ECodeNotFound }

// diffKeys says how many keys each side has that the other lacks.
func diffKeys(got, want map[string]bool) string {
	extra, missing := 0, 0
	for k := range got {
		if !want[k] {
			extra++
		}
	}
	for k := range want {
		if !got[k] {
			missing++
		}
	}
	return fmt.Sprintf("%d extra, %d missing", extra, missing)
}
