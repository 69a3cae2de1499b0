package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

// userTests check tokend.UserStore, which every backend's store implements
// beside tokend.Store.
var userTests = []test{
	users("round trip keeps every field", testUserRoundTrip),
	users("create writes its event", testUserCreateEvent),
	users("email and id conflict, whatever the case of the email", testUserConflicts),
	users("missing user is not found", testUserNotFound),
	users("list is oldest first and counts", testUserList),
	users("first user only while there is none", testFirstUser),
	users("first user: of concurrent callers exactly one wins", testFirstUserRace),
	users("update bumps version, writes the event and sees every user", testUserUpdate),
	users("update without an action writes no event", testUserUpdateNoEvent),
	users("update error changes nothing and writes no event", testUserUpdateError),
	users("update to a taken email conflicts", testUserUpdateEmailConflict),
	users("delete takes the user's sessions and writes the event", testUserDelete),
	users("delete check error changes nothing", testUserDeleteCheck),
	users("last owner: of two concurrent demotions one fails", testLastOwnerUpdateRace),
	users("last owner: of two concurrent deletions one fails", testLastOwnerDeleteRace),
	users("session round trip and lookup by hash only", testSessionRoundTrip),
	users("session of a missing user is not found; a taken hash conflicts", testSessionCreateErrors),
	users("touch moves last seen forward only", testSessionTouch),
	users("delete session is idempotent; delete user sessions is per user", testSessionDelete),
	users("expired sessions are swept, absolute and idle", testSessionSweep),
	users("a reveal is consumed once; expired records are swept", testRevealConsumeOnce),
	users("a reveal: of concurrent consumers exactly one wins", testRevealConsumeRace),
}

// users adapts a test of the UserStore half of a store.
func users(name string, run func(t *testing.T, s tokend.Store, us tokend.UserStore)) test {
	return test{name: name, run: func(t *testing.T, s tokend.Store) {
		us, ok := s.(tokend.UserStore)
		if !ok {
			t.Fatalf("%T does not implement tokend.UserStore", s)
		}
		run(t, s, us)
	}}
}

func newUser(id, email string, role tokend.Role) tokend.User {
	return tokend.User{
		ID:           id,
		Email:        email,
		Name:         "User " + id,
		Role:         role,
		PasswordHash: "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
		CreatedAt:    t0,
		UpdatedAt:    t0,
		Version:      1,
	}
}

func userEvent(action, userID string) tokend.Event {
	ev := newEvent(action, "", "")
	ev.Details = map[string]any{"user_id": userID}
	return ev
}

func mustCreateUser(t *testing.T, us tokend.UserStore, u tokend.User) {
	t.Helper()
	if err := us.CreateUser(t.Context(), u, userEvent(tokend.ActionUserCreate, u.ID)); err != nil {
		t.Fatalf("CreateUser(%s): %v", u.ID, err)
	}
}

func mustUser(t *testing.T, us tokend.UserStore, id string) tokend.User {
	t.Helper()
	u, err := us.User(t.Context(), id)
	if err != nil {
		t.Fatalf("User(%s): %v", id, err)
	}
	return u
}

func newSession(key, userID string) tokend.Session {
	return tokend.Session{
		IDHash:     hashOf("session " + key),
		UserID:     userID,
		CSRF:       "csrf-" + key,
		CreatedAt:  t0,
		LastSeenAt: t0,
		ExpiresAt:  at(12 * time.Hour),
		IP:         "192.0.2.10",
		UserAgent:  "Mozilla/5.0 (X11; Linux x86_64)",
	}
}

func mustCreateSession(t *testing.T, us tokend.UserStore, ss tokend.Session) {
	t.Helper()
	if err := us.CreateSession(t.Context(), ss); err != nil {
		t.Fatalf("CreateSession(%s): %v", ss.CSRF, err)
	}
}

