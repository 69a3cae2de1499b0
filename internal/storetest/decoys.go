package storetest

import (
	"testing"
	"time"

	"github.com/tokend/tokend"
)

var decoyTests = []test{
	{name: "a decoy takes no name and is taken by none", run: testDecoyNames},
	{name: "a decoy counts for no max tokens per owner", run: testDecoyOwnerLimit},
	{name: "the secrets of every decoy, current and retired", run: testDecoySecrets},
	{name: "an owner's revoke-all leaves its decoys as they are, uncounted", run: testDecoyOwnerRevokeAll},
}

// Revoking all tokens of an owner (the portal's "revoke all") neither
// revokes nor counts the owner's decoys: the count is shown to the owner.
func testDecoyOwnerRevokeAll(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	mustCreateApp(t, s, newApp("app_a"))
	mustCreateToken(t, s, decoyToken("tok_decoy1", "app_a", "acct_1", "bait"))
	mustCreateToken(t, s, ownedToken("tok_real1", "app_a", "acct_1", "one"))
	n, err := s.RevokeOwnerTokens(ctx, "app_a", "acct_1", at(time.Minute), newEvent(tokend.ActionOwnerRevokeAll, "app_a", ""))
	if err != nil || n != 1 {
		t.Fatalf("RevokeOwnerTokens = %d, %v; want 1 (the real token)", n, err)
	}
	if tok, err := s.Token(ctx, "tok_decoy1"); err != nil || tok.Status != tokend.StatusActive {
		t.Errorf("the decoy after its owner's revoke-all: %s, %v; want active", tok.Status, err)
	}
}

// decoyToken is a decoy of an owner.
func decoyToken(id, appID, owner, name string) tokend.Token {
	tok := ownedToken(id, appID, owner, name)
	tok.Decoy = true
	return tok
}

// A decoy planted among an owner's tokens must not show through their
// names: it may share a name with a live token of the owner, either way
// round, and with another decoy. Real tokens still conflict with each
// other.
func testDecoyNames(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	mustCreateApp(t, s, newApp("app_a"))
	mustCreateToken(t, s, decoyToken("tok_decoy1", "app_a", "acct_1", "aws backup key"))
	mustCreateToken(t, s, ownedToken("tok_real1", "app_a", "acct_1", "aws backup key"))
	mustCreateToken(t, s, decoyToken("tok_decoy2", "app_a", "acct_1", "aws backup key"))
	mustCreateToken(t, s, decoyToken("tok_decoy3", "app_a", "", "root"))
	mustCreateToken(t, s, newToken("tok_real2", "app_a", "root"))

	err := s.CreateToken(ctx, ownedToken("tok_real3", "app_a", "acct_1", "aws backup key"), newEvent(tokend.ActionTokenCreate, "app_a", "tok_real3"))
	wantNameTaken(t, "a second real token of the name", err)

	// Renames: a real token onto a decoy's name, a decoy onto a real one's.
	mustCreateToken(t, s, ownedToken("tok_real4", "app_a", "acct_1", "ci"))
	mustCreateToken(t, s, decoyToken("tok_decoy4", "app_a", "acct_1", "cd"))
	for id, to := range map[string]string{"tok_real4": "cd", "tok_decoy4": "ci"} {
		if _, err := s.UpdateToken(ctx, id, func(x *tokend.Token) (tokend.Event, error) {
			x.Name = to
			return newEvent(tokend.ActionTokenUpdate, x.AppID, x.ID), nil
		}); err != nil {
			t.Errorf("rename %s to %q: %v", id, to, err)
		}
	}
	if _, err := s.UpdateToken(ctx, "tok_real4", func(x *tokend.Token) (tokend.Event, error) {
		x.Name = "aws backup key"
		return newEvent(tokend.ActionTokenUpdate, x.AppID, x.ID), nil
	}); err != nil {
		wantNameTaken(t, "rename a real token onto another real one's name", err)
	} else {
		t.Error("a real token was renamed onto another real token's live name")
	}
}

