package manage

// The user service: dashboard users, their roles and passwords, sign-in,
// and sessions. The dashboard calls only this; it never reaches the
// UserStore itself, so every rule below holds whatever page is used.
//
// Rules:
//   - Managing users takes users:write, and nobody gives or manages a role
//     whose permissions they do not all hold (an admin token with
//     users:write but not tokens:delete cannot make an owner).
//   - A user may change their own password without users:write, giving the
//     current one.
//   - The last active owner can be neither demoted, disabled nor deleted;
//     the check runs inside the store's transaction, against every user.
//   - Sign-in answers one error for every failure and spends the same
//     argon2id work whether or not the email exists.
//   - Sessions are kept by the SHA-256 of their id; the id itself goes only
//     to the browser.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"maps"
	"net/mail"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/password"
	"github.com/tokend/tokend/secret"
)

// Session timeouts used when a caller passes zero.
const (
	DefaultSessionIdle     = 30 * time.Minute
	DefaultSessionAbsolute = 12 * time.Hour
)

// MaxEmailLen is the longest email address a user may have.
const MaxEmailLen = 254

// touchEvery is how stale a session's LastSeenAt may get before a request
// writes it again: an idle timeout of minutes needs no write per request.
const touchEvery = time.Minute

// UserInput is what creating a user takes.
type UserInput struct {
	Name     string
	Email    string
	Role     tokend.Role
	Password string
}

// UserPatch is an edit of a user: nil fields stay as they are.
type UserPatch struct {
	Name     *string
	Role     *tokend.Role
	Disabled *bool
	Password *string
	// CurrentPassword is required when users change their own password.
	CurrentPassword string
}

func (p UserPatch) empty() bool {
	return p.Name == nil && p.Role == nil && p.Disabled == nil && p.Password == nil
}

// userState is what the user service keeps beside the lifecycle service.
type userState struct {
	store tokend.UserStore
	pw    password.Params
	// dummy is a hash that no password matches, checked for unknown
	// emails so that they cost as much as known ones.
	dummy func() string
}

func newUserState(o Options) userState {
	st := o.Users
	if st == nil {
		st, _ = o.Store.(tokend.UserStore)
	}
	pw := password.Default
	if o.Password != nil {
		pw = *o.Password
	}
	return userState{store: st, pw: pw, dummy: sync.OnceValue(func() string {
		h, err := password.HashWith(rand.Text(), pw)
		if err != nil {
			// Bad parameters: Hash fails the same way for real users.
			return ""
		}
		return h
	})}
}

var (
	// errSignIn is the one answer to every failed sign-in.
	errSignIn = tokend.Errorf(tokend.ECodeUnauthenticated, "the email or password is not right")
	// errNoSession answers a session id that is unknown, expired or ended.
	errNoSession = tokend.Errorf(tokend.ECodeUnauthenticated, "not signed in, or the session has ended")
	errSetupDone = tokend.Errorf(tokend.ECodeConflict, "setup is done: a user exists already; sign in instead")
)

func (s *Service) userStore() (tokend.UserStore, error) {
	if s.users.store == nil {
		return nil, tokend.Internal(errors.New("manage: no user store configured"))
	}
	return s.users.store, nil
}

// NeedsSetup reports whether no user exists yet, so that the dashboard
// offers the first-run setup.
func (s *Service) NeedsSetup(ctx context.Context) (bool, error) {
	st, err := s.userStore()
	if err != nil {
		return false, err
	}
	n, err := st.CountUsers(ctx)
	if err != nil {
		return false, storeErr(err, "user")
	}
	return n == 0, nil
}

