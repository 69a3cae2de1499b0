package httpapi

import "github.com/tokend/tokend"

// scopedOperations are the operations an owner-scoped admin token may call
// at all; the service then keeps each within the token's scope. Any other
// operation, one added later included, is refused to a scoped token before
// its handler runs, until someone decides how it applies to a scope and
// lists it here (TestScopedTokenOnEveryOperation fails until its table
// classifies every operation of the OpenAPI document).
var scopedOperations = map[string]bool{
	"list-apps": true, "get-app": true,
	"list-tokens": true, "create-token": true, "get-token": true, "update-token": true,
	"disable-token": true, "enable-token": true, "revoke-token": true, "rotate-token": true,
	"delete-token": true, "token-usage": true, "token-activity": true,
	"list-audit": true, "revoke-owner": true,
	// The events of the scope's tokens, as the audit log.
	"list-events": true,
	// A portal link for the scope's own owner, in its applications.
	"create-portal-session": true,
	// Leaked secrets: only the scope's tokens are acted on; any other
	// secret answers unknown, as one that is no token's.
	"report-leaks": true,
	// Not the webhook operations: an endpoint hears every owner's events,
	// so managing them is administration of the whole instance (403).
}

// scopeRefusal answers a scoped token an operation not in scopedOperations.
var scopeRefusal = tokend.Errorf(tokend.ECodeForbidden, "an owner-scoped admin token cannot use this operation")