// hasSession reports whether the session with this hash exists.
func hasSession(t *testing.T, us tokend.UserStore, hash []byte) bool {
	t.Helper()
	_, err := us.Session(t.Context(), hash)
	if err != nil && !errors.Is(err, tokend.ErrNotFound) {
		t.Fatalf("Session: %v", err)
	}
	return err == nil
}

func userEvents(t *testing.T, s tokend.Store, action string) []tokend.Event {
	t.Helper()
	return eventsOf(t, s, tokend.EventFilter{Action: action})
}

func testUserRoundTrip(t *testing.T, _ tokend.Store, us tokend.UserStore) {
	full := newUser("usr_full", "ada@example.com", tokend.RoleOwner)
	full.Disabled = true
	full.UpdatedAt = at(time.Hour)
	full.LastLoginAt = ptr(at(30 * time.Minute))
	full.Version = 7
	full.MailOptOut = []string{tokend.EventTokenExpired, tokend.EventWebhookDisabled}
	plain := newUser("usr_plain", "grace@example.com", tokend.RoleViewer)

	for _, u := range []tokend.User{full, plain} {
		t.Run(u.ID, func(t *testing.T) {
			mustCreateUser(t, us, u)
			got := mustUser(t, us, u.ID)
			if d := diff(u, got); d != "" {
				t.Errorf("User answered a different user (-want +got):\n%s", d)
			}
			got, err := us.UserByEmail(t.Context(), u.Email)
			if err != nil {
				t.Fatalf("UserByEmail(%s): %v", u.Email, err)
			}
			if d := diff(u, got); d != "" {
				t.Errorf("UserByEmail answered a different user (-want +got):\n%s", d)
			}
		})
	}
}

func testUserCreateEvent(t *testing.T, s tokend.Store, us tokend.UserStore) {
	ev := userEvent(tokend.ActionUserCreate, "usr_a")
	ev.Details["email"] = "ada@example.com"
	if err := us.CreateUser(t.Context(), newUser("usr_a", "ada@example.com", tokend.RoleAdmin), ev); err != nil {
		t.Fatal(err)
	}
	if d := diff([]tokend.Event{ev}, userEvents(t, s, tokend.ActionUserCreate), ignoreEventID); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
}

func testUserConflicts(t *testing.T, s tokend.Store, us tokend.UserStore) {
	mustCreateUser(t, us, newUser("usr_a", "ada@example.com", tokend.RoleOwner))
	before := countEvents(t, s)

	err := us.CreateUser(t.Context(), newUser("usr_b", "ada@example.com", tokend.RoleViewer), userEvent(tokend.ActionUserCreate, "usr_b"))
	wantErrIs(t, "CreateUser with a taken email", err, tokend.ErrConflict)
	var e *tokend.Error
	if !errors.As(err, &e) || len(e.Fields) != 1 || e.Fields[0].Field != "email" {
		t.Errorf("CreateUser with a taken email: %#v, want a conflict naming the field email", err)
	}
	// The email is unique case-insensitively, whoever stored it.
	err = us.CreateUser(t.Context(), newUser("usr_c", "Ada@Example.COM", tokend.RoleViewer), userEvent(tokend.ActionUserCreate, "usr_c"))
	wantErrIs(t, "CreateUser with the email in other case", err, tokend.ErrConflict)
	err = us.CreateUser(t.Context(), newUser("usr_a", "other@example.com", tokend.RoleViewer), userEvent(tokend.ActionUserCreate, "usr_a"))
	wantErrIs(t, "CreateUser with a taken id", err, tokend.ErrConflict)

	if n, err := us.CountUsers(t.Context()); err != nil || n != 1 {
		t.Errorf("CountUsers after conflicts = %d, %v; want 1", n, err)
	}
	if after := countEvents(t, s); after != before {
		t.Errorf("events went from %d to %d: a refused create wrote its event", before, after)
	}
}