// Setup creates the first user, an owner, while no user exists. The actor
// is the bootstrap admin token the person pasted, which must hold every
// permission of an owner; the audit log names it. Setup signs the owner
// in, so the owner's last sign-in is the setup's time.
func (s *Service) Setup(ctx context.Context, boot tokend.Actor, name, email, pw string) (tokend.User, error) {
	if err := refuseScoped(boot, "manage users"); err != nil {
		return tokend.User{}, err
	}
	if err := boot.Require(tokend.PermUsersWrite); err != nil {
		return tokend.User{}, err
	}
	if err := requireRole(boot, tokend.RoleOwner); err != nil {
		return tokend.User{}, err
	}
	st, err := s.userStore()
	if err != nil {
		return tokend.User{}, err
	}
	if n, err := st.CountUsers(ctx); err != nil {
		return tokend.User{}, storeErr(err, "user")
	} else if n > 0 {
		return tokend.User{}, errSetupDone
	}
	u, err := s.newUser(UserInput{Name: name, Email: email, Role: tokend.RoleOwner, Password: pw})
	if err != nil {
		return tokend.User{}, err
	}
	// The dashboard signs the new owner in at once: that is their first
	// sign-in.
	signedIn := u.CreatedAt
	u.LastLoginAt = &signedIn
	ev := s.event(boot, tokend.ActionUserSetup, "", "", userDetails(u))
	if err := st.CreateFirstUser(ctx, u, ev); errors.Is(err, tokend.ErrConflict) {
		return tokend.User{}, errSetupDone // another request won the race
	} else if err != nil {
		return tokend.User{}, storeErr(err, "user")
	}
	s.log.InfoContext(ctx, "first user set up", "user_id", u.ID, "actor", boot.Ref())
	return presentUser(u), nil
}

// CreateUser adds a user. It takes users:write, and the actor must hold
// every permission of the role given.
func (s *Service) CreateUser(ctx context.Context, a tokend.Actor, in UserInput) (tokend.User, error) {
	if err := refuseScoped(a, "manage users"); err != nil {
		return tokend.User{}, err
	}
	if err := a.Require(tokend.PermUsersWrite); err != nil {
		return tokend.User{}, err
	}
	if in.Role.Valid() {
		if err := requireRole(a, in.Role); err != nil {
			return tokend.User{}, err
		}
	}
	st, err := s.userStore()
	if err != nil {
		return tokend.User{}, err
	}
	u, err := s.newUser(in)
	if err != nil {
		return tokend.User{}, err
	}
	ev := s.event(a, tokend.ActionUserCreate, "", "", userDetails(u))
	if err := st.CreateUser(ctx, u, ev); errors.Is(err, tokend.ErrConflict) {
		return tokend.User{}, emailTaken()
	} else if err != nil {
		return tokend.User{}, storeErr(err, "user")
	}
	return presentUser(u), nil
}

// newUser validates in and answers the user to store, password hashed.
func (s *Service) newUser(in UserInput) (tokend.User, error) {
	email := NormalizeEmail(in.Email)
	var p tokend.Problems
	tokend.CheckName(&p, "name", strings.TrimSpace(in.Name)) // kept trimmed
	CheckEmail(&p, "email", email)
	checkRole(&p, "role", in.Role)
	password.Check(&p, "password", in.Password)
	if err := p.Err(); err != nil {
		return tokend.User{}, err
	}
	hash, err := password.HashWith(in.Password, s.users.pw)
	if err != nil {
		return tokend.User{}, tokend.Internal(err)
	}
	id, err := secret.NewID("usr")
	if err != nil {
		return tokend.User{}, tokend.Internal(err)
	}
	now := s.Now()
	return tokend.User{
		ID: id, Email: email, Name: strings.TrimSpace(in.Name), Role: in.Role, PasswordHash: hash,
		CreatedAt: now, UpdatedAt: now, Version: 1,
	}, nil
}

// Users lists every user, oldest first. It takes users:write: the list
// is the owners' tool.
func (s *Service) Users(ctx context.Context, a tokend.Actor) ([]tokend.User, error) {
	if err := refuseScoped(a, "manage users"); err != nil {
		return nil, err
	}
	if err := a.Require(tokend.PermUsersWrite); err != nil {
		return nil, err
	}
	st, err := s.userStore()
	if err != nil {
		return nil, err
	}
	us, err := st.Users(ctx)
	if err != nil {
		return nil, storeErr(err, "user")
	}
	out := make([]tokend.User, 0, len(us))
	for _, u := range us {
		out = append(out, presentUser(u))
	}
	return out, nil
}

// User answers one user: anyone may read themselves; reading others takes
// users:write.
func (s *Service) User(ctx context.Context, a tokend.Actor, id string) (tokend.User, error) {
	if err := refuseScoped(a, "manage users"); err != nil {
		return tokend.User{}, err
	}
	if err := checkID(id, "user"); err != nil {
		return tokend.User{}, err
	}
	if !isSelf(a, id) {
		if err := a.Require(tokend.PermUsersWrite); err != nil {
			return tokend.User{}, err
		}
	}
	st, err := s.userStore()
	if err != nil {
		return tokend.User{}, err
	}
	u, err := st.User(ctx, id)
	if err != nil {
		return tokend.User{}, storeErr(err, "user")
	}
	return presentUser(u), nil
}

