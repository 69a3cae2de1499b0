package manage

import (
	"context"
	"errors"
	"slices"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/secret"
)

func checkApp(p *tokend.Problems, a *tokend.App) {
	tokend.CheckName(p, "name", a.Name)
	tokend.CheckPrefix(p, "token_prefix", a.TokenPrefix)
	tokend.CheckPermissionCatalog(p, "permissions", a.Permissions)
	a.Permissions = dedupe(a.Permissions)
	tokend.CheckMaxLifetime(p, "max_token_lifetime", a.MaxTokenLifetime)
	tokend.CheckDisableUnused(p, "disable_unused_after", a.DisableUnusedAfter)
	tokend.CheckExpiryNotice(p, "expiry_notice", a.ExpiryNotice)
	tokend.CheckMaxTokensPerOwner(p, "max_tokens_per_owner", a.MaxTokensPerOwner)
	tokend.CheckRateLimit(p, "owner_rate_limit", a.OwnerRateLimit)
	checkAppPortal(p, a)
	if a.LeakPolicy == "" {
		a.LeakPolicy = tokend.LeakRevoke
	} else if !a.LeakPolicy.Valid() {
		p.Add("leak_policy", "must be revoke, disable or notify")
	}
	if a.RotatedSecretPolicy == "" {
		a.RotatedSecretPolicy = tokend.RotatedNotify
	} else if !a.RotatedSecretPolicy.Valid() {
		p.Add("rotated_secret_policy", "must be notify or disable")
	}
}

// CreateApp creates an application.
func (s *Service) CreateApp(ctx context.Context, a tokend.Actor, in tokend.AppInput) (tokend.App, error) {
	if err := a.Require(tokend.PermAppsWrite); err != nil {
		return tokend.App{}, err
	}
	if err := refuseScoped(a, "create or edit applications"); err != nil {
		return tokend.App{}, err
	}
	now := s.Now()
	app := tokend.App{
		Name: in.Name, TokenPrefix: in.TokenPrefix, Permissions: in.Permissions,
		MaxTokenLifetime: in.MaxTokenLifetime, DisableUnusedAfter: in.DisableUnusedAfter,
		ExpiryNotice: in.ExpiryNotice, LeakPolicy: in.LeakPolicy, RotatedSecretPolicy: in.RotatedSecretPolicy,
		MaxTokensPerOwner: in.MaxTokensPerOwner, OwnerRateLimit: in.OwnerRateLimit, Portal: in.Portal, CreatedAt: now, UpdatedAt: now, Version: 1,
	}
	if app.TokenPrefix == "" {
		app.TokenPrefix = tokend.DefaultPrefix
	}
	p := problemsOf(ctx)
	checkApp(&p, &app)
	if err := p.Err(); err != nil {
		return tokend.App{}, err
	}
	var err error
	if app.ID, err = secret.NewID("app"); err != nil {
		return tokend.App{}, tokend.Internal(err)
	}
	ev := s.event(a, tokend.ActionAppCreate, app.ID, "", map[string]any{
		"name": app.Name, "token_prefix": app.TokenPrefix, "permissions": app.Permissions,
		"max_token_lifetime":    fmtDuration(app.MaxTokenLifetime),
		"disable_unused_after":  fmtDuration(app.DisableUnusedAfter),
		"expiry_notice":         fmtDuration(app.ExpiryNotice),
		"leak_policy":           app.LeakPolicy,
		"rotated_secret_policy": app.RotatedSecretPolicy,
		"max_tokens_per_owner":  app.MaxTokensPerOwner,
		"owner_rate_limit":      app.OwnerRateLimit,
	})
	if app.Portal != nil {
		ev.Details["portal"] = app.Portal
	}
	if err := s.store.CreateApp(ctx, app, ev); err != nil {
		return tokend.App{}, storeErr(err, "app")
	}
	return presentApp(app), nil
}