func testUserNotFound(t *testing.T, _ tokend.Store, us tokend.UserStore) {
	mustCreateUser(t, us, newUser("usr_a", "ada@example.com", tokend.RoleOwner))
	_, err := us.User(t.Context(), "usr_nope")
	wantErrIs(t, "User(missing)", err, tokend.ErrNotFound)
	_, err = us.UserByEmail(t.Context(), "nobody@example.com")
	wantErrIs(t, "UserByEmail(missing)", err, tokend.ErrNotFound)
	_, err = us.UpdateUser(t.Context(), "usr_nope", func(u *tokend.User, _ []tokend.User) (tokend.Event, error) {
		t.Error("UpdateUser ran fn for a missing user")
		return tokend.Event{}, nil
	})
	wantErrIs(t, "UpdateUser(missing)", err, tokend.ErrNotFound)
	err = us.DeleteUser(t.Context(), "usr_nope", func(tokend.User, []tokend.User) error {
		t.Error("DeleteUser ran check for a missing user")
		return nil
	}, userEvent(tokend.ActionUserDelete, "usr_nope"))
	wantErrIs(t, "DeleteUser(missing)", err, tokend.ErrNotFound)
}

func testUserList(t *testing.T, _ tokend.Store, us tokend.UserStore) {
	got, err := us.Users(t.Context())
	if err != nil || len(got) != 0 {
		t.Fatalf("Users on an empty store = %v, %v; want none", got, err)
	}
	if n, err := us.CountUsers(t.Context()); err != nil || n != 0 {
		t.Fatalf("CountUsers on an empty store = %d, %v; want 0", n, err)
	}
	// Created out of order: the list sorts by created_at, then id.
	c := newUser("usr_c", "c@example.com", tokend.RoleViewer)
	c.CreatedAt = at(2 * time.Hour)
	b := newUser("usr_b", "b@example.com", tokend.RoleAdmin)
	b.CreatedAt = at(time.Hour)
	a2 := newUser("usr_a2", "a2@example.com", tokend.RoleOwner)
	a1 := newUser("usr_a1", "a1@example.com", tokend.RoleOwner)
	for _, u := range []tokend.User{c, b, a2, a1} {
		mustCreateUser(t, us, u)
	}
	got, err = us.Users(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if d := diff([]tokend.User{a1, a2, b, c}, got); d != "" {
		t.Errorf("Users (-want +got):\n%s", d)
	}
	if n, err := us.CountUsers(t.Context()); err != nil || n != 4 {
		t.Errorf("CountUsers = %d, %v; want 4", n, err)
	}
}

func testFirstUser(t *testing.T, s tokend.Store, us tokend.UserStore) {
	first := newUser("usr_first", "ada@example.com", tokend.RoleOwner)
	ev := userEvent(tokend.ActionUserSetup, first.ID)
	if err := us.CreateFirstUser(t.Context(), first, ev); err != nil {
		t.Fatalf("CreateFirstUser on an empty store: %v", err)
	}
	if d := diff(first, mustUser(t, us, first.ID)); d != "" {
		t.Errorf("first user (-want +got):\n%s", d)
	}
	if d := diff([]tokend.Event{ev}, userEvents(t, s, tokend.ActionUserSetup), ignoreEventID); d != "" {
		t.Errorf("setup events (-want +got):\n%s", d)
	}
	err := us.CreateFirstUser(t.Context(), newUser("usr_second", "grace@example.com", tokend.RoleOwner), userEvent(tokend.ActionUserSetup, "usr_second"))
	wantErrIs(t, "a second CreateFirstUser", err, tokend.ErrConflict)
	if n := len(userEvents(t, s, tokend.ActionUserSetup)); n != 1 {
		t.Errorf("%d setup events after a refused CreateFirstUser, want 1", n)
	}
	if n, err := us.CountUsers(t.Context()); err != nil || n != 1 {
		t.Errorf("CountUsers = %d, %v; want 1", n, err)
	}
}

func testFirstUserRace(t *testing.T, s tokend.Store, us tokend.UserStore) {
	const n = 8
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make([]error, n)
	)
	var ready sync.WaitGroup
	ready.Add(n)
	for i := range n {
		wg.Go(func() {
			// Warm the store's connections first, so that the callers
			// start together rather than one by one as each connects.
			if err := s.Ping(t.Context()); err != nil {
				t.Errorf("Ping: %v", err)
			}
			ready.Done()
			<-start
			u := newUser(fmt.Sprintf("usr_%d", i), fmt.Sprintf("u%d@example.com", i), tokend.RoleOwner)
			errs[i] = us.CreateFirstUser(t.Context(), u, userEvent(tokend.ActionUserSetup, u.ID))
		})
	}
	ready.Wait()
	close(start)
	wg.Wait()
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, tokend.ErrConflict):
			t.Errorf("caller %d: %v, want nil or ErrConflict", i, err)
		}
	}
	if wins != 1 {
		t.Errorf("%d of %d concurrent CreateFirstUser calls won, want exactly 1", wins, n)
	}
	if c, err := us.CountUsers(t.Context()); err != nil || c != 1 {
		t.Errorf("CountUsers = %d, %v; want 1", c, err)
	}
	if e := len(userEvents(t, s, tokend.ActionUserSetup)); e != 1 {
		t.Errorf("%d setup events, want 1", e)
	}
}

