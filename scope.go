package tokend

import "slices"

// Owner-scoped admin tokens: the confused-deputy guard.
//
// A product's backend acts for one of its customers at a time. An admin
// token whose Scope names that customer (the owner) lets the backend list,
// create and manage only that owner's tokens, in the scope's applications
// when it names some: a request the backend forwards for customer X with
// customer Y's token id finds nothing. Everything outside the scope is
// answered exactly as if it did not exist (404, not 403), so that a scoped
// token cannot even learn what exists elsewhere; what a scope can never do
// (edit applications, manage users) is 403. A scope is set when the admin
// token is created and never changes: a scope is what the token is.

// MaxScopeApps bounds how many applications a scope may name.
const MaxScopeApps = 100

// Admits reports whether a token of application appID belonging to ownerID
// is within the scope. A nil scope (an unscoped actor) admits everything; a
// scope never admits an admin token (the system app's), nor, failing
// closed, anything when it names no owner.
func (s *AdminScope) Admits(appID, ownerID string) bool {
	if s == nil {
		return true
	}
	return s.OwnerID != "" && ownerID == s.OwnerID && s.AdmitsApp(appID)
}

// AdmitsApp reports whether the scope covers application appID: every
// product application when it names none, never the system app.
func (s *AdminScope) AdmitsApp(appID string) bool {
	if s == nil {
		return true
	}
	if appID == SystemAppID {
		return false
	}
	return len(s.AppIDs) == 0 || slices.Contains(s.AppIDs, appID)
}

// Within reports whether s is at most as wide as outer: the same owner and,
// when outer names applications, some of them (a scope naming none would be
// wider). Anything is within a nil outer; a nil s is within no scope.
func (s *AdminScope) Within(outer *AdminScope) bool {
	if outer == nil {
		return true
	}
	if s == nil || s.OwnerID != outer.OwnerID {
		return false
	}
	if len(outer.AppIDs) == 0 {
		return true
	}
	if len(s.AppIDs) == 0 {
		return false
	}
	for _, id := range s.AppIDs {
		if !slices.Contains(outer.AppIDs, id) {
			return false
		}
	}
	return true
}

// Clone answers a copy that shares nothing with s.
func (s *AdminScope) Clone() *AdminScope {
	if s == nil {
		return nil
	}
	return &AdminScope{OwnerID: s.OwnerID, AppIDs: slices.Clone(s.AppIDs)}
}
