package httpapi

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
)

// addRoutes lists the whole API on one screen.
func addRoutes(api huma.API, mux *http.ServeMux, d Deps) {
	svc, log := d.Service, d.Logger
	admin := []map[string][]string{{"bearer": {}}}
	op := func(method, path, id, summary, tag string, status int) huma.Operation {
		return huma.Operation{
			OperationID: id, Method: method, Path: path, Summary: summary, Tags: []string{tag},
			DefaultStatus: status, Security: admin, MaxBodyBytes: MaxBodyBytes,
			Errors: []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound,
				http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity, http.StatusTooManyRequests,
				http.StatusServiceUnavailable},
		}
	}
	// Public operations declare an empty security requirement: no
	// credential, said explicitly (linters flag an operation that says
	// nothing), and list the errors they can give: no admin token is
	// checked, so none of its.
	public := func(o huma.Operation, errors ...int) huma.Operation {
		o.Security, o.Errors = []map[string][]string{}, errors
		return o
	}
	withErrors := func(o huma.Operation, codes ...int) huma.Operation { o.Errors = append(o.Errors, codes...); return o }

	register(api, log, public(op(http.MethodGet, "/healthz", "health", "Liveness", "Operations", 200)), handleHealth)
	register(api, log, public(op(http.MethodGet, "/readyz", "ready", "Readiness: storage reachable and writable", "Operations", 200),
		http.StatusServiceUnavailable), handleReady(d.Ready))

	// A verification is answered 200 whatever the token (RATE_LIMITED
	// included), once the question is well formed.
	registerVerify(api, mux, log, public(op(http.MethodPost, "/v1/verify", "verify", "Verify a token", "Verification", 200),
		http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity,
		http.StatusServiceUnavailable), d.Verifier)
	register(api, log, public(op(http.MethodGet, "/v1/auth", "forward-auth", "Forward auth for reverse proxies", "Verification", 200),
		http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests, http.StatusServiceUnavailable), handleForwardAuth(d.Verifier))

	// The token asking about itself: its own secret is the credential,
	// checked by the engine in the handler, not by authenticate.
	self := op(http.MethodGet, "/v1/self", "self", "The presented token's own id, app, permissions, expiry and rate limit (its secret never)", "Verification", 200)
	self.Security = []map[string][]string{{"token": {}}}
	self.Errors = []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests, http.StatusServiceUnavailable}
	register(api, log, self, handleSelf(svc, d.Verifier))

	register(api, log, op(http.MethodGet, "/v1/apps", "list-apps", "List applications", "Apps", 200), handleAppList(svc))
	register(api, log, checkBody(withErrors(op(http.MethodPost, "/v1/apps", "create-app", "Create an application", "Apps", 201), http.StatusConflict)), handleAppCreate(api, svc))
	register(api, log, op(http.MethodGet, "/v1/apps/{id}", "get-app", "Get an application", "Apps", 200), handleAppGet(svc))
	register(api, log, checkBody(withErrors(op(http.MethodPatch, "/v1/apps/{id}", "update-app", "Edit an application", "Apps", 200), http.StatusConflict, http.StatusPreconditionFailed)), handleAppPatch(api, svc))
	register(api, log, withErrors(op(http.MethodDelete, "/v1/apps/{id}", "delete-app", "Delete an application and all its tokens", "Apps", 204), http.StatusPreconditionFailed), handleAppDelete(svc))
	register(api, log, op(http.MethodPost, "/v1/apps/{id}/revoke-all", "revoke-all", "Revoke every token of an application", "Apps", 200), handleAppRevokeAll(svc))
	register(api, log, op(http.MethodPost, "/v1/apps/{id}/owners/{owner_id}/revoke-all", "revoke-owner", "Revoke every token of one owner of an application", "Apps", 200), handleOwnerRevokeAll(svc))

	register(api, log, op(http.MethodGet, "/v1/tokens", "list-tokens", "List tokens", "Tokens", 200), handleTokenList(svc))
	register(api, log, checkBody(withErrors(op(http.MethodPost, "/v1/tokens", "create-token", "Create a token; the answer holds its secret, shown only once", "Tokens", 201), http.StatusConflict)), handleTokenCreate(api, svc))
	register(api, log, op(http.MethodGet, "/v1/tokens/{id}", "get-token", "Get a token", "Tokens", 200), handleTokenGet(svc))
	register(api, log, checkBody(withErrors(op(http.MethodPatch, "/v1/tokens/{id}", "update-token", "Edit a token", "Tokens", 200), http.StatusConflict, http.StatusPreconditionFailed)), handleTokenPatch(api, svc))
	register(api, log, withErrors(op(http.MethodPost, "/v1/tokens/{id}/disable", "disable-token", "Disable a token", "Tokens", 200), http.StatusConflict, http.StatusPreconditionFailed), handleTokenState(svc.DisableToken))
	register(api, log, withErrors(op(http.MethodPost, "/v1/tokens/{id}/enable", "enable-token", "Enable a disabled token", "Tokens", 200), http.StatusConflict, http.StatusPreconditionFailed), handleTokenState(svc.EnableToken))
	register(api, log, withErrors(op(http.MethodPost, "/v1/tokens/{id}/revoke", "revoke-token", "Revoke a token for good", "Tokens", 200), http.StatusPreconditionFailed), handleTokenState(svc.RevokeToken))
	register(api, log, withErrors(op(http.MethodPost, "/v1/tokens/{id}/rotate", "rotate-token", "Give a token a new secret, shown only once", "Tokens", 200), http.StatusConflict, http.StatusPreconditionFailed), handleTokenRotate(svc))
	register(api, log, withErrors(op(http.MethodDelete, "/v1/tokens/{id}", "delete-token", "Delete a token for good", "Tokens", 204), http.StatusPreconditionFailed), handleTokenDelete(svc))
	register(api, log, op(http.MethodGet, "/v1/tokens/{id}/usage", "token-usage", "Hourly verification counts by outcome", "Tokens", 200), handleTokenUsage(svc))
	register(api, log, op(http.MethodGet, "/v1/tokens/{id}/activity", "token-activity", "The token's recent verifications, newest first", "Tokens", 200), handleTokenActivity(svc))

	register(api, log, op(http.MethodPost, "/v1/leaks", "report-leaks", "Report leaked secrets: each token found is handled by its application's leak policy", "Tokens", 200), handleLeakReport(svc))
	if d.GitHubKeys != nil { // --github-scanning-keys; without it the path is no route (404)
		registerGitHubLeaks(api, mux, log, op(http.MethodPost, "/v1/leaks/github", "report-leaks-github",
			"GitHub secret scanning partner endpoint: a report signed by GitHub; each secret found is handled by its application's leak policy", "Tokens", 200), svc, d.GitHubKeys)
	}

	register(api, log, op(http.MethodPost, "/v1/portal/sessions", "create-portal-session", "Mint a single-use link to the customer portal for one owner", "Portal", 201), handlePortalSession(svc))

	register(api, log, op(http.MethodGet, "/v1/audit", "list-audit", "The audit log", "Audit", 200), handleAudit(svc))
	register(api, log, op(http.MethodGet, "/v1/events", "list-events", "Events (token.created, token.expiring…), newest first", "Events", 200), handleEvents(svc))

	register(api, log, op(http.MethodGet, "/v1/webhooks", "list-webhooks", "List webhook endpoints", "Webhooks", 200), handleWebhookList(svc))
	register(api, log, checkBody(op(http.MethodPost, "/v1/webhooks", "create-webhook", "Add a webhook endpoint; the answer holds its signing secret, shown only once", "Webhooks", 201)), handleWebhookCreate(api, svc))
	register(api, log, op(http.MethodGet, "/v1/webhooks/{id}", "get-webhook", "Get a webhook endpoint", "Webhooks", 200), handleWebhookGet(svc))
	register(api, log, checkBody(withErrors(op(http.MethodPatch, "/v1/webhooks/{id}", "update-webhook", "Edit, enable or disable a webhook endpoint", "Webhooks", 200), http.StatusPreconditionFailed)), handleWebhookPatch(api, svc))
	register(api, log, withErrors(op(http.MethodDelete, "/v1/webhooks/{id}", "delete-webhook", "Delete a webhook endpoint and its deliveries", "Webhooks", 204), http.StatusPreconditionFailed), handleWebhookDelete(svc))
	register(api, log, withErrors(op(http.MethodPost, "/v1/webhooks/{id}/rotate-secret", "rotate-webhook-secret", "Give a webhook endpoint a new signing secret, shown only once; the old one signs alongside for 24 hours", "Webhooks", 200), http.StatusPreconditionFailed), handleWebhookRotate(svc))
	register(api, log, withErrors(op(http.MethodPost, "/v1/webhooks/{id}/test", "test-webhook", "Send a webhook.test event to this endpoint only", "Webhooks", 202), http.StatusConflict), handleWebhookTest(svc))
	register(api, log, op(http.MethodGet, "/v1/webhooks/{id}/deliveries", "list-webhook-deliveries", "The deliveries to a webhook endpoint, newest first, with their attempts", "Webhooks", 200), handleWebhookDeliveries(svc))
	register(api, log, withErrors(op(http.MethodPost, "/v1/webhooks/{id}/deliveries/{delivery_id}/retry", "retry-webhook-delivery", "Send a delivery again now, whatever its state (409 when the endpoint is disabled)", "Webhooks", 200), http.StatusConflict), handleDeliveryRetry(svc))
}

// register adds an operation whose handler errors all pass through
// problemFrom, the one adapter from errors to problem documents; internal
// causes are logged here, once.
func register[I, O any](api huma.API, log *slog.Logger, op huma.Operation, h func(context.Context, *I) (*O, error)) {
	huma.Register(api, op, func(ctx context.Context, in *I) (*O, error) {
		out, err := h(ctx, in)
		if err == nil {
			return out, nil
		}
		p := problemFrom(err)
		if p.Status >= 500 {
			log.ErrorContext(ctx, "request failed", "operation", op.OperationID, "code", p.Code, "err", p.cause)
		}
		return nil, p
	})
}