// App answers one application.
func (s *Service) App(ctx context.Context, a tokend.Actor, id string) (tokend.App, error) {
	if err := a.Require(tokend.PermAppsRead); err != nil {
		return tokend.App{}, err
	}
	if err := checkID(id, "app"); err != nil {
		return tokend.App{}, err
	}
	app, err := s.store.App(ctx, id)
	if err == nil && !a.Scope.AdmitsApp(app.ID) {
		err = tokend.ErrNotFound // as an application that does not exist
	}
	return presentApp(app), storeErr(err, "app")
}

// Apps lists applications, oldest first.
func (s *Service) Apps(ctx context.Context, a tokend.Actor, f tokend.AppFilter) (tokend.Page[tokend.App], error) {
	if err := a.Require(tokend.PermAppsRead); err != nil {
		return tokend.Page[tokend.App]{}, err
	}
	var p tokend.Problems
	checkLimit(&p, f.Limit)
	if err := p.Err(); err != nil {
		return tokend.Page[tokend.App]{}, err
	}
	if a.Scope != nil {
		f.Scope = a.Scope
	}
	page, err := s.store.Apps(ctx, f)
	if page.Items == nil {
		page.Items = []tokend.App{}
	}
	for i := range page.Items {
		page.Items[i] = presentApp(page.Items[i])
	}
	return page, storeErr(err, "app")
}

// UpdateApp edits an application. The system app cannot be edited.
func (s *Service) UpdateApp(ctx context.Context, a tokend.Actor, id string, patch tokend.AppPatch, version int64) (tokend.App, error) {
	if err := a.Require(tokend.PermAppsWrite); err != nil {
		return tokend.App{}, err
	}
	if err := refuseScoped(a, "create or edit applications"); err != nil {
		return tokend.App{}, err
	}
	if err := checkID(id, "app"); err != nil {
		return tokend.App{}, err
	}
	now := s.Now()
	app, err := s.store.UpdateApp(ctx, id, func(app *tokend.App) (tokend.Event, error) {
		if err := versionCheck(version, app.Version); err != nil {
			return tokend.Event{}, err
		}
		if app.System {
			return tokend.Event{}, tokend.Errorf(tokend.ECodeForbidden, "the system application is built in and cannot be changed")
		}
		before := *app
		p := problemsOf(ctx)
		if patch.Name != nil {
			app.Name = *patch.Name
		}
		if patch.TokenPrefix != nil {
			app.TokenPrefix = *patch.TokenPrefix
		}
		if patch.Permissions != nil {
			app.Permissions = *patch.Permissions
		}
		if patch.MaxTokenLifetime != nil {
			app.MaxTokenLifetime = patch.MaxTokenLifetime
		} else if patch.IsNull("max_token_lifetime") {
			app.MaxTokenLifetime = nil
		}
		if patch.DisableUnusedAfter != nil {
			app.DisableUnusedAfter = patch.DisableUnusedAfter
		} else if patch.IsNull("disable_unused_after") {
			app.DisableUnusedAfter = nil
		}
		if patch.ExpiryNotice != nil {
			app.ExpiryNotice = patch.ExpiryNotice
		} else if patch.IsNull("expiry_notice") {
			app.ExpiryNotice = nil
		}
		if patch.LeakPolicy != nil {
			app.LeakPolicy = *patch.LeakPolicy
			if app.LeakPolicy == "" {
				p.Add("leak_policy", "must be revoke, disable or notify")
			}
		}
		if patch.RotatedSecretPolicy != nil {
			app.RotatedSecretPolicy = *patch.RotatedSecretPolicy
			if app.RotatedSecretPolicy == "" {
				p.Add("rotated_secret_policy", "must be notify or disable")
			}
		}
		if patch.MaxTokensPerOwner != nil {
			app.MaxTokensPerOwner = patch.MaxTokensPerOwner
		} else if patch.IsNull("max_tokens_per_owner") {
			app.MaxTokensPerOwner = nil
		}
		if patch.OwnerRateLimit != nil {
			app.OwnerRateLimit = patch.OwnerRateLimit
		} else if patch.IsNull("owner_rate_limit") {
			app.OwnerRateLimit = nil
		}
		if patch.Portal != nil {
			app.Portal = patch.Portal
		} else if patch.IsNull("portal") {
			app.Portal = nil
		}
		for _, f := range patch.Null {
			switch f {
			case "max_token_lifetime", "disable_unused_after", "expiry_notice", "max_tokens_per_owner", "owner_rate_limit", "portal":
			default:
				p.Add(f, "cannot be null")
			}
		}
		checkApp(&p, app)
		if err := p.Err(); err != nil {
			return tokend.Event{}, err
		}
		d := map[string]any{}
		if before.Name != app.Name {
			change(d, "name", before.Name, app.Name)
		}
		if before.TokenPrefix != app.TokenPrefix {
			change(d, "token_prefix", before.TokenPrefix, app.TokenPrefix)
		}
		if !slices.Equal(before.Permissions, app.Permissions) {
			change(d, "permissions", before.Permissions, app.Permissions)
		}
		if !equalPtr(before.MaxTokenLifetime, app.MaxTokenLifetime) {
			change(d, "max_token_lifetime", fmtDuration(before.MaxTokenLifetime), fmtDuration(app.MaxTokenLifetime))
		}
		if !equalPtr(before.DisableUnusedAfter, app.DisableUnusedAfter) {
			change(d, "disable_unused_after", fmtDuration(before.DisableUnusedAfter), fmtDuration(app.DisableUnusedAfter))
		}
		if !equalPtr(before.ExpiryNotice, app.ExpiryNotice) {
			change(d, "expiry_notice", fmtDuration(before.ExpiryNotice), fmtDuration(app.ExpiryNotice))
		}
		if before.LeakPolicy != app.LeakPolicy {
			change(d, "leak_policy", before.LeakPolicy, app.LeakPolicy)
		}
		if before.RotatedSecretPolicy != app.RotatedSecretPolicy {
			change(d, "rotated_secret_policy", before.RotatedSecretPolicy, app.RotatedSecretPolicy)
		}
		if !equalPtr(before.MaxTokensPerOwner, app.MaxTokensPerOwner) {
			change(d, "max_tokens_per_owner", before.MaxTokensPerOwner, app.MaxTokensPerOwner)
		}
		if !equalPtr(before.OwnerRateLimit, app.OwnerRateLimit) {
			change(d, "owner_rate_limit", before.OwnerRateLimit, app.OwnerRateLimit)
		}
		if !jsonEqual(before.Portal, app.Portal) {
			change(d, "portal", before.Portal, app.Portal)
		}
		if len(d) == 0 {
			return tokend.Event{}, errNothing
		}
		app.UpdatedAt = now
		return s.event(a, tokend.ActionAppUpdate, app.ID, "", d), nil
	})
	if errors.Is(err, errNothing) {
		return s.App(ctx, a, id)
	}
	if err != nil {
		return tokend.App{}, storeErrIfMatch(err, "app", version)
	}
	s.inval.AppChanged(id)
	return presentApp(app), nil
}

