// Package manage is the token lifecycle: creating, editing, disabling,
// revoking, rotating and deleting tokens and apps, with validation, the
// permission checks of the actor, and the audit record of every change.
//
// The REST API, the CLI (through the API) and the dashboard all go through
// this one service, so every rule holds whatever the front door. It must not
// know about HTTP, and it never keeps or logs a plaintext secret: a new secret
// leaves it once, in the answer to Create or Rotate.
package manage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/password"
	"github.com/tokend/tokend/secret"
)

// Options wires a Service.
type Options struct {
	Store       tokend.Store
	Hasher      *secret.Hasher
	Invalidator tokend.Invalidator // told after each committed change; may be nil
	Now         func() time.Time
	Logger      *slog.Logger
	// Users keeps dashboard users and sessions; nil takes Store when it
	// implements tokend.UserStore (both stores do).
	Users tokend.UserStore
	// Events keeps the outbox and the marks of time-based events; nil takes
	// Store when it implements tokend.EventStore (both stores do).
	Events tokend.EventStore
	// Password is the argon2id cost of new password hashes; nil for
	// password.Default. Tests pass tiny parameters to stay fast.
	Password *password.Params
	// Webhooks keeps webhook endpoints and deliveries; nil takes Store when
	// it implements tokend.WebhookStore.
	Webhooks tokend.WebhookStore
	// WebhookSecrets makes signing secrets (internal/webhook); without it
	// no endpoint can be created or rotated.
	WebhookSecrets tokend.WebhookSecrets
	// WebhookAllowHTTP admits http:// endpoints, WebhookAllowPrivate
	// endpoints at a literal private, loopback or link-local address
	// (serve's --webhook-allow-http and --webhook-allow-private).
	WebhookAllowHTTP, WebhookAllowPrivate bool
}

// Service is the lifecycle service.
type Service struct {
	store  tokend.Store
	hasher *secret.Hasher
	inval  tokend.Invalidator
	// keeper, when the Invalidator is one, is told every new secret
	// before it is handed out (see tokend.SecretKeeper).
	keeper tokend.SecretKeeper
	now    func() time.Time
	log    *slog.Logger
	users  userState // users.go
	events tokend.EventStore
	marks  markCache // events.go

	webhooks            tokend.WebhookStore // webhooks.go
	webhookSecrets      tokend.WebhookSecrets
	webhookAllowHTTP    bool
	webhookAllowPrivate bool
}

