package manage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/secret"
)

// DefaultExpiresIn applies when a create names no expiry.
const DefaultExpiresIn = "30d"

// MaxGracePeriod bounds how long a rotated-out secret keeps working.
const MaxGracePeriod = tokend.Duration(30 * 24 * time.Hour)

// CreateToken issues a token and answers it with its secret, which is never
// available again.
func (s *Service) CreateToken(ctx context.Context, a tokend.Actor, in tokend.TokenInput) (tokend.Token, secret.Secret, error) {
	if err := a.Require(tokend.PermTokensWrite); err != nil {
		return tokend.Token{}, secret.Secret{}, err
	}
	if err := scopeOwner(a, &in); err != nil {
		return tokend.Token{}, secret.Secret{}, err
	}
	if in.Decoy && a.Kind == portalKind {
		return tokend.Token{}, secret.Secret{}, tokend.Errorf(tokend.ECodeForbidden, "the customer portal cannot create decoys")
	}
	if in.AppID == tokend.SystemAppID {
		// Before the scope's applications are looked up, so that a
		// scoped actor learns nothing of applications outside its own.
		if err := checkNewAdminScope(a, in.Scope); err != nil {
			return tokend.Token{}, secret.Secret{}, err
		}
	}
	now := s.Now()
	p := problemsOf(ctx)
	app, err := s.appFor(ctx, &p, in.AppID)
	if err != nil {
		return tokend.Token{}, secret.Secret{}, err
	}
	app = hideApp(a, &p, app, true)
	scope, err := s.checkScope(ctx, &p, in.AppID, in.Scope)
	if err != nil {
		return tokend.Token{}, secret.Secret{}, err
	}
	if in.Type == "" {
		in.Type = tokend.TypeStandard
	}
	switch {
	case in.Access == "" && len(in.Permissions) > 0:
		// Permissions without an access can only mean these permissions
		// (as the CLI reads --permission without --access).
		in.Access = tokend.AccessCustom
	case in.Access == "":
		in.Access = tokend.AccessReadOnly
	}
	if in.ExpiresIn == "" && in.ExpiresAt == nil {
		in.ExpiresIn = DefaultExpiresIn
		if app.MaxTokenLifetime != nil && time.Duration(*app.MaxTokenLifetime) < 30*24*time.Hour {
			in.ExpiresIn = app.MaxTokenLifetime.String()
		}
	}
	t := tokend.Token{
		AppID: in.AppID, OwnerID: in.OwnerID, OwnerName: in.OwnerName, Name: in.Name, Description: in.Description, Type: in.Type, Access: in.Access,
		Permissions: in.Permissions, AllowedIPs: in.AllowedIPs, AllowedOrigins: in.AllowedOrigins,
		RateLimit: in.RateLimit, MaxUses: in.MaxUses, Metadata: in.Metadata,
		Status: tokend.StatusActive, CreatedAt: now, CreatedBy: a.Ref(), UpdatedAt: now, Version: 1,
		Scope: scope, Decoy: in.Decoy,
	}
	t.ExpiresAt = tokend.ResolveExpiry(&p, in.ExpiresIn, in.ExpiresAt, now)
	checkToken(&p, &t, app, now)
	if app.System {
		expiryField := "expires_in"
		if in.ExpiresAt != nil {
			expiryField = "expires_at"
		}
		checkWithinLimits(&p, a, t, boundAll, expiryField)
	}
	if err := p.Err(); err != nil {
		return tokend.Token{}, secret.Secret{}, err
	}
	if app.System {
		if err := requireAtLeast(a, t.Access, t.Permissions); err != nil {
			return tokend.Token{}, secret.Secret{}, err
		}
	}
	if t.ID, err = secret.NewID("tok"); err != nil {
		return tokend.Token{}, secret.Secret{}, tokend.Internal(err)
	}
	sec, err := s.newSecret(&t, app)
	if err != nil {
		return tokend.Token{}, secret.Secret{}, err
	}
	details := map[string]any{
		"name": t.Name, "type": t.Type, "access": t.Access, "permissions": t.Permissions,
		"expires_at": fmtTime(t.ExpiresAt), "allowed_ips": t.AllowedIPs, "allowed_origins": t.AllowedOrigins,
		"scope": t.Scope,
	}
	if t.OwnerID != "" {
		details["owner_id"], details["owner_name"] = t.OwnerID, t.OwnerName
	}
	if t.Decoy {
		details["decoy"] = true
	}
	ev := s.tokenEvent(a, tokend.ActionTokenCreate, t, details)
	if err := s.store.CreateToken(ctx, t, ev); err != nil {
		if tokend.IsOwnerLimit(err) {
			return tokend.Token{}, secret.Secret{}, err
		}
		if errors.Is(err, tokend.ErrConflict) {
			p.Add("name", "a live token of this %s is already named %q", nameScope(t.OwnerID), t.Name)
			return tokend.Token{}, secret.Secret{}, conflict(p)
		}
		return tokend.Token{}, secret.Secret{}, storeErr(err, "token")
	}
	s.secretAdded(t.SecretHash)
	if t.Decoy {
		// The engines keep every decoy's secrets (the store tells the
		// other instances).
		s.inval.TokenChanged(t.ID)
	}
	s.log.InfoContext(ctx, "token created", "token_id", t.ID, "app_id", t.AppID, "actor", a.Ref())
	return s.present(t), sec, nil
}