// DeleteApp deletes an application and every token it has.
func (s *Service) DeleteApp(ctx context.Context, a tokend.Actor, id string, version int64) error {
	if err := a.Require(tokend.PermAppsWrite, tokend.PermTokensDelete); err != nil {
		return err
	}
	if err := refuseScoped(a, "delete applications"); err != nil {
		return err
	}
	if err := checkID(id, "app"); err != nil {
		return err
	}
	app, err := s.store.App(ctx, id)
	if err != nil {
		return storeErrIfMatch(err, "app", version)
	}
	if app.System {
		return tokend.Errorf(tokend.ECodeForbidden, "the system application is built in and cannot be deleted")
	}
	if err := versionCheck(version, app.Version); err != nil {
		return err
	}
	ev := s.event(a, tokend.ActionAppDelete, id, "", map[string]any{"name": app.Name})
	// The store checks the version again inside its delete: a concurrent
	// edit carrying the same ETag and this delete cannot both win.
	if err := s.store.DeleteApp(ctx, id, version, ev); err != nil {
		return storeErrIfMatch(err, "app", version)
	}
	s.inval.AppChanged(id)
	s.log.InfoContext(ctx, "app deleted", "app_id", id, "actor", a.Ref())
	return nil
}

// RevokeAll revokes every token of an application and answers how many.
func (s *Service) RevokeAll(ctx context.Context, a tokend.Actor, appID string) (int, error) {
	if err := a.Require(tokend.PermTokensWrite); err != nil {
		return 0, err
	}
	if err := refuseScoped(a, "revoke every token of an application (revoke its owner's: POST /v1/apps/{id}/owners/{owner_id}/revoke-all)"); err != nil {
		return 0, err
	}
	if err := checkID(appID, "app"); err != nil {
		return 0, err
	}
	app, err := s.store.App(ctx, appID)
	if err != nil {
		return 0, storeErr(err, "app")
	}
	if app.System {
		if err := requireAtLeast(a, tokend.AccessFull, nil); err != nil {
			return 0, err
		}
	}
	now := s.Now()
	ev := s.event(a, tokend.ActionAppRevokeAll, appID, "", map[string]any{"name": app.Name})
	// The store adds the count to the data.
	ev = withNotice(ev, tokend.EventAppTokensRevoked, map[string]any{"app_id": appID, "name": app.Name})
	ev.EachToken = s.eachRevoked
	n, err := s.store.RevokeAppTokens(ctx, appID, now, ev)
	if err != nil {
		return 0, storeErr(err, "app")
	}
	s.inval.AppChanged(appID)
	s.log.InfoContext(ctx, "all tokens of app revoked", "app_id", appID, "count", n, "actor", a.Ref())
	return n, nil
}