func testUserUpdate(t *testing.T, s tokend.Store, us tokend.UserStore) {
	mustCreateUser(t, us, newUser("usr_a", "ada@example.com", tokend.RoleOwner))
	mustCreateUser(t, us, newUser("usr_b", "grace@example.com", tokend.RoleViewer))
	ev := userEvent(tokend.ActionUserUpdate, "usr_b")
	ev.Details["role"] = map[string]any{"from": "viewer", "to": "admin"}
	var seen []tokend.User
	got, err := us.UpdateUser(t.Context(), "usr_b", func(u *tokend.User, all []tokend.User) (tokend.Event, error) {
		seen = all
		u.Role = tokend.RoleAdmin
		u.Name = "Grace Hopper"
		u.PasswordHash = "$argon2id$v=19$m=64,t=1,p=1$bmV3c2FsdG5ld3NhbHQ$bmV3aGFzaG5ld2hhc2huZXdoYXNobmV3aGFzaG5ld2g"
		u.LastLoginAt = ptr(at(time.Minute))
		u.UpdatedAt = at(time.Hour)
		u.MailOptOut = []string{tokend.EventTokenExpiring}
		u.ID, u.Version = "usr_other", 99 // the store's to keep
		return ev, nil
	})
	if err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	want := newUser("usr_b", "grace@example.com", tokend.RoleAdmin)
	want.Name = "Grace Hopper"
	want.PasswordHash = "$argon2id$v=19$m=64,t=1,p=1$bmV3c2FsdG5ld3NhbHQ$bmV3aGFzaG5ld2hhc2huZXdoYXNobmV3aGFzaG5ld2g"
	want.LastLoginAt = ptr(at(time.Minute))
	want.UpdatedAt = at(time.Hour)
	want.MailOptOut = []string{tokend.EventTokenExpiring}
	want.Version = 2
	if d := diff(want, got); d != "" {
		t.Errorf("UpdateUser answered (-want +got):\n%s", d)
	}
	if d := diff(want, mustUser(t, us, "usr_b")); d != "" {
		t.Errorf("stored after UpdateUser (-want +got):\n%s", d)
	}
	if d := diff([]string{"usr_a", "usr_b"}, userIDs(seen)); d != "" {
		t.Errorf("fn saw users (-want +got):\n%s", d)
	}
	if d := diff([]tokend.Event{ev}, userEvents(t, s, tokend.ActionUserUpdate), ignoreEventID); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
	if a := mustUser(t, us, "usr_a"); a.Version != 1 {
		t.Errorf("the other user's version is %d, want 1", a.Version)
	}
}