// New makes a Service.
func New(o Options) *Service {
	s := &Service{store: o.Store, hasher: o.Hasher, inval: o.Invalidator, now: o.Now, log: o.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.inval == nil {
		s.inval = nopInvalidator{}
	}
	s.keeper, _ = s.inval.(tokend.SecretKeeper)
	s.users = newUserState(o)
	s.events = o.Events
	if es, ok := o.Store.(tokend.EventStore); ok && s.events == nil {
		s.events = es
	}
	s.webhooks, s.webhookSecrets = o.Webhooks, o.WebhookSecrets
	if ws, ok := o.Store.(tokend.WebhookStore); ok && s.webhooks == nil {
		s.webhooks = ws
	}
	s.webhookAllowHTTP, s.webhookAllowPrivate = o.WebhookAllowHTTP, o.WebhookAllowPrivate
	return s
}

type nopInvalidator struct{}

func (nopInvalidator) TokenChanged(string) {}
func (nopInvalidator) AppChanged(string)   {}

// Store answers the service's store, for read-only wiring such as readiness.
func (s *Service) Store() tokend.Store { return s.store }

// Now answers the service clock.
func (s *Service) Now() time.Time { return s.now().UTC() }

// SystemPrefix is the secret prefix of admin tokens.
const SystemPrefix = tokend.SystemPrefix

// EnsureSystemApp creates the built-in system app if it is missing.
func (s *Service) EnsureSystemApp(ctx context.Context) error {
	if _, err := s.store.App(ctx, tokend.SystemAppID); err == nil {
		return nil
	} else if !errors.Is(err, tokend.ErrNotFound) {
		return err
	}
	now := s.Now()
	app := tokend.App{
		ID: tokend.SystemAppID, Name: "tokend administration", TokenPrefix: SystemPrefix,
		Permissions: slices.Clone(tokend.AdminPermissions), System: true,
		CreatedAt: now, UpdatedAt: now, Version: 1,
	}
	err := s.store.CreateApp(ctx, app, s.event(tokend.SystemActor, tokend.ActionAppCreate, app.ID, "", map[string]any{"name": app.Name}))
	if errors.Is(err, tokend.ErrConflict) {
		return nil // another instance made it first
	}
	return err
}

// HasAdminTokens reports whether any live admin token exists.
func (s *Service) HasAdminTokens(ctx context.Context) (bool, error) {
	page, err := s.store.Tokens(ctx, tokend.TokenFilter{AppID: tokend.SystemAppID, Status: tokend.StatusActive, Now: s.Now(), Limit: 1})
	if err != nil {
		return false, err
	}
	return len(page.Items) > 0, nil
}

// Bootstrap creates an owner admin token: every admin permission, no expiry.
func (s *Service) Bootstrap(ctx context.Context) (tokend.Token, secret.Secret, error) {
	if err := s.EnsureSystemApp(ctx); err != nil {
		return tokend.Token{}, secret.Secret{}, err
	}
	name := "owner (bootstrap " + s.Now().Format("2006-01-02 15:04:05") + ")"
	return s.CreateToken(ctx, tokend.SystemActor, tokend.TokenInput{
		AppID: tokend.SystemAppID, Name: name, Description: "Created by tokend bootstrap.",
		Access: tokend.AccessCustom, Permissions: slices.Clone(tokend.AdminPermissions), ExpiresIn: "unlimited",
	})
}

func (s *Service) event(a tokend.Actor, action, appID, tokenID string, details map[string]any) tokend.Event {
	details = scopeDetails(a, details)
	for k, v := range a.Details {
		if details == nil {
			details = map[string]any{}
		}
		if _, set := details[k]; !set {
			details[k] = v
		}
	}
	for k, v := range details {
		if isEmpty(v) {
			delete(details, k) // an audit entry says what was set, not every blank
		}
	}
	return tokend.Event{
		Time: s.Now(), Actor: a.Ref(), ActorName: a.Name, IP: a.IP, Action: action,
		AppID: appID, TokenID: tokenID, Details: details,
	}
}

// storeErr turns a store error into a public one: sentinels become messages
// about what, anything else stays internal.
func storeErr(err error, what string) error {
	var e *tokend.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, tokend.ErrNotFound):
		return tokend.Errorf(tokend.ECodeNotFound, "%s not found", what)
	case errors.Is(err, tokend.ErrStale):
		return tokend.ErrStale
	case errors.As(err, &e):
		return e
	default:
		return tokend.Internal(err)
	}
}

// storeErrIfMatch is storeErr for a change made under If-Match (version not
// 0): a resource that is gone fails the precondition (RFC 9110, 13.1.1), so
// that of an edit and a delete racing with the same ETag, the one that lost
// answers 412 whichever it is.
func storeErrIfMatch(err error, what string, version int64) error {
	if version != 0 && errors.Is(err, tokend.ErrNotFound) {
		return tokend.ErrStale
	}
	return storeErr(err, what)
}

// present puts a token in the form callers see: the derived status, and
// empty lists and objects rather than nulls.
func (s *Service) present(t tokend.Token) tokend.Token { return presentAt(t, s.Now()) }

// presentAt is t as the API shows it at now.
func presentAt(t tokend.Token, now time.Time) tokend.Token {
	t.Status = t.StatusAt(now)
	t.Permissions = orEmpty(t.Permissions)
	t.AllowedIPs = orEmpty(t.AllowedIPs)
	t.AllowedOrigins = orEmpty(t.AllowedOrigins)
	if t.Metadata == nil {
		t.Metadata = map[string]any{}
	}
	return t
}