// UpdateUser edits a user; version, when not zero, must be the stored one.
// It takes users:write, except for users changing their own password.
// Disabling a user, or changing their role or password, ends their
// sessions (the caller's own included, when they changed themselves).
func (s *Service) UpdateUser(ctx context.Context, a tokend.Actor, id string, patch UserPatch, version int64) (tokend.User, error) {
	if err := refuseScoped(a, "manage users"); err != nil {
		return tokend.User{}, err
	}
	if err := checkID(id, "user"); err != nil {
		return tokend.User{}, err
	}
	self := isSelf(a, id)
	ownPassword := self && patch.Password != nil && patch.Name == nil && patch.Role == nil && patch.Disabled == nil
	if !ownPassword {
		if err := a.Require(tokend.PermUsersWrite); err != nil {
			return tokend.User{}, err
		}
	}
	st, err := s.userStore()
	if err != nil {
		return tokend.User{}, err
	}
	var p tokend.Problems
	if patch.Name != nil {
		tokend.CheckName(&p, "name", strings.TrimSpace(*patch.Name)) // kept trimmed
	}
	if patch.Role != nil {
		checkRole(&p, "role", *patch.Role)
	}
	if patch.Password != nil {
		password.Check(&p, "password", *patch.Password)
	}
	if err := p.Err(); err != nil {
		return tokend.User{}, err
	}
	if patch.Role != nil {
		if err := requireRole(a, *patch.Role); err != nil {
			return tokend.User{}, err
		}
	}
	if patch.empty() {
		return s.User(ctx, a, id)
	}

	// argon2id is slow on purpose: it runs before the transaction, which
	// locks every user.
	var oldHash, newHash string
	if patch.Password != nil {
		if self {
			cur, err := st.User(ctx, id)
			if err != nil {
				return tokend.User{}, storeErr(err, "user")
			}
			ok, _, _ := password.VerifyWith(patch.CurrentPassword, cur.PasswordHash, s.users.pw)
			if !ok {
				var p tokend.Problems
				p.Add("current_password", "is not your current password")
				return tokend.User{}, p.Err()
			}
			oldHash = cur.PasswordHash
		}
		if newHash, err = password.HashWith(*patch.Password, s.users.pw); err != nil {
			return tokend.User{}, tokend.Internal(err)
		}
	}

	now := s.Now()
	var endSessions bool
	u, err := st.UpdateUser(ctx, id, func(u *tokend.User, all []tokend.User) (tokend.Event, error) {
		if err := versionCheck(version, u.Version); err != nil {
			return tokend.Event{}, err
		}
		if !ownPassword {
			if err := requireRole(a, u.Role); err != nil {
				return tokend.Event{}, err
			}
		}
		before := *u
		d := map[string]any{"user_id": u.ID, "email": u.Email}
		if patch.Name != nil && strings.TrimSpace(*patch.Name) != u.Name {
			change(d, "name", u.Name, strings.TrimSpace(*patch.Name))
			u.Name = strings.TrimSpace(*patch.Name)
		}
		if patch.Role != nil && *patch.Role != u.Role {
			change(d, "role", u.Role, *patch.Role)
			u.Role = *patch.Role
			endSessions = true
		}
		if patch.Disabled != nil && *patch.Disabled != u.Disabled {
			change(d, "disabled", u.Disabled, *patch.Disabled)
			u.Disabled = *patch.Disabled
			endSessions = endSessions || u.Disabled
		}
		if newHash != "" {
			if oldHash != "" && u.PasswordHash != oldHash {
				// Changed since the current password was checked.
				return tokend.Event{}, tokend.ErrStale
			}
			d["password"] = "changed" // never the hash
			u.PasswordHash = newHash
			endSessions = true
		}
		if len(d) == 2 {
			return tokend.Event{}, errNothing
		}
		if err := keepAnOwner(all, before, u); err != nil {
			return tokend.Event{}, err
		}
		u.UpdatedAt = now
		return s.event(a, tokend.ActionUserUpdate, "", "", d), nil
	})
	if errors.Is(err, errNothing) {
		return s.User(ctx, a, id)
	}
	if err != nil {
		return tokend.User{}, storeErr(err, "user")
	}
	if endSessions {
		s.endUserSessions(ctx, st, id)
	}
	return presentUser(u), nil
}

