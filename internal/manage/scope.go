package manage

import (
	"context"
	"slices"
	"strconv"

	"github.com/tokend/tokend"
)

// Owner-scoped admin tokens (tokend.AdminScope): the rules of this file
// are called from every operation of the service, so that the API, the CLI
// and any later front door get them alike.
//
// For a scoped actor:
//   - a token outside the scope, an admin token included, is answered as a
//     token that does not exist, by the same code path (outOfScope answers
//     the store's own ErrNotFound), so that the answers cannot differ;
//   - lists, counts and the audit log are filtered by the store (the
//     filters' Scope), never after the fact;
//   - what a scope can never do (applications' settings, revoke-all of an
//     application, users) is refused with 403 before anything is read.

// outOfScope answers nil when the actor's scope admits t, and otherwise the
// store's ErrNotFound, which every caller turns into the answer a missing
// token gets (404, or 412 under If-Match, as storeErrIfMatch says).
func outOfScope(a tokend.Actor, t tokend.Token) error {
	if t.Decoy && a.Kind == portalKind {
		// The customer portal never shows a decoy, nor acts on one.
		return tokend.ErrNotFound
	}
	if a.Scope.Admits(t.AppID, t.OwnerID) {
		return nil
	}
	return tokend.ErrNotFound
}

// refuseScoped answers FORBIDDEN for a scoped actor: the operation is one
// no owner-scoped admin token may perform.
func refuseScoped(a tokend.Actor, what string) error {
	if a.Scope == nil {
		return nil
	}
	return tokend.Errorf(tokend.ECodeForbidden, "an owner-scoped admin token cannot %s", what)
}

// hideApp forgets an application a scoped actor may not see, recording
// the problem appFor records for an application that does not exist, so
// that both answers are the same. allowSystem admits the system app (a
// scoped actor creating a narrower admin token).
func hideApp(a tokend.Actor, p *tokend.Problems, app tokend.App, allowSystem bool) tokend.App {
	if app.ID == "" || a.Scope.AdmitsApp(app.ID) || allowSystem && app.ID == tokend.SystemAppID {
		return app
	}
	p.Add("app_id", "no application with this id")
	return tokend.App{}
}

// scopeOwner applies the actor's scope to the owner of a token being
// created: an omitted owner is the scope's, another one is refused. The
// message names only the scope's own owner, which its holder knows.
func scopeOwner(a tokend.Actor, in *tokend.TokenInput) error {
	if a.Scope == nil {
		return nil
	}
	if in.OwnerID != "" && in.OwnerID != a.Scope.OwnerID {
		return tokend.Errorf(tokend.ECodeForbidden, "this admin token is scoped to owner %q: the tokens it creates belong to that owner", a.Scope.OwnerID)
	}
	if in.AppID != tokend.SystemAppID {
		in.OwnerID = a.Scope.OwnerID
	}
	return nil
}

// checkScope validates the scope of a new token: only admin tokens have
// one; its owner is an owner id; its applications exist and are product
// applications. It puts the scope in its canonical form (app ids once
// each, in the order given) and answers it, or nil when there is none.
func (s *Service) checkScope(ctx context.Context, p *tokend.Problems, appID string, sc *tokend.AdminScope) (*tokend.AdminScope, error) {
	if sc == nil {
		return nil, nil
	}
	if appID != tokend.SystemAppID {
		p.Add("scope", "is only for admin tokens (of the application %s)", tokend.SystemAppID)
		return nil, nil
	}
	sc = sc.Clone()
	sc.AppIDs = dedupe(sc.AppIDs)
	if sc.OwnerID == "" {
		p.Add("scope.owner_id", "is required")
	} else {
		tokend.CheckOwnerID(p, "scope.owner_id", sc.OwnerID)
	}
	if len(sc.AppIDs) > tokend.MaxScopeApps {
		p.Add("scope.app_ids", "may name at most %d applications", tokend.MaxScopeApps)
		return sc, nil
	}
	for i, id := range sc.AppIDs {
		field := "scope.app_ids[" + strconv.Itoa(i) + "]"
		if id == tokend.SystemAppID {
			p.Add(field, "must be a product application, not the system application")
			continue
		}
		var q tokend.Problems
		if _, err := s.appFor(ctx, &q, id); err != nil {
			return nil, err
		}
		for _, f := range q {
			p.Add(field, "%s", f.Message)
		}
	}
	return sc, nil
}

// checkNewAdminScope is the rule for a scoped actor creating an admin
// token: the new token is scoped too, at most as widely, so that a scoped
// token can never make an unscoped one or widen its own reach.
func checkNewAdminScope(a tokend.Actor, sc *tokend.AdminScope) error {
	if a.Scope == nil || sc.Within(a.Scope) {
		return nil
	}
	if len(a.Scope.AppIDs) > 0 {
		return tokend.Errorf(tokend.ECodeForbidden, "this admin token is scoped to owner %q and some applications: the admin tokens it creates must be scoped to that owner and to some of those applications", a.Scope.OwnerID)
	}
	return tokend.Errorf(tokend.ECodeForbidden, "this admin token is scoped to owner %q: the admin tokens it creates must be scoped to that owner", a.Scope.OwnerID)
}

// scopeDetails is what an audit event records of a scoped actor: the
// owner it acted for.
func scopeDetails(a tokend.Actor, details map[string]any) map[string]any {
	if a.Scope == nil {
		return details
	}
	if details == nil {
		details = map[string]any{}
	}
	details["scope_owner_id"] = a.Scope.OwnerID
	if len(a.Scope.AppIDs) > 0 {
		details["scope_app_ids"] = slices.Clone(a.Scope.AppIDs)
	}
	return details
}

// readable answers nil when the token exists and the actor's scope admits
// it, and otherwise what a missing token is answered.
func (s *Service) readable(ctx context.Context, a tokend.Actor, id string) error {
	t, err := s.store.Token(ctx, id)
	if err == nil {
		err = outOfScope(a, t)
	}
	return storeErr(err, "token")
}

// ownerOutOfScope is the rule of an operation on one owner of an
// application (revoking all of the owner's tokens): a scoped actor may act
// only on its own owner, in an application of its scope. An application
// outside the scope is answered as one that does not exist; another owner
// always as "owner not found", before anything is read, so that the answer
// says nothing of whether that owner has tokens.
func ownerOutOfScope(a tokend.Actor, appID, ownerID string) error {
	switch {
	case a.Scope == nil:
		return nil
	case !a.Scope.AdmitsApp(appID):
		return storeErr(tokend.ErrNotFound, "app")
	case ownerID != a.Scope.OwnerID:
		return tokend.Errorf(tokend.ECodeNotFound, "owner not found")
	}
	return nil
}