func presentApp(a tokend.App) tokend.App {
	a.Permissions = orEmpty(a.Permissions)
	return a
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// effective answers what an admin token with this access may do, for the
// rule that nobody creates or manages a token more powerful than themselves.
func effective(access tokend.Access, perms []string) []string {
	switch access {
	case tokend.AccessFull:
		return tokend.AdminPermissions
	case tokend.AccessReadOnly:
		var out []string
		for _, p := range tokend.AdminPermissions {
			if tokend.IsReadAction(p) {
				out = append(out, p)
			}
		}
		return out
	}
	return perms
}

func requireAtLeast(a tokend.Actor, access tokend.Access, perms []string) error {
	for _, p := range effective(access, perms) {
		if !a.Can(p) {
			return tokend.Errorf(tokend.ECodeForbidden, "an admin token may not hold %s, which you do not hold", p)
		}
	}
	return nil
}

func change(d map[string]any, field string, from, to any) {
	d[field] = map[string]any{"from": from, "to": to}
}

func fmtTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
}

// checkID answers NOT_FOUND for an id of a shape tokend never gives out
// (control characters, invalid UTF-8, anything else), without asking the
// store: such an id names nothing, and some stores fail on the bytes.
func checkID(id, what string) error {
	if !tokend.ValidID(id) {
		return tokend.Errorf(tokend.ECodeNotFound, "%s not found", what)
	}
	return nil
}

// checkFilterID checks an id a list is filtered by.
func checkFilterID(p *tokend.Problems, field, id string) {
	if id != "" && !tokend.ValidID(id) {
		p.Add(field, "is not an id such as tok_… or app_…")
	}
}

// checkLogFilter checks what the audit log's and the events' filters
// share: the page size, the token and app ids, and the time range.
func checkLogFilter(p *tokend.Problems, limit int, tokenID, appID string, since, until time.Time) {
	checkLimit(p, limit)
	checkFilterID(p, "token_id", tokenID)
	checkFilterID(p, "app_id", appID)
	if !since.IsZero() && !until.IsZero() && !since.Before(until) {
		p.Add("since", "must be before until")
	}
}

func versionCheck(want, have int64) error {
	if want != 0 && want != have {
		return tokend.ErrStale
	}
	return nil
}

func checkLimit(p *tokend.Problems, limit int) {
	if limit < 0 || limit > tokend.MaxPageSize {
		p.Add("limit", "must be between 1 and %d", tokend.MaxPageSize)
	}
}

func fmtDuration(d *tokend.Duration) any {
	if d == nil {
		return nil
	}
	return d.String()
}

var errNothing = fmt.Errorf("nothing changed")

// AdminActor is the actor for a verified admin token: what its access grants
// of the admin permissions.
func AdminActor(t tokend.VerifiedToken, ip string) tokend.Actor {
	var d tokend.AdminDetails
	if t.Admin != nil {
		d = *t.Admin
	}
	a := tokend.Actor{Kind: "token", ID: t.ID, Name: t.Name, IP: ip, Permissions: effective(t.Access, t.Permissions), Scope: d.Scope.Clone()}
	if t.ExpiresAt != nil || len(d.AllowedIPs) > 0 || d.RateLimit != nil {
		l := &tokend.ActorLimits{AllowedIPs: slices.Clone(d.AllowedIPs)}
		if t.ExpiresAt != nil {
			x := *t.ExpiresAt
			l.ExpiresAt = &x
		}
		if d.RateLimit != nil {
			r := *d.RateLimit
			l.RateLimit = &r
		}
		a.Limits = l
	}
	return a
}

func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case []string:
		return len(x) == 0
	case string:
		return x == ""
	case *tokend.RateLimit:
		return x == nil
	case *int64:
		return x == nil
	case *int:
		return x == nil
	case map[string]any:
		return x == nil
	case *tokend.AdminScope:
		return x == nil
	}
	return false
}