// DeleteUser deletes a user and their sessions; version, when not zero,
// must be the stored one.
func (s *Service) DeleteUser(ctx context.Context, a tokend.Actor, id string, version int64) error {
	if err := refuseScoped(a, "manage users"); err != nil {
		return err
	}
	if err := checkID(id, "user"); err != nil {
		return err
	}
	if err := a.Require(tokend.PermUsersWrite); err != nil {
		return err
	}
	st, err := s.userStore()
	if err != nil {
		return err
	}
	// The event goes to the store before the transaction reads the user;
	// check fills in who it was, in the map the event shares, before the
	// store writes it (a check that fails writes nothing).
	details := map[string]any{"user_id": id}
	ev := s.event(a, tokend.ActionUserDelete, "", "", details)
	check := func(u tokend.User, all []tokend.User) error {
		if err := versionCheck(version, u.Version); err != nil {
			return err
		}
		if err := requireRole(a, u.Role); err != nil {
			return err
		}
		if err := keepAnOwner(all, u, nil); err != nil {
			return err
		}
		maps.Copy(details, userDetails(u))
		return nil
	}
	if err := st.DeleteUser(ctx, id, check, ev); err != nil {
		return storeErr(err, "user")
	}
	s.log.InfoContext(ctx, "user deleted", "user_id", id, "actor", a.Ref())
	return nil
}

// Authenticate checks an email and password and answers the user. Every
// failure, unknown email, wrong password or disabled user alike, answers
// the same error after the same argon2id work, so that sign-in does not
// tell who has an account. Success records the time and an audit entry,
// and upgrades the stored hash when its parameters are outdated.
func (s *Service) Authenticate(ctx context.Context, email, pw, ip string) (tokend.User, error) {
	st, err := s.userStore()
	if err != nil {
		return tokend.User{}, err
	}
	email = NormalizeEmail(email)
	var u tokend.User
	if email != "" && len(email) <= MaxEmailLen {
		u, err = st.UserByEmail(ctx, email)
	} else {
		err = tokend.ErrNotFound
	}
	if errors.Is(err, tokend.ErrNotFound) {
		password.VerifyWith(pw, s.users.dummy(), s.users.pw)
		return tokend.User{}, errSignIn
	}
	if err != nil {
		return tokend.User{}, storeErr(err, "user")
	}
	ok, rehash, err := password.VerifyWith(pw, u.PasswordHash, s.users.pw)
	if err != nil {
		s.log.ErrorContext(ctx, "stored password hash unreadable", "user_id", u.ID, "err", err)
	}
	if !ok || u.Disabled {
		return tokend.User{}, errSignIn
	}
	var newHash string
	if rehash {
		if h, err := password.HashWith(pw, s.users.pw); err == nil {
			newHash = h
		}
	}
	now := s.Now()
	u, err = st.UpdateUser(ctx, u.ID, func(x *tokend.User, _ []tokend.User) (tokend.Event, error) {
		if x.Disabled || x.PasswordHash != u.PasswordHash {
			return tokend.Event{}, errSignIn // changed while we checked
		}
		x.LastLoginAt = &now
		d := map[string]any{"user_id": x.ID, "email": x.Email}
		if newHash != "" {
			x.PasswordHash = newHash
			d["password"] = "rehashed"
		}
		return s.event(x.Actor(ip), tokend.ActionUserLogin, "", "", d), nil
	})
	if errors.Is(err, tokend.ErrNotFound) {
		return tokend.User{}, errSignIn // deleted while we checked
	}
	if err != nil {
		return tokend.User{}, storeErr(err, "user")
	}
	return presentUser(u), nil
}

// NewSession starts a session for u that ends absolute after now (zero:
// DefaultSessionAbsolute). It answers the session id for the cookie, 256
// random bits in base64url, which the store never sees; it keeps the
// id's SHA-256.
func (s *Service) NewSession(ctx context.Context, u tokend.User, ip, userAgent string, now time.Time, absolute time.Duration) (string, tokend.Session, error) {
	st, err := s.userStore()
	if err != nil {
		return "", tokend.Session{}, err
	}
	if absolute <= 0 {
		absolute = DefaultSessionAbsolute
	}
	raw, err := randomToken()
	if err != nil {
		return "", tokend.Session{}, tokend.Internal(err)
	}
	csrf, err := randomToken()
	if err != nil {
		return "", tokend.Session{}, tokend.Internal(err)
	}
	now = now.UTC()
	sess := tokend.Session{
		IDHash: sessionHash(raw), UserID: u.ID, CSRF: csrf,
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(absolute),
		IP: clip(ip, 64), UserAgent: clip(userAgent, 256),
	}
	if err := st.CreateSession(ctx, sess); err != nil {
		return "", tokend.Session{}, storeErr(err, "user")
	}
	return raw, sess, nil
}

