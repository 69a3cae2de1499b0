package manage_test

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/manage"
	"github.com/tokend/tokend/internal/password"
	"github.com/tokend/tokend/internal/sqlite"
)

// cheap keeps the tests fast; the rules do not depend on the cost.
var cheap = password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

const goodPassword = "correct horse battery"

var t0 = time.Date(2026, time.March, 14, 9, 0, 0, 0, time.UTC)

// bootActor is the bootstrap admin token pasted into /setup.
var bootActor = tokend.Actor{Kind: "token", ID: "tok_boot", Name: "owner (bootstrap)", IP: "192.0.2.1", Permissions: tokend.AdminPermissions}

type userFixture struct {
	svc   *manage.Service
	store *sqlite.Store
	now   *time.Time
}

func newUserFixture(t *testing.T) *userFixture {
	return newUserFixtureWith(t, openStore(t), cheap)
}

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), t.TempDir()+"/tokend.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newUserFixtureWith(t *testing.T, st *sqlite.Store, p password.Params) *userFixture {
	t.Helper()
	f := &userFixture{store: st, now: new(time.Time)}
	*f.now = t0
	f.svc = manage.New(manage.Options{Store: st, Password: &p, Now: func() time.Time { return *f.now }})
	return f
}

// owner sets up the first owner and answers them.
func (f *userFixture) owner(t *testing.T) tokend.User {
	t.Helper()
	u, err := f.svc.Setup(t.Context(), bootActor, "Ada Lovelace", "ada@example.com", goodPassword)
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	return u
}

// create adds a user a second after the previous one, so that the list
// order is the order of the test.
func (f *userFixture) create(t *testing.T, by tokend.User, name, email string, role tokend.Role) tokend.User {
	t.Helper()
	*f.now = f.now.Add(time.Second)
	u, err := f.svc.CreateUser(t.Context(), by.Actor("192.0.2.2"), manage.UserInput{Name: name, Email: email, Role: role, Password: goodPassword})
	if err != nil {
		t.Fatalf("CreateUser(%s): %v", email, err)
	}
	return u
}