func testUserUpdateNoEvent(t *testing.T, s tokend.Store, us tokend.UserStore) {
	mustCreateUser(t, us, newUser("usr_a", "ada@example.com", tokend.RoleOwner))
	before := countEvents(t, s)
	got, err := us.UpdateUser(t.Context(), "usr_a", func(u *tokend.User, _ []tokend.User) (tokend.Event, error) {
		u.LastLoginAt = ptr(at(time.Minute))
		return tokend.Event{}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 2 || got.LastLoginAt == nil {
		t.Errorf("UpdateUser = version %d, last login %v; want 2 and set", got.Version, got.LastLoginAt)
	}
	if after := countEvents(t, s); after != before {
		t.Errorf("events went from %d to %d for an update without an action", before, after)
	}
}

func testUserUpdateError(t *testing.T, s tokend.Store, us tokend.UserStore) {
	u := newUser("usr_a", "ada@example.com", tokend.RoleOwner)
	mustCreateUser(t, us, u)
	before := countEvents(t, s)
	_, err := us.UpdateUser(t.Context(), "usr_a", func(u *tokend.User, _ []tokend.User) (tokend.Event, error) {
		u.Role = tokend.RoleViewer
		return userEvent(tokend.ActionUserUpdate, "usr_a"), errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Errorf("UpdateUser with a failing fn: %v, want fn's error", err)
	}
	if d := diff(u, mustUser(t, us, "usr_a")); d != "" {
		t.Errorf("a failed update changed the user (-want +got):\n%s", d)
	}
	if after := countEvents(t, s); after != before {
		t.Errorf("events went from %d to %d after a failed update", before, after)
	}
}

func testUserUpdateEmailConflict(t *testing.T, _ tokend.Store, us tokend.UserStore) {
	mustCreateUser(t, us, newUser("usr_a", "ada@example.com", tokend.RoleOwner))
	mustCreateUser(t, us, newUser("usr_b", "grace@example.com", tokend.RoleViewer))
	_, err := us.UpdateUser(t.Context(), "usr_b", func(u *tokend.User, _ []tokend.User) (tokend.Event, error) {
		u.Email = "ada@example.com"
		return userEvent(tokend.ActionUserUpdate, "usr_b"), nil
	})
	wantErrIs(t, "UpdateUser to a taken email", err, tokend.ErrConflict)
	if b := mustUser(t, us, "usr_b"); b.Email != "grace@example.com" || b.Version != 1 {
		t.Errorf("after a refused update: %s version %d, want grace@example.com version 1", b.Email, b.Version)
	}
	// Its own email, in another case, is not a conflict with itself.
	if _, err := us.UpdateUser(t.Context(), "usr_b", func(u *tokend.User, _ []tokend.User) (tokend.Event, error) {
		u.Email = "grace.hopper@example.com"
		return tokend.Event{}, nil
	}); err != nil {
		t.Errorf("UpdateUser to a free email: %v", err)
	}
}

func testUserDelete(t *testing.T, s tokend.Store, us tokend.UserStore) {
	mustCreateUser(t, us, newUser("usr_a", "ada@example.com", tokend.RoleOwner))
	mustCreateUser(t, us, newUser("usr_b", "grace@example.com", tokend.RoleViewer))
	mustCreateSession(t, us, newSession("b1", "usr_b"))
	mustCreateSession(t, us, newSession("b2", "usr_b"))
	mustCreateSession(t, us, newSession("a1", "usr_a"))

	ev := userEvent(tokend.ActionUserDelete, "usr_b")
	var checked tokend.User
	var seen []tokend.User
	err := us.DeleteUser(t.Context(), "usr_b", func(u tokend.User, all []tokend.User) error {
		checked, seen = u, all
		return nil
	}, ev)
	if err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	if checked.ID != "usr_b" || checked.Email != "grace@example.com" {
		t.Errorf("check saw %+v, want the stored usr_b", checked)
	}
	if d := diff([]string{"usr_a", "usr_b"}, userIDs(seen)); d != "" {
		t.Errorf("check saw users (-want +got):\n%s", d)
	}
	_, err = us.User(t.Context(), "usr_b")
	wantErrIs(t, "User after delete", err, tokend.ErrNotFound)
	for _, k := range []string{"b1", "b2"} {
		if hasSession(t, us, hashOf("session "+k)) {
			t.Errorf("session %s of the deleted user survived", k)
		}
	}
	if !hasSession(t, us, hashOf("session a1")) {
		t.Error("the other user's session went with the deleted user")
	}
	if d := diff([]tokend.Event{ev}, userEvents(t, s, tokend.ActionUserDelete), ignoreEventID); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
	// The email is free again.
	mustCreateUser(t, us, newUser("usr_c", "grace@example.com", tokend.RoleViewer))
}

func testUserDeleteCheck(t *testing.T, s tokend.Store, us tokend.UserStore) {
	mustCreateUser(t, us, newUser("usr_a", "ada@example.com", tokend.RoleOwner))
	mustCreateSession(t, us, newSession("a1", "usr_a"))
	before := countEvents(t, s)
	err := us.DeleteUser(t.Context(), "usr_a", func(tokend.User, []tokend.User) error { return errBoom },
		userEvent(tokend.ActionUserDelete, "usr_a"))
	if !errors.Is(err, errBoom) {
		t.Errorf("DeleteUser with a failing check: %v, want the check's error", err)
	}
	mustUser(t, us, "usr_a")
	if !hasSession(t, us, hashOf("session a1")) {
		t.Error("a refused delete ended the user's session")
	}
	if after := countEvents(t, s); after != before {
		t.Errorf("events went from %d to %d after a refused delete", before, after)
	}
}

// activeOwnersBut counts the enabled owners in all other than id: the rule
// the service checks inside the transaction.
func activeOwnersBut(all []tokend.User, id string) int {
	n := 0
	for _, u := range all {
		if u.ID != id && u.Role == tokend.RoleOwner && !u.Disabled {
			n++
		}
	}
	return n
}

var errLastOwner = errors.New("the last owner must stay an owner")

// rendezvous lets two transactions meet inside their callbacks when the
// store lets them both in at once, so that a store that does not serialize
// them shows it every time. A store that does keeps the first waiting for
// the grace period only; the outcome asserted does not depend on it.
type rendezvous struct {
	mu   sync.Mutex
	n    int
	both chan struct{}
}

func newRendezvous() *rendezvous { return &rendezvous{both: make(chan struct{})} }

func (r *rendezvous) meet() {
	r.mu.Lock()
	r.n++
	if r.n == 2 {
		close(r.both)
	}
	r.mu.Unlock()
	grace := time.NewTimer(200 * time.Millisecond)
	defer grace.Stop()
	select {
	case <-r.both:
	case <-grace.C:
	}
}

// twoOwners makes the owners the last-owner races fight over, plus a
// viewer.
func twoOwners(t *testing.T, us tokend.UserStore) {
	mustCreateUser(t, us, newUser("usr_o1", "o1@example.com", tokend.RoleOwner))
	mustCreateUser(t, us, newUser("usr_o2", "o2@example.com", tokend.RoleOwner))
	mustCreateUser(t, us, newUser("usr_v", "v@example.com", tokend.RoleViewer))
}

// race runs op for both owners at once and checks that exactly one was
// refused with errLastOwner, and that one owner remains.
func race(t *testing.T, us tokend.UserStore, op func(id string, r *rendezvous) error) {
	r := newRendezvous()
	ids := []string{"usr_o1", "usr_o2"}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, id := range ids {
		wg.Go(func() {
			<-start
			errs[i] = op(id, r)
		})
	}
	close(start)
	wg.Wait()
	ok, refused := 0, 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, errLastOwner):
			refused++
		default:
			t.Errorf("change of %s: %v", ids[i], err)
		}
	}
	if ok != 1 || refused != 1 {
		t.Errorf("%d changes passed and %d were refused, want 1 and 1 (errors %v)", ok, refused, errs)
	}
	all, err := us.Users(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n := activeOwnersBut(all, ""); n != 1 {
		t.Errorf("%d active owners remain, want 1", n)
	}
}

func testLastOwnerUpdateRace(t *testing.T, _ tokend.Store, us tokend.UserStore) {
	twoOwners(t, us)
	race(t, us, func(id string, r *rendezvous) error {
		_, err := us.UpdateUser(t.Context(), id, func(u *tokend.User, all []tokend.User) (tokend.Event, error) {
			r.meet()
			if activeOwnersBut(all, u.ID) == 0 {
				return tokend.Event{}, errLastOwner
			}
			u.Role = tokend.RoleAdmin
			return userEvent(tokend.ActionUserUpdate, id), nil
		})
		return err
	})
}

func testLastOwnerDeleteRace(t *testing.T, _ tokend.Store, us tokend.UserStore) {
	twoOwners(t, us)
	race(t, us, func(id string, r *rendezvous) error {
		return us.DeleteUser(t.Context(), id, func(u tokend.User, all []tokend.User) error {
			r.meet()
			if activeOwnersBut(all, u.ID) == 0 {
				return errLastOwner
			}
			return nil
		}, userEvent(tokend.ActionUserDelete, id))
	})
}

func testSessionRoundTrip(t *testing.T, _ tokend.Store, us tokend.UserStore) {
	mustCreateUser(t, us, newUser("usr_a", "ada@example.com", tokend.RoleOwner))
	ss := newSession("a1", "usr_a")
	ss.LastSeenAt = at(time.Minute)
	mustCreateSession(t, us, ss)
	got, err := us.Session(t.Context(), ss.IDHash)
	if err != nil {
		t.Fatalf("Session: %v", err)
	}
	if d := diff(ss, got); d != "" {
		t.Errorf("Session (-want +got):\n%s", d)
	}
	other := bytes.Clone(ss.IDHash)
	other[0] ^= 1
	_, err = us.Session(t.Context(), other)
	wantErrIs(t, "Session with another hash", err, tokend.ErrNotFound)
}

func testSessionCreateErrors(t *testing.T, _ tokend.Store, us tokend.UserStore) {
	err := us.CreateSession(t.Context(), newSession("x", "usr_nope"))
	wantErrIs(t, "CreateSession for a missing user", err, tokend.ErrNotFound)
	mustCreateUser(t, us, newUser("usr_a", "ada@example.com", tokend.RoleOwner))
	mustCreateSession(t, us, newSession("a1", "usr_a"))
	dup := newSession("a1", "usr_a")
	dup.CSRF = "another"
	err = us.CreateSession(t.Context(), dup)
	wantErrIs(t, "CreateSession with a taken hash", err, tokend.ErrConflict)
	if got, err := us.Session(t.Context(), dup.IDHash); err != nil || got.CSRF != "csrf-a1" {
		t.Errorf("after a refused create: %+v, %v; want the first session", got, err)
	}
}

func testSessionTouch(t *testing.T, _ tokend.Store, us tokend.UserStore) {
	mustCreateUser(t, us, newUser("usr_a", "ada@example.com", tokend.RoleOwner))
	ss := newSession("a1", "usr_a")
	mustCreateSession(t, us, ss)
	for _, c := range []struct {
		touch, want time.Time
	}{
		{at(5 * time.Minute), at(5 * time.Minute)},
		{at(3 * time.Minute), at(5 * time.Minute)}, // late and older: ignored
		{at(9 * time.Minute), at(9 * time.Minute)},
	} {
		if err := us.TouchSession(t.Context(), ss.IDHash, c.touch); err != nil {
			t.Fatalf("TouchSession: %v", err)
		}
		got, err := us.Session(t.Context(), ss.IDHash)
		if err != nil {
			t.Fatal(err)
		}
		if !got.LastSeenAt.Equal(c.want) {
			t.Errorf("after touching at %v: last seen %v, want %v", c.touch, got.LastSeenAt, c.want)
		}
		if !got.ExpiresAt.Equal(ss.ExpiresAt) || !got.CreatedAt.Equal(ss.CreatedAt) {
			t.Errorf("touch moved the session's absolute times: %+v", got)
		}
	}
	err := us.TouchSession(t.Context(), hashOf("no such session"), t0)
	wantErrIs(t, "TouchSession(missing)", err, tokend.ErrNotFound)
}

func testSessionDelete(t *testing.T, _ tokend.Store, us tokend.UserStore) {
	mustCreateUser(t, us, newUser("usr_a", "ada@example.com", tokend.RoleOwner))
	mustCreateUser(t, us, newUser("usr_b", "grace@example.com", tokend.RoleViewer))
	for _, k := range []string{"a1", "a2"} {
		mustCreateSession(t, us, newSession(k, "usr_a"))
	}
	for _, k := range []string{"b1", "b2"} {
		mustCreateSession(t, us, newSession(k, "usr_b"))
	}
	if err := us.DeleteSession(t.Context(), hashOf("session a1")); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	if hasSession(t, us, hashOf("session a1")) {
		t.Error("the deleted session is still there")
	}
	if err := us.DeleteSession(t.Context(), hashOf("session a1")); err != nil {
		t.Errorf("DeleteSession of a session already gone: %v, want nil", err)
	}
	if err := us.DeleteUserSessions(t.Context(), "usr_b"); err != nil {
		t.Fatalf("DeleteUserSessions: %v", err)
	}
	for k, want := range map[string]bool{"a2": true, "b1": false, "b2": false} {
		if got := hasSession(t, us, hashOf("session "+k)); got != want {
			t.Errorf("session %s exists: %v, want %v", k, got, want)
		}
	}
	if err := us.DeleteUserSessions(t.Context(), "usr_b"); err != nil {
		t.Errorf("DeleteUserSessions of a user without sessions: %v, want nil", err)
	}
	mustUser(t, us, "usr_b") // the user stays
}

func testSessionSweep(t *testing.T, _ tokend.Store, us tokend.UserStore) {
	mustCreateUser(t, us, newUser("usr_a", "ada@example.com", tokend.RoleOwner))
	now := at(10 * time.Hour)
	const idle = 30 * time.Minute
	sessions := []struct {
		key       string
		lastSeen  time.Time
		expiresAt time.Time
		kept      bool
	}{
		{"fresh", now.Add(-time.Minute), now.Add(time.Hour), true},
		{"idle at the limit", now.Add(-idle), now.Add(time.Hour), true},
		{"idle too long", now.Add(-idle - time.Microsecond), now.Add(time.Hour), false},
		{"past its end", now.Add(-time.Minute), now.Add(-time.Microsecond), false},
		{"ending now", now.Add(-time.Minute), now, true},
		{"both", now.Add(-2 * idle), now.Add(-time.Hour), false},
	}
	for _, c := range sessions {
		ss := newSession(c.key, "usr_a")
		ss.LastSeenAt, ss.ExpiresAt = c.lastSeen, c.expiresAt
		mustCreateSession(t, us, ss)
	}
	n, err := us.DeleteExpiredSessions(t.Context(), now, idle)
	if err != nil {
		t.Fatalf("DeleteExpiredSessions: %v", err)
	}
	if n != 3 {
		t.Errorf("DeleteExpiredSessions = %d, want 3", n)
	}
	for _, c := range sessions {
		if got := hasSession(t, us, hashOf("session "+c.key)); got != c.kept {
			t.Errorf("session %q kept: %v, want %v", c.key, got, c.kept)
		}
	}
	if n, err := us.DeleteExpiredSessions(t.Context(), now, idle); err != nil || n != 0 {
		t.Errorf("a second sweep = %d, %v; want 0", n, err)
	}
}

func userIDs(us []tokend.User) []string {
	ids := []string{}
	for _, u := range us {
		ids = append(ids, u.ID)
	}
	return ids
}