// nameScope is where a token's name is unique: its app, or its app's
// owner.
func nameScope(ownerID string) string {
	if ownerID != "" {
		return "owner in this application"
	}
	return "application"
}

func conflict(p tokend.Problems) error {
	e := p.Err().(*tokend.Error)
	e.Code = tokend.ECodeConflict
	e.Message = p[0].Message
	return e
}

func (s *Service) newSecret(t *tokend.Token, app tokend.App) (secret.Secret, error) {
	sec, err := secret.Generate(app.TokenPrefix)
	if err != nil {
		return secret.Secret{}, tokend.Internal(err)
	}
	sum := s.hasher.Sum(sec.Reveal())
	t.SecretHash = sum[:]
	t.Masked = sec.String()
	return sec, nil
}

// appOfToken reads the app of token id before the token's write begins.
// A read inside the write's function would wait for a second connection
// while the write holds one: on PostgreSQL, where both come from one pool,
// writes that fill the pool would then wait for each other until their
// requests give up. A token never changes app, so the app read first is
// the token's still (the write checks). A token not found answers no app
// and no error: the write then answers for it as it does for every token
// it cannot change (412 under If-Match, the same for a token out of the
// actor's scope), so that this read tells nobody more.
func (s *Service) appOfToken(ctx context.Context, id string) (tokend.App, error) {
	t, err := s.store.Token(ctx, id)
	if errors.Is(err, tokend.ErrNotFound) {
		return tokend.App{}, nil
	}
	if err != nil {
		return tokend.App{}, storeErr(err, "token")
	}
	app, err := s.store.App(ctx, t.AppID)
	if err != nil {
		return tokend.App{}, storeErr(err, "app")
	}
	return app, nil
}

// secretAdded tells the engine's filter of known secrets of a secret whose
// write committed, before the caller hands it out: a filter that had not
// seen it would answer it NOT_FOUND.
func (s *Service) secretAdded(hash []byte) {
	if s.keeper != nil {
		s.keeper.SecretAdded(hash)
	}
}