func (f *userFixture) events(t *testing.T, action string) []tokend.Event {
	t.Helper()
	page, err := f.store.Events(t.Context(), tokend.EventFilter{Action: action, Limit: tokend.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	return page.Items
}

func (f *userFixture) stored(t *testing.T, id string) tokend.User {
	t.Helper()
	u, err := f.store.User(t.Context(), id)
	if err != nil {
		t.Fatalf("store.User(%s): %v", id, err)
	}
	return u
}

// login signs u in and answers a session id.
func (f *userFixture) login(t *testing.T, email string) string {
	t.Helper()
	u, err := f.svc.Authenticate(t.Context(), email, goodPassword, "192.0.2.3")
	if err != nil {
		t.Fatalf("Authenticate(%s): %v", email, err)
	}
	raw, _, err := f.svc.NewSession(t.Context(), u, "192.0.2.3", "test", *f.now, 0)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func (f *userFixture) signedIn(t *testing.T, raw string) bool {
	t.Helper()
	_, _, err := f.svc.SessionUser(t.Context(), raw, *f.now, time.Hour, 24*time.Hour)
	if err != nil && tokend.CodeOf(err) != tokend.ECodeUnauthenticated {
		t.Fatalf("SessionUser: %v", err)
	}
	return err == nil
}

func wantCode(t *testing.T, what string, err error, code tokend.ErrorCode) {
	t.Helper()
	if got := tokend.CodeOf(err); got != code || err == nil {
		t.Errorf("%s: %v, want %s", what, err, code)
	}
}

func fieldsOf(err error) []string {
	var e *tokend.Error
	if !errors.As(err, &e) {
		return nil
	}
	var out []string
	for _, f := range e.Fields {
		out = append(out, f.Field)
	}
	slices.Sort(out)
	return out
}

func TestSetup(t *testing.T) {
	f := newUserFixture(t)
	ctx := t.Context()
	if need, err := f.svc.NeedsSetup(ctx); err != nil || !need {
		t.Fatalf("NeedsSetup on an empty store = %v, %v; want true", need, err)
	}

	_, err := f.svc.Setup(ctx, bootActor, "", "not an email", "short")
	wantCode(t, "Setup with bad fields", err, tokend.ECodeInvalid)
	if got := fieldsOf(err); !slices.Equal(got, []string{"email", "name", "password"}) {
		t.Errorf("Setup with bad fields named %v, want email, name and password at once", got)
	}

	weak := bootActor
	weak.Permissions = []string{tokend.PermTokensRead}
	_, err = f.svc.Setup(ctx, weak, "Ada", "ada@example.com", goodPassword)
	wantCode(t, "Setup by a token without users:write", err, tokend.ECodeForbidden)
	partial := bootActor
	partial.Permissions = []string{tokend.PermUsersWrite, tokend.PermTokensRead}
	_, err = f.svc.Setup(ctx, partial, "Ada", "ada@example.com", goodPassword)
	wantCode(t, "Setup by a token with users:write but less than an owner", err, tokend.ECodeForbidden)

	u, err := f.svc.Setup(ctx, bootActor, "  Ada Lovelace ", " Ada@Example.com ", goodPassword)
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	if u.Role != tokend.RoleOwner || u.Email != "ada@example.com" || u.Name != "Ada Lovelace" || u.Version != 1 {
		t.Errorf("Setup made %+v, want the owner ada@example.com named Ada Lovelace", u)
	}
	if u.PasswordHash != "" {
		t.Error("Setup answered the password hash")
	}
	// Setup signs the owner in: the list of users shows that sign-in.
	if got := f.stored(t, u.ID).LastLoginAt; got == nil || !got.Equal(u.CreatedAt) {
		t.Errorf("the owner's last sign-in after setup = %v, want the setup's time %v", got, u.CreatedAt)
	}
	if ok, _, err := password.VerifyWith(goodPassword, f.stored(t, u.ID).PasswordHash, cheap); !ok || err != nil {
		t.Errorf("the stored hash does not verify the password: %v", err)
	}
	evs := f.events(t, tokend.ActionUserSetup)
	if len(evs) != 1 || evs[0].Actor != "token:tok_boot" || evs[0].Details["user_id"] != u.ID || evs[0].IP != "192.0.2.1" {
		t.Errorf("setup events %+v, want one by token:tok_boot about %s", evs, u.ID)
	}
	if need, _ := f.svc.NeedsSetup(ctx); need {
		t.Error("NeedsSetup after setup = true")
	}

	_, err = f.svc.Setup(ctx, bootActor, "Mallory", "mallory@example.com", goodPassword)
	wantCode(t, "a second Setup", err, tokend.ECodeConflict)
	if n, _ := f.store.CountUsers(ctx); n != 1 {
		t.Errorf("%d users after a second Setup, want 1", n)
	}
}

func TestCreateUser(t *testing.T) {
	f := newUserFixture(t)
	ctx := t.Context()
	owner := f.owner(t)
	admin := f.create(t, owner, "Grace", "grace@example.com", tokend.RoleAdmin)
	viewer := f.create(t, owner, "Vera", "vera@example.com", tokend.RoleViewer)

	in := manage.UserInput{Name: "Linus", Email: "linus@example.com", Role: tokend.RoleViewer, Password: goodPassword}
	for _, c := range []struct {
		name  string
		actor tokend.Actor
	}{
		{"an admin user", admin.Actor("")},
		{"a viewer user", viewer.Actor("")},
		{"a token without users:write", tokend.Actor{Kind: "token", ID: "tok_x", Permissions: tokend.RoleAdmin.Permissions()}},
	} {
		_, err := f.svc.CreateUser(ctx, c.actor, in)
		wantCode(t, "CreateUser by "+c.name, err, tokend.ECodeForbidden)
	}

	// users:write alone cannot hand out more than one holds.
	usersOnly := tokend.Actor{Kind: "token", ID: "tok_u", Permissions: append(tokend.RoleViewer.Permissions(), tokend.PermUsersWrite)}
	_, err := f.svc.CreateUser(ctx, usersOnly, manage.UserInput{Name: "Eve", Email: "eve@example.com", Role: tokend.RoleOwner, Password: goodPassword})
	wantCode(t, "CreateUser of an owner by a weaker token", err, tokend.ECodeForbidden)
	if _, err := f.svc.CreateUser(ctx, usersOnly, in); err != nil {
		t.Errorf("CreateUser of a viewer by a token holding a viewer's permissions and users:write: %v", err)
	}

	_, err = f.svc.CreateUser(ctx, owner.Actor(""), manage.UserInput{Name: strings.Repeat("x", 51), Email: "a@b", Role: "root", Password: "   "})
	wantCode(t, "CreateUser with bad fields", err, tokend.ECodeInvalid)
	if got := fieldsOf(err); !slices.Equal(got, []string{"email", "name", "password", "role"}) {
		t.Errorf("CreateUser with bad fields named %v, want all four", got)
	}

	_, err = f.svc.CreateUser(ctx, owner.Actor(""), manage.UserInput{Name: "Grace 2", Email: "GRACE@example.com", Role: tokend.RoleViewer, Password: goodPassword})
	wantCode(t, "CreateUser with a taken email", err, tokend.ECodeConflict)
	if got := fieldsOf(err); !slices.Equal(got, []string{"email"}) {
		t.Errorf("the email conflict named %v, want email", got)
	}

	evs := f.events(t, tokend.ActionUserCreate)
	if len(evs) != 3 {
		t.Fatalf("%d user.create events, want 3", len(evs))
	}
	for _, ev := range evs {
		for k, v := range ev.Details {
			if s, ok := v.(string); ok && strings.Contains(s, "argon2") {
				t.Errorf("event detail %s holds a password hash", k)
			}
		}
	}
	if evs[len(evs)-1].Actor != owner.Actor("").Ref() {
		t.Errorf("user.create actor %q, want %q", evs[len(evs)-1].Actor, owner.Actor("").Ref())
	}
}

func TestCheckEmail(t *testing.T) {
	for _, c := range []struct {
		email string
		ok    bool
	}{
		{"ada@example.com", true},
		{"ada.lovelace+dash@mail.example.co.uk", true},
		{"", false},
		{"ada", false},
		{"ada@", false},
		{"@example.com", false},
		{"ada@localhost", false},
		{"Ada <ada@example.com>", false},
		{"ada@example.com, eve@example.com", false},
		{"ada lovelace@example.com", false},
		{"ada@exa mple.com", false},
		{"ada@example.com\n", false},
		{strings.Repeat("a", 250) + "@example.com", false},
	} {
		var p tokend.Problems
		manage.CheckEmail(&p, "email", c.email)
		if (len(p) == 0) != c.ok {
			t.Errorf("CheckEmail(%q) = %v, want ok %v", c.email, p, c.ok)
		}
	}
}

func TestReadUsers(t *testing.T) {
	f := newUserFixture(t)
	ctx := t.Context()
	owner := f.owner(t)
	viewer := f.create(t, owner, "Vera", "vera@example.com", tokend.RoleViewer)
	admin := f.create(t, owner, "Grace", "grace@example.com", tokend.RoleAdmin)

	all, err := f.svc.Users(ctx, owner.Actor(""))
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 || all[0].ID != owner.ID {
		t.Errorf("Users = %d users starting %s, want 3 oldest first", len(all), all[0].ID)
	}
	for _, u := range all {
		if u.PasswordHash != "" {
			t.Errorf("Users answered the hash of %s", u.ID)
		}
	}
	_, err = f.svc.Users(ctx, admin.Actor(""))
	wantCode(t, "Users by an admin", err, tokend.ECodeForbidden)

	if u, err := f.svc.User(ctx, viewer.Actor(""), viewer.ID); err != nil || u.ID != viewer.ID || u.PasswordHash != "" {
		t.Errorf("a viewer reading themselves: %+v, %v", u, err)
	}
	_, err = f.svc.User(ctx, viewer.Actor(""), admin.ID)
	wantCode(t, "a viewer reading another user", err, tokend.ECodeForbidden)
	_, err = f.svc.User(ctx, owner.Actor(""), "usr_missing")
	wantCode(t, "User(missing)", err, tokend.ECodeNotFound)
}

func TestUpdateUser(t *testing.T) {
	f := newUserFixture(t)
	ctx := t.Context()
	owner := f.owner(t)
	grace := f.create(t, owner, "Grace", "grace@example.com", tokend.RoleViewer)
	session := f.login(t, "grace@example.com")

	name := "Grace Hopper"
	current := f.stored(t, grace.ID).Version // the sign-in bumped it
	u, err := f.svc.UpdateUser(ctx, owner.Actor("192.0.2.9"), grace.ID, manage.UserPatch{Name: &name}, current)
	if err != nil {
		t.Fatalf("rename: %v", err)
	}
	if u.Name != name || u.Version != current+1 {
		t.Errorf("after rename: %+v", u)
	}
	if !f.signedIn(t, session) {
		t.Error("a rename ended the user's session")
	}

	_, err = f.svc.UpdateUser(ctx, owner.Actor(""), grace.ID, manage.UserPatch{Name: &name}, grace.Version)
	wantCode(t, "update with a stale version", err, tokend.ECodePreconditionFailed)

	admin := tokend.RoleAdmin
	u, err = f.svc.UpdateUser(ctx, owner.Actor(""), grace.ID, manage.UserPatch{Role: &admin}, 0)
	if err != nil || u.Role != tokend.RoleAdmin {
		t.Fatalf("role change: %+v, %v", u, err)
	}
	if f.signedIn(t, session) {
		t.Error("a role change left the user's session running")
	}
	evs := f.events(t, tokend.ActionUserUpdate)
	last := evs[0]
	if r, _ := last.Details["role"].(map[string]any); r["from"] != "viewer" || r["to"] != "admin" {
		t.Errorf("role change audited as %v", last.Details)
	}

	session = f.login(t, "grace@example.com")
	yes := true
	if _, err := f.svc.UpdateUser(ctx, owner.Actor(""), grace.ID, manage.UserPatch{Disabled: &yes}, 0); err != nil {
		t.Fatal(err)
	}
	if f.signedIn(t, session) {
		t.Error("disabling left the user's session running")
	}

	bad := tokend.Role("root")
	_, err = f.svc.UpdateUser(ctx, owner.Actor(""), grace.ID, manage.UserPatch{Role: &bad}, 0)
	wantCode(t, "update to an unknown role", err, tokend.ECodeInvalid)
	_, err = f.svc.UpdateUser(ctx, owner.Actor(""), "usr_missing", manage.UserPatch{Name: &name}, 0)
	wantCode(t, "update of a missing user", err, tokend.ECodeNotFound)

	before := f.stored(t, grace.ID).Version
	u, err = f.svc.UpdateUser(ctx, owner.Actor(""), grace.ID, manage.UserPatch{Name: &name}, 0)
	if err != nil || u.Version != before {
		t.Errorf("an update that changes nothing: version %d, %v; want %d unchanged", u.Version, err, before)
	}
}

func TestUpdateUserPermissions(t *testing.T) {
	f := newUserFixture(t)
	ctx := t.Context()
	owner := f.owner(t)
	admin := f.create(t, owner, "Grace", "grace@example.com", tokend.RoleAdmin)
	viewer := f.create(t, owner, "Vera", "vera@example.com", tokend.RoleViewer)
	name, owners, viewers, yes := "New name", tokend.RoleOwner, tokend.RoleViewer, true

	for _, c := range []struct {
		name  string
		actor tokend.Actor
		id    string
		patch manage.UserPatch
	}{
		{"an admin renaming a viewer", admin.Actor(""), viewer.ID, manage.UserPatch{Name: &name}},
		{"a viewer renaming themselves", viewer.Actor(""), viewer.ID, manage.UserPatch{Name: &name}},
		{"a viewer making themselves owner", viewer.Actor(""), viewer.ID, manage.UserPatch{Role: &owners}},
		{"an admin disabling the owner", admin.Actor(""), owner.ID, manage.UserPatch{Disabled: &yes}},
		{"a viewer setting another's password", viewer.Actor(""), admin.ID, manage.UserPatch{Password: ptr("another long password")}},
		{"a weaker token with users:write demoting the owner", tokend.Actor{Kind: "token", ID: "tok_u",
			Permissions: append(tokend.RoleViewer.Permissions(), tokend.PermUsersWrite)}, owner.ID, manage.UserPatch{Role: &viewers}},
		{"a weaker token with users:write promoting a viewer", tokend.Actor{Kind: "token", ID: "tok_u",
			Permissions: append(tokend.RoleViewer.Permissions(), tokend.PermUsersWrite)}, viewer.ID, manage.UserPatch{Role: &owners}},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := f.stored(t, c.id)
			_, err := f.svc.UpdateUser(ctx, c.actor, c.id, c.patch, 0)
			wantCode(t, c.name, err, tokend.ECodeForbidden)
			if after := f.stored(t, c.id); after.Version != before.Version {
				t.Errorf("a refused update changed the user: version %d → %d", before.Version, after.Version)
			}
		})
	}
}

func TestOwnPasswordChange(t *testing.T) {
	f := newUserFixture(t)
	ctx := t.Context()
	owner := f.owner(t)
	viewer := f.create(t, owner, "Vera", "vera@example.com", tokend.RoleViewer)
	session := f.login(t, "vera@example.com")
	newPassword := "a brand new passphrase"

	_, err := f.svc.UpdateUser(ctx, viewer.Actor(""), viewer.ID, manage.UserPatch{Password: &newPassword, CurrentPassword: "wrong password!"}, 0)
	wantCode(t, "own password change with a wrong current password", err, tokend.ECodeInvalid)
	if got := fieldsOf(err); !slices.Equal(got, []string{"current_password"}) {
		t.Errorf("named %v, want current_password", got)
	}
	short := "short"
	_, err = f.svc.UpdateUser(ctx, viewer.Actor(""), viewer.ID, manage.UserPatch{Password: &short, CurrentPassword: goodPassword}, 0)
	wantCode(t, "own password change to a short one", err, tokend.ECodeInvalid)

	if _, err := f.svc.UpdateUser(ctx, viewer.Actor(""), viewer.ID, manage.UserPatch{Password: &newPassword, CurrentPassword: goodPassword}, 0); err != nil {
		t.Fatalf("own password change: %v", err)
	}
	if f.signedIn(t, session) {
		t.Error("a password change left the old session running")
	}
	if _, err := f.svc.Authenticate(ctx, "vera@example.com", goodPassword, ""); err == nil {
		t.Error("the old password still signs in")
	}
	if _, err := f.svc.Authenticate(ctx, "vera@example.com", newPassword, ""); err != nil {
		t.Errorf("the new password does not sign in: %v", err)
	}
	ev := f.events(t, tokend.ActionUserUpdate)[0]
	if ev.Details["password"] != "changed" || ev.Actor != viewer.Actor("").Ref() {
		t.Errorf("password change audited as %+v", ev)
	}

	// An owner resets another's password without knowing it.
	reset := "reset by the owner ok"
	if _, err := f.svc.UpdateUser(ctx, owner.Actor(""), viewer.ID, manage.UserPatch{Password: &reset}, 0); err != nil {
		t.Fatalf("owner reset: %v", err)
	}
	if _, err := f.svc.Authenticate(ctx, "vera@example.com", reset, ""); err != nil {
		t.Errorf("the reset password does not sign in: %v", err)
	}
}

func TestLastOwner(t *testing.T) {
	f := newUserFixture(t)
	ctx := t.Context()
	owner := f.owner(t)
	a := owner.Actor("")
	viewers, yes := tokend.RoleViewer, true

	_, err := f.svc.UpdateUser(ctx, a, owner.ID, manage.UserPatch{Role: &viewers}, 0)
	wantCode(t, "demoting the last owner", err, tokend.ECodeConflict)
	if err != nil && !strings.Contains(err.Error(), "last active owner") {
		t.Errorf("the refusal does not say why: %v", err)
	}
	_, err = f.svc.UpdateUser(ctx, a, owner.ID, manage.UserPatch{Disabled: &yes}, 0)
	wantCode(t, "disabling the last owner", err, tokend.ECodeConflict)
	err = f.svc.DeleteUser(ctx, a, owner.ID, 0)
	wantCode(t, "deleting the last owner", err, tokend.ECodeConflict)
	if u := f.stored(t, owner.ID); u.Role != tokend.RoleOwner || u.Disabled || u.Version != 1 {
		t.Errorf("the refused changes changed the owner: %+v", u)
	}

	// A disabled owner does not count.
	second := f.create(t, owner, "Second", "second@example.com", tokend.RoleOwner)
	if _, err := f.svc.UpdateUser(ctx, a, second.ID, manage.UserPatch{Disabled: &yes}, 0); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.UpdateUser(ctx, a, owner.ID, manage.UserPatch{Role: &viewers}, 0)
	wantCode(t, "demoting the last active owner beside a disabled one", err, tokend.ECodeConflict)

	// With another active owner, the first may step down.
	no := false
	if _, err := f.svc.UpdateUser(ctx, a, second.ID, manage.UserPatch{Disabled: &no}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.UpdateUser(ctx, a, owner.ID, manage.UserPatch{Role: &viewers}, 0); err != nil {
		t.Errorf("demoting one of two owners: %v", err)
	}
}

func TestDeleteUser(t *testing.T) {
	f := newUserFixture(t)
	ctx := t.Context()
	owner := f.owner(t)
	grace := f.create(t, owner, "Grace", "grace@example.com", tokend.RoleAdmin)
	session := f.login(t, "grace@example.com")

	err := f.svc.DeleteUser(ctx, grace.Actor(""), owner.ID, 0)
	wantCode(t, "an admin deleting the owner", err, tokend.ECodeForbidden)
	err = f.svc.DeleteUser(ctx, owner.Actor(""), grace.ID, grace.Version)
	wantCode(t, "delete with a stale version", err, tokend.ECodePreconditionFailed)

	if err := f.svc.DeleteUser(ctx, owner.Actor(""), grace.ID, 0); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	if f.signedIn(t, session) {
		t.Error("the deleted user's session still works")
	}
	_, err = f.svc.User(ctx, owner.Actor(""), grace.ID)
	wantCode(t, "User after delete", err, tokend.ECodeNotFound)
	evs := f.events(t, tokend.ActionUserDelete)
	if len(evs) != 1 || evs[0].Details["email"] != "grace@example.com" || evs[0].Details["user_id"] != grace.ID {
		t.Errorf("delete events %+v, want one naming grace", evs)
	}
	err = f.svc.DeleteUser(ctx, owner.Actor(""), grace.ID, 0)
	wantCode(t, "deleting again", err, tokend.ECodeNotFound)
}

func TestAuthenticate(t *testing.T) {
	f := newUserFixture(t)
	ctx := t.Context()
	owner := f.owner(t)
	vera := f.create(t, owner, "Vera", "vera@example.com", tokend.RoleViewer)
	off := f.create(t, owner, "Off", "off@example.com", tokend.RoleViewer)
	yes := true
	if _, err := f.svc.UpdateUser(ctx, owner.Actor(""), off.ID, manage.UserPatch{Disabled: &yes}, 0); err != nil {
		t.Fatal(err)
	}

	*f.now = t0.Add(time.Hour)
	u, err := f.svc.Authenticate(ctx, " VERA@example.com", goodPassword, "198.51.100.7")
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	if u.ID != vera.ID || u.LastLoginAt == nil || !u.LastLoginAt.Equal(*f.now) || u.PasswordHash != "" {
		t.Errorf("Authenticate answered %+v", u)
	}
	if got := f.stored(t, vera.ID).LastLoginAt; got == nil || !got.Equal(*f.now) {
		t.Errorf("stored last login %v, want %v", got, *f.now)
	}
	evs := f.events(t, tokend.ActionUserLogin)
	if len(evs) != 1 || evs[0].Actor != "user:"+vera.ID || evs[0].IP != "198.51.100.7" {
		t.Errorf("login events %+v, want one by user:%s from 198.51.100.7", evs, vera.ID)
	}

	var first error
	for _, c := range []struct{ name, email, password string }{
		{"unknown email", "nobody@example.com", goodPassword},
		{"wrong password", "vera@example.com", "wrong password!!"},
		{"disabled user, right password", "off@example.com", goodPassword},
		{"empty email", "", goodPassword},
		{"empty password", "vera@example.com", ""},
		{"over-long email", strings.Repeat("a", 300) + "@example.com", goodPassword},
	} {
		_, err := f.svc.Authenticate(ctx, c.email, c.password, "")
		wantCode(t, c.name, err, tokend.ECodeUnauthenticated)
		if first == nil {
			first = err
		} else if err.Error() != first.Error() {
			t.Errorf("%s answers %q, unlike %q: it tells failures apart", c.name, err, first)
		}
	}
	if n := len(f.events(t, tokend.ActionUserLogin)); n != 1 {
		t.Errorf("%d login events after failed sign-ins, want 1", n)
	}
}

func TestAuthenticateRehashes(t *testing.T) {
	st := openStore(t)
	old := newUserFixtureWith(t, st, cheap)
	owner := old.owner(t)
	stronger := cheap
	stronger.Memory = 128
	f := newUserFixtureWith(t, st, stronger)
	if _, err := f.svc.Authenticate(t.Context(), owner.Email, goodPassword, ""); err != nil {
		t.Fatal(err)
	}
	h := f.stored(t, owner.ID).PasswordHash
	if !strings.Contains(h, "m=128,") {
		t.Errorf("hash after sign-in %q, want it redone with m=128", h)
	}
	if _, err := f.svc.Authenticate(t.Context(), owner.Email, goodPassword, ""); err != nil {
		t.Errorf("sign-in with the rehashed password: %v", err)
	}
}

func TestSessions(t *testing.T) {
	f := newUserFixture(t)
	ctx := t.Context()
	owner := f.owner(t)
	const idle, absolute = 30 * time.Minute, 12 * time.Hour

	raw, sess, err := f.svc.NewSession(ctx, owner, "192.0.2.3", "Mozilla/5.0", t0, absolute)
	if err != nil {
		t.Fatal(err)
	}
	id, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil || len(id) < 16 {
		t.Fatalf("session id %q is not base64url of at least 128 bits", raw)
	}
	sum := sha256.Sum256([]byte(raw))
	stored, err := f.store.Session(ctx, sum[:])
	if err != nil {
		t.Fatalf("the store has no session under SHA-256(id): %v", err)
	}
	if strings.Contains(string(stored.IDHash), raw) || stored.CSRF == "" || stored.CSRF == raw || !stored.ExpiresAt.Equal(t0.Add(absolute)) {
		t.Errorf("stored session %+v", stored)
	}
	raw2, _, err := f.svc.NewSession(ctx, owner, "", "", t0, absolute)
	if err != nil || raw2 == raw {
		t.Errorf("two sessions share an id, or %v", err)
	}

	check := func(at time.Time) (tokend.Session, tokend.User, error) {
		return f.svc.SessionUser(ctx, raw, at, idle, absolute)
	}
	s, u, err := check(t0.Add(30 * time.Second))
	if err != nil || u.ID != owner.ID || s.CSRF != sess.CSRF || u.PasswordHash != "" {
		t.Fatalf("SessionUser = %+v, %+v, %v", s, u, err)
	}
	if got, _ := f.store.Session(ctx, sum[:]); !got.LastSeenAt.Equal(t0) {
		t.Errorf("activity within a minute was written: last seen %v", got.LastSeenAt)
	}
	if _, _, err := check(t0.Add(2 * time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.store.Session(ctx, sum[:]); !got.LastSeenAt.Equal(t0.Add(2 * time.Minute)) {
		t.Errorf("activity after a minute not written: last seen %v", got.LastSeenAt)
	}

	// Keep it active every 20 minutes up to the absolute end.
	at := t0.Add(2 * time.Minute)
	for at.Add(20 * time.Minute).Before(t0.Add(absolute)) {
		at = at.Add(20 * time.Minute)
		if _, _, err := check(at); err != nil {
			t.Fatalf("an active session ended at %v: %v", at, err)
		}
	}
	_, _, err = check(t0.Add(absolute))
	wantCode(t, "a session at its absolute end", err, tokend.ECodeUnauthenticated)
	if _, err := f.store.Session(ctx, sum[:]); !errors.Is(err, tokend.ErrNotFound) {
		t.Errorf("an expired session stays in the store: %v", err)
	}

	// Idle.
	raw3, _, _ := f.svc.NewSession(ctx, owner, "", "", t0, absolute)
	_, _, err = f.svc.SessionUser(ctx, raw3, t0.Add(idle), idle, absolute)
	wantCode(t, "a session idle for the idle timeout", err, tokend.ECodeUnauthenticated)

	// A shorter absolute timeout than the stored end also applies.
	raw4, _, _ := f.svc.NewSession(ctx, owner, "", "", t0, absolute)
	_, _, err = f.svc.SessionUser(ctx, raw4, t0.Add(10*time.Minute), idle, 5*time.Minute)
	wantCode(t, "a session past a shorter absolute timeout", err, tokend.ECodeUnauthenticated)

	for _, bad := range []string{"", "nonsense", raw + "x", strings.Repeat("A", 5000)} {
		_, _, err := f.svc.SessionUser(ctx, bad, t0, idle, absolute)
		wantCode(t, "SessionUser("+bad[:min(len(bad), 10)]+")", err, tokend.ECodeUnauthenticated)
	}
}

func TestSessionOfDisabledUser(t *testing.T) {
	f := newUserFixture(t)
	ctx := t.Context()
	owner := f.owner(t)
	vera := f.create(t, owner, "Vera", "vera@example.com", tokend.RoleViewer)
	raw, _, err := f.svc.NewSession(ctx, vera, "", "", t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Disabled behind the service's back: SessionUser reads the user.
	if _, err := f.store.UpdateUser(ctx, vera.ID, func(u *tokend.User, _ []tokend.User) (tokend.Event, error) {
		u.Disabled = true
		return tokend.Event{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	_, _, err = f.svc.SessionUser(ctx, raw, t0, time.Hour, time.Hour)
	wantCode(t, "the session of a disabled user", err, tokend.ECodeUnauthenticated)
}

func TestEndAndSweepSessions(t *testing.T) {
	f := newUserFixture(t)
	ctx := t.Context()
	owner := f.owner(t)
	raw, _, err := f.svc.NewSession(ctx, owner, "", "", t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.EndSession(ctx, raw, "192.0.2.4"); err != nil {
		t.Fatal(err)
	}
	if f.signedIn(t, raw) {
		t.Error("an ended session still works")
	}
	if err := f.svc.EndSession(ctx, raw, "192.0.2.4"); err != nil {
		t.Errorf("ending a session twice: %v", err)
	}
	evs := f.events(t, tokend.ActionUserLogout)
	if len(evs) != 1 || evs[0].Actor != "user:"+owner.ID || evs[0].IP != "192.0.2.4" {
		t.Errorf("logout events %+v, want one by the user", evs)
	}

	for _, ttl := range []time.Duration{time.Hour, 2 * time.Hour, 10 * time.Hour} {
		if _, _, err := f.svc.NewSession(ctx, owner, "", "", t0, ttl); err != nil {
			t.Fatal(err)
		}
	}
	// At t0+90m with a 2 h idle limit, only the one-hour session is over.
	n, err := f.svc.SweepSessions(ctx, t0.Add(90*time.Minute), 2*time.Hour)
	if err != nil || n != 1 {
		t.Errorf("SweepSessions = %d, %v; want 1", n, err)
	}
	// With the default idle timeout, 30 minutes, all are idle by then.
	n, err = f.svc.SweepSessions(ctx, t0.Add(3*time.Hour), 0)
	if err != nil || n != 2 {
		t.Errorf("SweepSessions with the default idle = %d, %v; want 2", n, err)
	}
}

func ptr[T any](v T) *T { return &v }

// TestLastOwnerRace demotes two owners at once through the service: the
// rule is checked inside the store's transaction, so one must fail.
func TestLastOwnerRace(t *testing.T) {
	f := newUserFixture(t)
	owner := f.owner(t)
	second := f.create(t, owner, "Second", "second@example.com", tokend.RoleOwner)
	admins := tokend.RoleAdmin
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, id := range []string{owner.ID, second.ID} {
		wg.Go(func() {
			_, errs[i] = f.svc.UpdateUser(t.Context(), owner.Actor(""), id, manage.UserPatch{Role: &admins}, 0)
		})
	}
	wg.Wait()
	conflicts := 0
	for _, err := range errs {
		switch {
		case err == nil:
		case tokend.CodeOf(err) == tokend.ECodeConflict:
			conflicts++
		default:
			t.Errorf("UpdateUser: %v", err)
		}
	}
	if conflicts != 1 {
		t.Errorf("errors %v: want exactly one conflict", errs)
	}
}

// BenchmarkAuthenticate measures sign-in with the default argon2id cost:
// a known user with the right password (hash check plus the durable write
// of the last login), a wrong password, and an unknown email, which must
// cost about what a wrong password does.
func BenchmarkAuthenticate(b *testing.B) {
	st, err := sqlite.Open(b.Context(), b.TempDir()+"/tokend.db")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	svc := manage.New(manage.Options{Store: st})
	if _, err := svc.Setup(b.Context(), bootActor, "Ada", "ada@example.com", goodPassword); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, email, password string }{
		{"right_password", "ada@example.com", goodPassword},
		{"wrong_password", "ada@example.com", "wrong password!!"},
		{"unknown_email", "nobody@example.com", goodPassword},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				_, err := svc.Authenticate(b.Context(), c.email, c.password, "")
				if (err == nil) != (c.password == goodPassword && c.email == "ada@example.com") {
					b.Fatalf("Authenticate: %v", err)
				}
			}
		})
	}
}