// RevokeOwner revokes every token of one owner of an application and
// answers how many, as RevokeAll does for the whole application.
func (s *Service) RevokeOwner(ctx context.Context, a tokend.Actor, appID, ownerID string) (int, error) {
	if err := a.Require(tokend.PermTokensWrite); err != nil {
		return 0, err
	}
	if err := checkID(appID, "app"); err != nil {
		return 0, err
	}
	if !tokend.ValidOwnerID(ownerID) {
		return 0, tokend.Errorf(tokend.ECodeNotFound, "owner not found: an owner id is 1 to %d visible ASCII characters", tokend.MaxOwnerIDLen)
	}
	if err := ownerOutOfScope(a, appID, ownerID); err != nil {
		return 0, err
	}
	app, err := s.store.App(ctx, appID)
	if err != nil {
		return 0, storeErr(err, "app")
	}
	now := s.Now()
	ev := s.event(a, tokend.ActionOwnerRevokeAll, appID, "", map[string]any{"name": app.Name, "owner_id": ownerID})
	ev = withNotice(ev, tokend.EventOwnerTokensRevoked, map[string]any{"app_id": appID, "name": app.Name, "owner_id": ownerID})
	ev.EachToken = s.eachRevoked
	n, err := s.store.RevokeOwnerTokens(ctx, appID, ownerID, now, ev)
	if err != nil {
		return 0, storeErr(err, "app")
	}
	s.inval.AppChanged(appID)
	s.log.InfoContext(ctx, "all tokens of an owner revoked", "app_id", appID, "owner_id", ownerID, "count", n, "actor", a.Ref())
	return n, nil
}

// Events lists audit events, newest first.
func (s *Service) Events(ctx context.Context, a tokend.Actor, f tokend.EventFilter) (tokend.Page[tokend.Event], error) {
	if err := a.Require(tokend.PermAuditRead); err != nil {
		return tokend.Page[tokend.Event]{}, err
	}
	var p tokend.Problems
	checkLogFilter(&p, f.Limit, f.TokenID, f.AppID, f.Since, f.Until)
	if len(f.Action) > 100 {
		p.Add("action", "must be at most 100 characters")
	} else {
		tokend.CheckText(&p, "action", f.Action, tokend.LineText)
	}
	if err := p.Err(); err != nil {
		return tokend.Page[tokend.Event]{}, err
	}
	if a.Scope != nil {
		f.Scope = a.Scope
	}
	page, err := s.store.Events(ctx, f)
	if page.Items == nil {
		page.Items = []tokend.Event{}
	}
	return page, storeErr(err, "event")
}