// A decoy of an owner neither counts against the app's max_tokens_per_owner
// nor is refused by it.
func testDecoyOwnerLimit(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	a := newApp("app_a")
	a.MaxTokensPerOwner = ptr(2)
	mustCreateApp(t, s, a)
	mustCreateToken(t, s, decoyToken("tok_decoy1", "app_a", "acct_1", "bait"))
	mustCreateToken(t, s, ownedToken("tok_real1", "app_a", "acct_1", "one"))
	mustCreateToken(t, s, ownedToken("tok_real2", "app_a", "acct_1", "two"))
	mustCreateToken(t, s, decoyToken("tok_decoy2", "app_a", "acct_1", "more bait"))
	err := s.CreateToken(ctx, ownedToken("tok_real3", "app_a", "acct_1", "three"), newEvent(tokend.ActionTokenCreate, "app_a", "tok_real3"))
	if !tokend.IsOwnerLimit(err) {
		t.Errorf("a third real token: %v, want the owner limit", err)
	}
	if n, err := s.CountTokens(ctx, tokend.TokenFilter{AppID: "app_a", OwnerID: "acct_1", Decoy: true, Now: t0}); err != nil || n != 2 {
		t.Errorf("decoys of acct_1 = %d, %v; want 2", n, err)
	}
}

// DecoySecrets answers every decoy's current secret and the secrets its
// rotations replaced, whatever its status, each with its decoy: exactly
// the secrets TokenBySecret finds a decoy for, and nothing of real tokens.
func testDecoySecrets(t *testing.T, s tokend.Store) {
	ctx := t.Context()
	read := func() map[string]string { // hash → token id
		t.Helper()
		secs, err := s.DecoySecrets(ctx)
		if err != nil {
			t.Fatalf("DecoySecrets: %v", err)
		}
		out := map[string]string{}
		for _, d := range secs {
			if !d.Token.Decoy || d.Token.Name == "" || d.Token.AppID == "" || d.Token.Masked == "" {
				t.Errorf("DecoySecrets answers token %+v", d.Token)
			}
			if _, dup := out[string(d.Hash)]; dup {
				t.Errorf("DecoySecrets answers %s's hash twice", d.Token.ID)
			}
			out[string(d.Hash)] = d.Token.ID
		}
		return out
	}
	if got := read(); len(got) != 0 {
		t.Fatalf("DecoySecrets of an empty store = %v", got)
	}
	mustCreateApp(t, s, newApp("app_a"))
	mustCreateApp(t, s, newApp("app_b"))
	d1 := decoyToken("tok_decoy1", "app_a", "acct_1", "bait")
	d1.SecretHash = hashOf("d1 first")
	mustCreateToken(t, s, d1)
	rotate(t, s, d1.ID, "d1 second", at(time.Minute), ptr(at(time.Hour)))
	rotate(t, s, d1.ID, "d1 third", at(2*time.Minute), ptr(at(time.Hour)))
	d2 := decoyToken("tok_decoy2", "app_b", "", "revoked bait")
	d2.SecretHash = hashOf("d2")
	d2.Status, d2.RevokedAt = tokend.StatusRevoked, ptr(t0)
	mustCreateToken(t, s, d2)
	real := newToken("tok_real1", "app_a", "real")
	real.SecretHash = hashOf("real first")
	mustCreateToken(t, s, real)
	rotate(t, s, real.ID, "real second", at(time.Minute), ptr(at(time.Hour)))

	want := map[string]string{}
	for _, sec := range []string{"d1 first", "d1 second", "d1 third", "d2", "real first", "real second"} {
		if cred, err := s.TokenBySecret(ctx, hashOf(sec)); err == nil && cred.Token.Decoy {
			want[string(hashOf(sec))] = cred.Token.ID
		}
	}
	for _, sec := range []string{"d1 second", "d1 third", "d2"} {
		if want[string(hashOf(sec))] == "" {
			t.Fatalf("TokenBySecret(%q) finds no decoy", sec)
		}
	}
	if d := diff(want, read()); d != "" {
		t.Errorf("DecoySecrets (-want +got):\n%s", d)
	}

	if err := s.DeleteToken(ctx, d1.ID, 0, newEvent(tokend.ActionTokenDelete, "app_a", d1.ID)); err != nil {
		t.Fatal(err)
	}
	if d := diff(map[string]string{string(hashOf("d2")): "tok_decoy2"}, read()); d != "" {
		t.Errorf("DecoySecrets after a deletion (-want +got):\n%s", d)
	}
}