// SessionUser answers the session of a cookie's id and its user, if the
// session is still good at now: within its absolute end (ExpiresAt, and
// CreatedAt+absolute when absolute > 0), used within idle (when idle > 0),
// and its user still exists and is enabled. A session that fails is ended.
// Activity is recorded at most once a minute.
func (s *Service) SessionUser(ctx context.Context, rawID string, now time.Time, idle, absolute time.Duration) (tokend.Session, tokend.User, error) {
	st, err := s.userStore()
	if err != nil {
		return tokend.Session{}, tokend.User{}, err
	}
	if rawID == "" || len(rawID) > 128 {
		return tokend.Session{}, tokend.User{}, errNoSession
	}
	hash := sessionHash(rawID)
	sess, err := st.Session(ctx, hash)
	if errors.Is(err, tokend.ErrNotFound) {
		return tokend.Session{}, tokend.User{}, errNoSession
	}
	if err != nil {
		return tokend.Session{}, tokend.User{}, storeErr(err, "session")
	}
	expired := !now.Before(sess.ExpiresAt) ||
		(absolute > 0 && !now.Before(sess.CreatedAt.Add(absolute))) ||
		(idle > 0 && !now.Before(sess.LastSeenAt.Add(idle)))
	if expired {
		s.dropSession(ctx, st, hash)
		return tokend.Session{}, tokend.User{}, errNoSession
	}
	u, err := st.User(ctx, sess.UserID)
	if errors.Is(err, tokend.ErrNotFound) {
		return tokend.Session{}, tokend.User{}, errNoSession // sessions go with their user
	}
	if err != nil {
		return tokend.Session{}, tokend.User{}, storeErr(err, "user")
	}
	if u.Disabled {
		s.dropSession(ctx, st, hash)
		return tokend.Session{}, tokend.User{}, errNoSession
	}
	if now.Sub(sess.LastSeenAt) >= touchEvery {
		err := st.TouchSession(ctx, hash, now)
		switch {
		case errors.Is(err, tokend.ErrNotFound):
			return tokend.Session{}, tokend.User{}, errNoSession // ended meanwhile
		case err != nil:
			// Serving the page matters more than the idle clock.
			s.log.WarnContext(ctx, "recording session activity", "user_id", u.ID, "err", err)
		default:
			sess.LastSeenAt = now.UTC()
		}
	}
	return sess, presentUser(u), nil
}

// EndSession ends the session of a cookie's id (sign-out) and audits it as
// its user's act from ip. Ending a session that does not exist is not an
// error: signing out twice signs out.
func (s *Service) EndSession(ctx context.Context, rawID, ip string) error {
	st, err := s.userStore()
	if err != nil {
		return err
	}
	if rawID == "" || len(rawID) > 128 {
		return nil
	}
	hash := sessionHash(rawID)
	sess, err := st.Session(ctx, hash)
	if errors.Is(err, tokend.ErrNotFound) {
		return nil
	}
	if err != nil {
		return storeErr(err, "session")
	}
	if err := st.DeleteSession(ctx, hash); err != nil {
		return storeErr(err, "session")
	}
	if u, err := st.User(ctx, sess.UserID); err == nil {
		ev := s.event(u.Actor(ip), tokend.ActionUserLogout, "", "", map[string]any{"user_id": u.ID, "email": u.Email})
		if err := s.store.AppendEvent(ctx, ev); err != nil {
			s.log.WarnContext(ctx, "auditing sign-out", "user_id", u.ID, "err", err)
		}
	}
	return nil
}