// appFor loads the app a token belongs to, recording a field problem when
// there is none.
func (s *Service) appFor(ctx context.Context, p *tokend.Problems, appID string) (tokend.App, error) {
	if appID == "" {
		p.Add("app_id", "is required")
		return tokend.App{}, nil
	}
	if !tokend.ValidID(appID) {
		p.Add("app_id", "no application with this id")
		return tokend.App{}, nil
	}
	app, err := s.store.App(ctx, appID)
	if errors.Is(err, tokend.ErrNotFound) {
		p.Add("app_id", "no application with this id")
		return tokend.App{}, nil
	}
	return app, storeErr(err, "app")
}

// checkToken validates a token's settings against its app and puts lists in
// their canonical form.
func checkToken(p *tokend.Problems, t *tokend.Token, app tokend.App, now time.Time) {
	tokend.CheckOwnerID(p, "owner_id", t.OwnerID)
	tokend.CheckOwnerName(p, "owner_name", t.OwnerName)
	switch {
	case t.OwnerID != "" && app.System:
		p.Add("owner_id", "admin tokens (of the system application) have no owner; an admin token is restricted to an owner by its scope")
	case t.OwnerID == "" && t.OwnerName != "":
		p.Add("owner_name", "needs an owner_id")
	}
	tokend.CheckName(p, "name", t.Name)
	tokend.CheckDescription(p, "description", t.Description)
	switch t.Type {
	case tokend.TypeStandard, tokend.TypePlugin:
	default:
		p.Add("type", "must be standard or plugin")
	}
	switch t.Access {
	case tokend.AccessCustom:
		if app.ID != "" {
			tokend.CheckGranted(p, "permissions", t.Permissions, app.Permissions)
		}
		t.Permissions = dedupe(t.Permissions)
	case tokend.AccessReadOnly, tokend.AccessFull:
		if len(t.Permissions) > 0 {
			p.Add("permissions", "are only for access custom: set access to custom (or leave it out) to give exactly these permissions")
		}
		t.Permissions = nil
	default:
		p.Add("access", "must be read_only, full_access or custom")
	}
	tokend.CheckIPs(p, "allowed_ips", t.AllowedIPs)
	if len(*p) == 0 || !hasField(*p, "allowed_ips") {
		t.AllowedIPs = canonicalIPs(t.AllowedIPs)
	}
	tokend.CheckOrigins(p, "allowed_origins", t.AllowedOrigins)
	if !hasField(*p, "allowed_origins") {
		t.AllowedOrigins = canonicalOrigins(t.AllowedOrigins)
	}
	if t.Type == tokend.TypePlugin && len(t.AllowedOrigins) == 0 {
		p.Add("allowed_origins", "a plugin token needs at least one allowed origin")
	}
	tokend.CheckRateLimit(p, "rate_limit", t.RateLimit)
	if t.MaxUses != nil && *t.MaxUses < 1 {
		p.Add("max_uses", "must be at least 1")
	}
	tokend.CheckMetadata(p, "metadata", t.Metadata)
	if app.ID != "" {
		tokend.CheckLifetime(p, "expires_in", t.ExpiresAt, app, now)
	}
}

func hasField(p tokend.Problems, prefix string) bool {
	for _, f := range p {
		if len(f.Field) >= len(prefix) && f.Field[:len(prefix)] == prefix {
			return true
		}
	}
	return false
}

func canonicalIPs(ips []string) []string {
	var out []string
	for _, s := range ips {
		if pfx, err := tokend.ParsePrefix(s); err == nil {
			out = append(out, pfx.String())
		}
	}
	return dedupe(out)
}

func canonicalOrigins(origins []string) []string {
	var out []string
	for _, o := range origins {
		if n := tokend.NormalizeOrigin(o); n != "" {
			out = append(out, n)
		}
	}
	return dedupe(out)
}

