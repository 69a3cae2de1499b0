package tokend

import (
	"context"
	"slices"
	"time"
)

// Role is what a dashboard user may do. Each role maps to admin permissions,
// the same ones admin tokens carry, so one check guards the API and the
// dashboard alike.
type Role string

const (
	// RoleOwner manages everything, users included.
	RoleOwner Role = "owner"
	// RoleAdmin manages apps and tokens and reads the audit log.
	RoleAdmin Role = "admin"
	// RoleViewer sees apps, tokens and the audit log and changes nothing.
	RoleViewer Role = "viewer"
)

// Roles lists the roles from the most to the least powerful.
var Roles = []Role{RoleOwner, RoleAdmin, RoleViewer}

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool {
	return r == RoleOwner || r == RoleAdmin || r == RoleViewer
}

// Permissions answers the admin permissions the role holds.
func (r Role) Permissions() []string {
	switch r {
	case RoleOwner:
		return AdminPermissions
	case RoleAdmin:
		return []string{PermAppsRead, PermAppsWrite, PermTokensRead, PermTokensWrite,
			PermTokensRotate, PermTokensDelete, PermAuditRead}
	case RoleViewer:
		return []string{PermAppsRead, PermTokensRead, PermAuditRead}
	}
	return nil
}

// User is a person who signs in to the dashboard.
type User struct {
	ID    string `json:"id" example:"usr_4Lx0u1ZbT5uJ9mYtq2c3Qe"`
	Email string `json:"email"` // stored lower-cased; unique
	Name  string `json:"name"`
	Role  Role   `json:"role"`
	// PasswordHash is the argon2id hash in PHC string format. It never
	// leaves the server.
	PasswordHash string     `json:"-"`
	Disabled     bool       `json:"disabled"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
	LastLoginAt  *time.Time `json:"last_login_at"`
	// MailOptOut lists the mailed event types (MailedEventTypes) the user
	// does not want mailed; empty for all of them.
	MailOptOut []string `json:"mail_optout" nullable:"false"`
	Version    int64    `json:"version"`
}

// OptedOut reports whether u does not want mails of the event type.
func (u User) OptedOut(eventType string) bool {
	return slices.Contains(u.MailOptOut, eventType)
}

// Actor answers the user acting from ip, with the role's permissions.
func (u User) Actor(ip string) Actor {
	name := u.Name
	if name == "" {
		name = u.Email
	}
	return Actor{Kind: "user", ID: u.ID, Name: name, IP: ip, Permissions: u.Role.Permissions()}
}

// Session is a signed-in dashboard user. The session id itself lives only
// in the user's cookie; the store keeps its SHA-256, so a read of the
// database does not let anyone take over a session.
type Session struct {
	IDHash []byte
	UserID string
	// CSRF is the token every state-changing form of this session carries.
	CSRF       string
	CreatedAt  time.Time
	LastSeenAt time.Time
	// ExpiresAt is the absolute end of the session, whatever its activity.
	ExpiresAt time.Time
	IP        string
	UserAgent string
}

// Audit actions on users and sessions.
const (
	ActionUserCreate = "user.create"
	ActionUserUpdate = "user.update"
	ActionUserDelete = "user.delete"
	ActionUserLogin  = "user.login"
	ActionUserLogout = "user.logout"
	ActionUserSetup  = "user.setup"
)

// UserStore keeps dashboard users and their sessions. Both stores
// implement it and pass the storetest conformance suite.
type UserStore interface {
	// CreateFirstUser stores u only if no user exists yet, atomically even
	// against concurrent callers on other instances; ErrConflict otherwise.
	CreateFirstUser(ctx context.Context, u User, ev Event) error
	// CreateUser stores a new user; ErrConflict when the email is taken.
	CreateUser(ctx context.Context, u User, ev Event) error
	User(ctx context.Context, id string) (User, error)
	// UserByEmail finds a user by lower-cased email.
	UserByEmail(ctx context.Context, email string) (User, error)
	// Users answers every user, oldest first.
	Users(ctx context.Context) ([]User, error)
	// CountUsers answers how many users exist.
	CountUsers(ctx context.Context) (int, error)
	// UpdateUser runs fn on the stored user inside one transaction and
	// stores the result with Version+1 and the Event fn returns (no event
	// when fn returns one with an empty Action). fn's error aborts.
	// fn also receives the list of all users, so that rules such as "the
	// last owner stays an owner" are checked inside the transaction.
	UpdateUser(ctx context.Context, id string, fn func(u *User, all []User) (Event, error)) (User, error)
	// DeleteUser deletes the user and its sessions; check runs on the
	// stored user and all users inside the transaction and its error aborts.
	DeleteUser(ctx context.Context, id string, check func(u User, all []User) error, ev Event) error

	CreateSession(ctx context.Context, s Session) error
	// Session finds a session by the hash of its id; ErrNotFound when
	// there is none (expired ones may still be answered: callers check).
	Session(ctx context.Context, idHash []byte) (Session, error)
	// TouchSession records activity on the session.
	TouchSession(ctx context.Context, idHash []byte, at time.Time) error
	DeleteSession(ctx context.Context, idHash []byte) error
	// DeleteUserSessions ends every session of the user.
	DeleteUserSessions(ctx context.Context, userID string) error
	// DeleteExpiredSessions removes sessions whose ExpiresAt or idle
	// deadline (LastSeenAt+idle) is before now, and answers how many.
	DeleteExpiredSessions(ctx context.Context, now time.Time, idle time.Duration) (int, error)

	// ConsumeReveal records that the one-time hand-over id (the dashboard's
	// shown-once secret) has been used, keeping the record until
	// expiresAt. It is atomic even against concurrent callers on other
	// instances: nil for the first caller, ErrConflict for every later one
	// while the record lasts.
	ConsumeReveal(ctx context.Context, id []byte, expiresAt time.Time) error
	// DeleteExpiredReveals removes the records of ConsumeReveal whose
	// expiresAt is before now, and answers how many.
	DeleteExpiredReveals(ctx context.Context, now time.Time) (int, error)
}