// SweepSessions deletes the sessions that have expired at now, absolutely
// or idle longer than idle (zero: DefaultSessionIdle), and answers how
// many. The server calls it periodically; expired sessions are refused
// anyway, this only keeps the table small.
func (s *Service) SweepSessions(ctx context.Context, now time.Time, idle time.Duration) (int, error) {
	st, err := s.userStore()
	if err != nil {
		return 0, err
	}
	if idle <= 0 {
		idle = DefaultSessionIdle
	}
	n, err := st.DeleteExpiredSessions(ctx, now, idle)
	return n, storeErr(err, "session")
}

func (s *Service) dropSession(ctx context.Context, st tokend.UserStore, hash []byte) {
	if err := st.DeleteSession(ctx, hash); err != nil {
		s.log.WarnContext(ctx, "ending an expired session", "err", err)
	}
}

// endUserSessions ends a user's sessions after a change that must sign them
// out. The change is committed already; a failure here is logged, and the
// rules still hold: SessionUser reads the user, role and disabled flag
// included, on every request.
func (s *Service) endUserSessions(ctx context.Context, st tokend.UserStore, id string) {
	if err := st.DeleteUserSessions(ctx, id); err != nil {
		s.log.ErrorContext(ctx, "ending the sessions of a changed user", "user_id", id, "err", err)
	}
}

// keepAnOwner refuses a change that leaves no active owner: before is the
// user as stored, after the result (nil for deletion), all every user.
func keepAnOwner(all []tokend.User, before tokend.User, after *tokend.User) error {
	if before.Role != tokend.RoleOwner || before.Disabled {
		return nil // was not an active owner: nothing lost
	}
	if after != nil && after.Role == tokend.RoleOwner && !after.Disabled {
		return nil
	}
	for _, o := range all {
		if o.ID != before.ID && o.Role == tokend.RoleOwner && !o.Disabled {
			return nil
		}
	}
	what := "deleted"
	switch {
	case after == nil:
	case after.Disabled:
		what = "disabled"
	default:
		what = "given another role"
	}
	return tokend.Errorf(tokend.ECodeConflict,
		"this is the last active owner, who cannot be %s: make another user an owner first", what)
}

// requireRole refuses an actor who lacks any permission of role r, for the
// rule that nobody gives or manages more power than they hold.
func requireRole(a tokend.Actor, r tokend.Role) error {
	for _, p := range r.Permissions() {
		if !a.Can(p) {
			return tokend.Errorf(tokend.ECodeForbidden, "only someone holding every permission of the %s role may give or manage it; you lack %s", r, p)
		}
	}
	return nil
}

func isSelf(a tokend.Actor, id string) bool {
	return a.Kind == "user" && a.ID == id && id != ""
}

func checkRole(p *tokend.Problems, field string, r tokend.Role) {
	if !r.Valid() {
		p.Add(field, "must be owner, admin or viewer")
	}
}

// NormalizeEmail answers the stored form of an email address: trimmed and
// lower-cased.
func NormalizeEmail(s string) string {
	return strings.ToLower(strings.TrimSpace(s))
}

// CheckEmail checks a normalized email address: a bare addr-spec such as
// ada@example.com, no display name, at most MaxEmailLen bytes.
func CheckEmail(p *tokend.Problems, field, email string) {
	if email == "" {
		p.Add(field, "is required")
		return
	}
	if len(email) > MaxEmailLen {
		p.Add(field, "must be at most %d characters", MaxEmailLen)
		return
	}
	if msg := tokend.TextProblem(email, tokend.LineText); msg != "" {
		p.Add(field, "%s", msg)
		return
	}
	a, err := mail.ParseAddress(email)
	local, domain, ok := strings.Cut(email, "@")
	if err != nil || a.Name != "" || a.Address != email || !ok || local == "" || !strings.Contains(domain, ".") ||
		strings.ContainsAny(email, " \t\r\n") {
		p.Add(field, "is not an email address such as ada@example.com")
	}
}

func emailTaken() error {
	var p tokend.Problems
	p.Add("email", "another user has this email address")
	return conflict(p)
}

func userDetails(u tokend.User) map[string]any {
	return map[string]any{"user_id": u.ID, "email": u.Email, "name": u.Name, "role": string(u.Role)}
}

// presentUser puts a user in the form callers see: never the hash.
func presentUser(u tokend.User) tokend.User {
	u.PasswordHash = ""
	return u
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func sessionHash(raw string) []byte {
	h := sha256.Sum256([]byte(raw))
	return h[:]
}

// clip cuts s to at most n bytes of valid UTF-8, for what a client sends
// that the store keeps (address, user agent).
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