func dedupe(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := make([]string, 0, len(in))
	for _, s := range in {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// Token answers one token.
func (s *Service) Token(ctx context.Context, a tokend.Actor, id string) (tokend.Token, error) {
	if err := a.Require(tokend.PermTokensRead); err != nil {
		return tokend.Token{}, err
	}
	if err := checkID(id, "token"); err != nil {
		return tokend.Token{}, err
	}
	t, err := s.store.Token(ctx, id)
	if err == nil {
		err = outOfScope(a, t)
	}
	if err != nil {
		return tokend.Token{}, storeErr(err, "token")
	}
	return s.present(t), nil
}

// Tokens lists tokens, newest first.
func (s *Service) Tokens(ctx context.Context, a tokend.Actor, f tokend.TokenFilter) (tokend.Page[tokend.Token], error) {
	if err := a.Require(tokend.PermTokensRead); err != nil {
		return tokend.Page[tokend.Token]{}, err
	}
	if err := checkTokenFilter(f); err != nil {
		return tokend.Page[tokend.Token]{}, err
	}
	if a.Scope != nil {
		f.Scope = a.Scope
	}
	if a.Kind == portalKind {
		f.Decoy = false // the customer portal never sees a decoy
	}
	f.Now = s.Now()
	page, err := s.store.Tokens(ctx, f)
	if err != nil {
		return page, storeErr(err, "token")
	}
	for i := range page.Items {
		page.Items[i] = s.present(page.Items[i])
	}
	if page.Items == nil {
		page.Items = []tokend.Token{}
	}
	return page, nil
}

// CountTokens counts the tokens Tokens would list over all of its pages.
func (s *Service) CountTokens(ctx context.Context, a tokend.Actor, f tokend.TokenFilter) (int, error) {
	if err := a.Require(tokend.PermTokensRead); err != nil {
		return 0, err
	}
	if err := checkTokenFilter(f); err != nil {
		return 0, err
	}
	if a.Scope != nil {
		f.Scope = a.Scope
	}
	if a.Kind == portalKind {
		f.Decoy = false // the customer portal never sees a decoy
	}
	f.Now = s.Now()
	n, err := s.store.CountTokens(ctx, f)
	return n, storeErr(err, "token")
}

func checkTokenFilter(f tokend.TokenFilter) error {
	var p tokend.Problems
	switch f.Status {
	case "", tokend.StatusActive, tokend.StatusDisabled, tokend.StatusRevoked, tokend.StatusExpired:
	default:
		p.Add("status", "must be active, disabled, revoked or expired")
	}
	switch f.Type {
	case "", tokend.TypeStandard, tokend.TypePlugin:
	default:
		p.Add("type", "must be standard or plugin")
	}
	if len(f.Query) > 100 {
		p.Add("q", "must be at most 100 characters")
	} else {
		tokend.CheckText(&p, "q", f.Query, tokend.LineText)
	}
	checkFilterID(&p, "app_id", f.AppID)
	if f.OwnerID != "" && !tokend.ValidOwnerID(f.OwnerID) {
		p.Add("owner_id", "is not an owner id: 1 to %d visible ASCII characters", tokend.MaxOwnerIDLen)
	}
	checkLimit(&p, f.Limit)
	if _, _, ok := tokend.TokenOrder(f.Sort, ""); !ok {
		p.Add("sort", "must be name, created_at, expires_at or last_used_at")
	}
	if _, _, ok := tokend.TokenOrder("", f.Order); !ok {
		p.Add("order", "must be asc or desc")
	}
	if f.UnusedFor != 0 && (time.Duration(f.UnusedFor) < 24*time.Hour || f.UnusedFor > tokend.MaxLifetime) {
		p.Add("unused_for", "must be a number of days from 1d to 36500d, such as 30d")
	}
	return p.Err()
}

// UpdateToken edits a token. version, when not 0, must be the stored one.
func (s *Service) UpdateToken(ctx context.Context, a tokend.Actor, id string, patch tokend.TokenPatch, version int64) (tokend.Token, error) {
	if err := a.Require(tokend.PermTokensWrite); err != nil {
		return tokend.Token{}, err
	}
	if err := checkID(id, "token"); err != nil {
		return tokend.Token{}, err
	}
	now := s.Now()
	app, err := s.appOfToken(ctx, id)
	if err != nil {
		return tokend.Token{}, err
	}
	var owner string
	t, err := s.store.UpdateToken(ctx, id, func(t *tokend.Token) (tokend.Event, error) {
		if err := outOfScope(a, *t); err != nil {
			return tokend.Event{}, err
		}
		if err := versionCheck(version, t.Version); err != nil {
			return tokend.Event{}, err
		}
		owner = t.OwnerID
		if t.Status == tokend.StatusRevoked {
			return tokend.Event{}, tokend.Errorf(tokend.ECodeConflict, "a revoked token cannot be edited")
		}
		if t.AppID != app.ID {
			return tokend.Event{}, tokend.Internal(fmt.Errorf("token %s moved from app %s to %s", t.ID, app.ID, t.AppID))
		}
		if app.System {
			if err := requireAtLeast(a, t.Access, t.Permissions); err != nil {
				return tokend.Event{}, err
			}
		}
		d, err := applyPatch(problemsOf(ctx), t, patch, app, now)
		if err != nil {
			return tokend.Event{}, err
		}
		if app.System {
			if err := patchWithinLimits(a, *t, patch); err != nil {
				return tokend.Event{}, err
			}
			if err := requireAtLeast(a, t.Access, t.Permissions); err != nil {
				return tokend.Event{}, err
			}
		}
		if len(d) == 0 {
			return tokend.Event{}, errNothing
		}
		t.UpdatedAt = now
		return s.tokenEvent(a, tokend.ActionTokenUpdate, stored(*t), d), nil
	})
	if errors.Is(err, errNothing) {
		return s.Token(ctx, a, id)
	}
	if errors.Is(err, tokend.ErrConflict) {
		var p tokend.Problems
		p.Add("name", "a live token of this %s already has this name", nameScope(owner))
		return tokend.Token{}, conflict(p)
	}
	if err != nil {
		return tokend.Token{}, storeErrIfMatch(err, "token", version)
	}
	s.inval.TokenChanged(id)
	return s.present(t), nil
}

// applyPatch changes t as the patch says, validates the result, and answers
// what changed.
// p holds the problems found before (see WithProblems).
func applyPatch(p tokend.Problems, t *tokend.Token, patch tokend.TokenPatch, app tokend.App, now time.Time) (map[string]any, error) {
	before := *t
	if (patch.OwnerID != nil && *patch.OwnerID != t.OwnerID) || (patch.IsNull("owner_id") && t.OwnerID != "") {
		p.Add("owner_id", "cannot be changed after creation; create a token for the other owner instead")
	}
	if patch.OwnerName != nil {
		t.OwnerName = *patch.OwnerName
	} else if patch.IsNull("owner_name") {
		t.OwnerName = ""
	}
	if patch.Name != nil {
		t.Name = *patch.Name
	}
	if patch.Description != nil {
		t.Description = *patch.Description
	} else if patch.IsNull("description") {
		t.Description = ""
	}
	if patch.Type != nil {
		t.Type = *patch.Type
	}
	if patch.Access != nil {
		t.Access = *patch.Access
		if t.Access != tokend.AccessCustom && patch.Permissions == nil {
			t.Permissions = nil
		}
	}
	if patch.Permissions != nil {
		t.Permissions = *patch.Permissions
	}
	switch {
	case patch.ExpiresIn != nil && patch.ExpiresAt != nil:
		p.Add("expires_in", "give either expires_in or expires_at, not both")
	case patch.ExpiresIn != nil:
		t.ExpiresAt = tokend.ResolveExpiry(&p, *patch.ExpiresIn, nil, now)
	case patch.ExpiresAt != nil:
		t.ExpiresAt = tokend.ResolveExpiry(&p, "", patch.ExpiresAt, now)
	case patch.IsNull("expires_at"):
		t.ExpiresAt = nil
	}
	if patch.AllowedIPs != nil {
		t.AllowedIPs = *patch.AllowedIPs
	} else if patch.IsNull("allowed_ips") {
		t.AllowedIPs = nil
	}
	if patch.AllowedOrigins != nil {
		t.AllowedOrigins = *patch.AllowedOrigins
	} else if patch.IsNull("allowed_origins") {
		t.AllowedOrigins = nil
	}
	if patch.RateLimit != nil {
		t.RateLimit = patch.RateLimit
	} else if patch.IsNull("rate_limit") {
		t.RateLimit = nil
	}
	if patch.MaxUses != nil {
		t.MaxUses = patch.MaxUses
	} else if patch.IsNull("max_uses") {
		t.MaxUses = nil
	}
	if patch.Metadata != nil {
		t.Metadata = *patch.Metadata
	} else if patch.IsNull("metadata") {
		t.Metadata = nil
	}
	for _, f := range patch.Null {
		switch f {
		case "name", "type", "access", "permissions", "expires_in":
			p.Add(f, "cannot be null")
		}
	}
	checkToken(&p, t, app, now)
	if t.ExpiresAt != nil && before.ExpiresAt != nil && t.ExpiresAt.Equal(*before.ExpiresAt) {
		t.ExpiresAt = before.ExpiresAt
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	return diff(before, *t), nil
}

func diff(a, b tokend.Token) map[string]any {
	d := map[string]any{}
	if a.OwnerName != b.OwnerName {
		change(d, "owner_name", a.OwnerName, b.OwnerName)
	}
	if a.Name != b.Name {
		change(d, "name", a.Name, b.Name)
	}
	if a.Description != b.Description {
		change(d, "description", a.Description, b.Description)
	}
	if a.Type != b.Type {
		change(d, "type", a.Type, b.Type)
	}
	if a.Access != b.Access {
		change(d, "access", a.Access, b.Access)
	}
	if !slices.Equal(a.Permissions, b.Permissions) {
		change(d, "permissions", a.Permissions, b.Permissions)
	}
	if !equalTime(a.ExpiresAt, b.ExpiresAt) {
		change(d, "expires_at", fmtTime(a.ExpiresAt), fmtTime(b.ExpiresAt))
	}
	if !slices.Equal(a.AllowedIPs, b.AllowedIPs) {
		change(d, "allowed_ips", a.AllowedIPs, b.AllowedIPs)
	}
	if !slices.Equal(a.AllowedOrigins, b.AllowedOrigins) {
		change(d, "allowed_origins", a.AllowedOrigins, b.AllowedOrigins)
	}
	if !equalPtr(a.RateLimit, b.RateLimit) {
		change(d, "rate_limit", a.RateLimit, b.RateLimit)
	}
	if !equalPtr(a.MaxUses, b.MaxUses) {
		change(d, "max_uses", a.MaxUses, b.MaxUses)
	}
	if !maps.EqualFunc(a.Metadata, b.Metadata, func(x, y any) bool { return jsonEqual(x, y) }) || (a.Metadata == nil) != (b.Metadata == nil) {
		change(d, "metadata", a.Metadata, b.Metadata)
	}
	return d
}

func jsonEqual(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}

func equalTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

func equalPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// setStatus moves a token to a new status, idempotently.
// The actor's right to manage the token is checked first: one who may not
// change it learns nothing from "already so" (200) or "revoked" (409).
func (s *Service) setStatus(ctx context.Context, a tokend.Actor, id string, version int64, action string, to tokend.Status) (tokend.Token, error) {
	if err := checkID(id, "token"); err != nil {
		return tokend.Token{}, err
	}
	now := s.Now()
	t, err := s.store.UpdateToken(ctx, id, func(t *tokend.Token) (tokend.Event, error) {
		if err := outOfScope(a, *t); err != nil {
			return tokend.Event{}, err
		}
		if err := s.requireForToken(ctx, a, *t); err != nil {
			return tokend.Event{}, err
		}
		if err := versionCheck(version, t.Version); err != nil {
			return tokend.Event{}, err
		}
		if t.Status == to {
			return tokend.Event{}, errNothing
		}
		if t.Status == tokend.StatusRevoked {
			return tokend.Event{}, tokend.Errorf(tokend.ECodeConflict, "the token is revoked; revocation is permanent")
		}
		from := t.Status
		t.Status = to
		t.UpdatedAt = now
		if to == tokend.StatusRevoked {
			t.RevokedAt = &now
		}
		return s.tokenEvent(a, action, stored(*t), map[string]any{"status": map[string]any{"from": from, "to": to}, "name": t.Name}), nil
	})
	if errors.Is(err, errNothing) {
		return s.Token(ctx, a, id)
	}
	if err != nil {
		return tokend.Token{}, storeErrIfMatch(err, "token", version)
	}
	s.inval.TokenChanged(id)
	s.log.InfoContext(ctx, "token "+string(to), "token_id", id, "actor", a.Ref())
	return s.present(t), nil
}

// requireForToken checks that the actor may manage this token: admin tokens
// only by someone holding at least their permissions.
func (s *Service) requireForToken(ctx context.Context, a tokend.Actor, t tokend.Token) error {
	if t.AppID != tokend.SystemAppID {
		return nil
	}
	return requireAtLeast(a, t.Access, t.Permissions)
}

// DisableToken stops a token until it is enabled again.
func (s *Service) DisableToken(ctx context.Context, a tokend.Actor, id string, version int64) (tokend.Token, error) {
	if err := a.Require(tokend.PermTokensWrite); err != nil {
		return tokend.Token{}, err
	}
	return s.setStatus(ctx, a, id, version, tokend.ActionTokenDisable, tokend.StatusDisabled)
}

// EnableToken lets a disabled token work again; a revoked one cannot.
func (s *Service) EnableToken(ctx context.Context, a tokend.Actor, id string, version int64) (tokend.Token, error) {
	if err := a.Require(tokend.PermTokensWrite); err != nil {
		return tokend.Token{}, err
	}
	return s.setStatus(ctx, a, id, version, tokend.ActionTokenEnable, tokend.StatusActive)
}

// RevokeToken stops a token for good; it is kept for the audit trail.
func (s *Service) RevokeToken(ctx context.Context, a tokend.Actor, id string, version int64) (tokend.Token, error) {
	if err := a.Require(tokend.PermTokensWrite); err != nil {
		return tokend.Token{}, err
	}
	return s.setStatus(ctx, a, id, version, tokend.ActionTokenRevoke, tokend.StatusRevoked)
}

// RotateToken gives a token a new secret, keeping its id and settings. The
// old secret keeps working for grace (0: not at all).
func (s *Service) RotateToken(ctx context.Context, a tokend.Actor, id string, grace tokend.Duration, version int64) (tokend.Token, secret.Secret, error) {
	if err := a.Require(tokend.PermTokensRotate); err != nil {
		return tokend.Token{}, secret.Secret{}, err
	}
	if grace < 0 || grace > MaxGracePeriod {
		var p tokend.Problems
		p.Add("grace_period", "must be between 0s and %s", MaxGracePeriod)
		return tokend.Token{}, secret.Secret{}, p.Err()
	}
	if err := checkID(id, "token"); err != nil {
		return tokend.Token{}, secret.Secret{}, err
	}
	now := s.Now()
	app, err := s.appOfToken(ctx, id)
	if err != nil {
		return tokend.Token{}, secret.Secret{}, err
	}
	var sec secret.Secret
	t, err := s.store.UpdateToken(ctx, id, func(t *tokend.Token) (tokend.Event, error) {
		if err := outOfScope(a, *t); err != nil {
			return tokend.Event{}, err
		}
		if err := s.requireForToken(ctx, a, *t); err != nil {
			return tokend.Event{}, err
		}
		if err := versionCheck(version, t.Version); err != nil {
			return tokend.Event{}, err
		}
		if t.Status == tokend.StatusRevoked {
			return tokend.Event{}, tokend.Errorf(tokend.ECodeConflict, "a revoked token cannot be rotated")
		}
		if t.AppID != app.ID {
			return tokend.Event{}, tokend.Internal(fmt.Errorf("token %s moved from app %s to %s", t.ID, app.ID, t.AppID))
		}
		var err error
		if sec, err = s.newSecret(t, app); err != nil {
			return tokend.Event{}, err
		}
		t.PreviousSecretExpiresAt = nil
		if grace > 0 {
			until := now.Add(time.Duration(grace))
			t.PreviousSecretExpiresAt = &until
		}
		t.UpdatedAt = now
		return s.tokenEvent(a, tokend.ActionTokenRotate, stored(*t), map[string]any{
			"name": t.Name, "grace_period": grace.String(), "previous_secret_expires_at": fmtTime(t.PreviousSecretExpiresAt),
		}), nil
	})
	if err != nil {
		return tokend.Token{}, secret.Secret{}, storeErrIfMatch(err, "token", version)
	}
	s.secretAdded(t.SecretHash)
	s.inval.TokenChanged(id)
	s.log.InfoContext(ctx, "token rotated", "token_id", id, "actor", a.Ref())
	return s.present(t), sec, nil
}

// DeleteToken removes a token for good; its audit trail stays.
func (s *Service) DeleteToken(ctx context.Context, a tokend.Actor, id string, version int64) error {
	if err := a.Require(tokend.PermTokensDelete); err != nil {
		return err
	}
	if err := checkID(id, "token"); err != nil {
		return err
	}
	t, err := s.store.Token(ctx, id)
	if err == nil {
		err = outOfScope(a, t)
	}
	if err != nil {
		return storeErrIfMatch(err, "token", version)
	}
	if err := s.requireForToken(ctx, a, t); err != nil {
		return err
	}
	if err := versionCheck(version, t.Version); err != nil {
		return err
	}
	// The store checks the version again inside its delete, so that a
	// concurrent edit carrying the same ETag and this delete cannot both
	// win.
	ev := s.tokenEvent(a, tokend.ActionTokenDelete, t, map[string]any{"name": t.Name})
	if err := s.store.DeleteToken(ctx, id, version, ev); err != nil {
		return storeErrIfMatch(err, "token", version)
	}
	s.inval.TokenChanged(id)
	s.log.InfoContext(ctx, "token deleted", "token_id", id, "actor", a.Ref())
	return nil
}

// TokenUsage answers a token's hourly verification counts in [from, to).
// Zero times mean the last 7 days.
func (s *Service) TokenUsage(ctx context.Context, a tokend.Actor, id string, from, to time.Time) ([]tokend.UsageCount, error) {
	if err := a.Require(tokend.PermTokensRead); err != nil {
		return nil, err
	}
	if err := checkID(id, "token"); err != nil {
		return nil, err
	}
	if err := s.readable(ctx, a, id); err != nil {
		return nil, err
	}
	now := s.Now()
	if to.IsZero() {
		to = now.Truncate(time.Hour).Add(time.Hour)
	}
	if from.IsZero() {
		from = to.Add(-7 * 24 * time.Hour)
	}
	var p tokend.Problems
	if !from.Before(to) {
		p.Add("from", "must be before to")
	} else if to.Sub(from) > 92*24*time.Hour {
		p.Add("from", "the range may span at most 92 days")
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	u, err := s.store.Usage(ctx, id, from.UTC(), to.UTC())
	if err != nil {
		return nil, storeErr(err, "usage")
	}
	if u == nil {
		u = []tokend.UsageCount{}
	}
	return u, nil
}
