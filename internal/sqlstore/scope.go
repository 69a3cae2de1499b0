package sqlstore

import (
	"strings"

	"github.com/tokend/tokend"
)

// The owner scope of an admin token (tokend.AdminScope) as conditions of
// the list queries: the tokens, applications and events a scoped actor may
// see, chosen by the database so that pages and counts are right. Each
// mirrors AdminScope's methods: the system app is never in a scope, and a
// scope without an owner admits nothing.

// scopeTokens keeps the tokens the scope admits (AdminScope.Admits).
func scopeTokens(w *where, sc *tokend.AdminScope) {
	if sc == nil {
		return
	}
	cond, args := scopeTokenCond(sc)
	w.add(cond, args...)
}

// scopeTokenCond is the condition on a tokens row, with its arguments.
func scopeTokenCond(sc *tokend.AdminScope) (string, []any) {
	if sc.OwnerID == "" {
		return "1 = 0", nil
	}
	cond := "owner_id = ? AND app_id <> ?"
	args := []any{sc.OwnerID, tokend.SystemAppID}
	if len(sc.AppIDs) > 0 {
		cond += " AND app_id IN (" + marks(len(sc.AppIDs)) + ")"
		for _, id := range sc.AppIDs {
			args = append(args, id)
		}
	}
	return cond, args
}

// scopeApps keeps the applications the scope admits (AdminScope.AdmitsApp).
func scopeApps(w *where, sc *tokend.AdminScope) {
	if sc == nil {
		return
	}
	w.add("id <> ?", tokend.SystemAppID)
	if len(sc.AppIDs) > 0 {
		args := make([]any, len(sc.AppIDs))
		for i, id := range sc.AppIDs {
			args[i] = id
		}
		w.add("id IN ("+marks(len(sc.AppIDs))+")", args...)
	}
}

// scopeEvents keeps the events of the tokens the scope admits, as the
// tokens are now: an event without a token (an application's) or of a
// deleted token is left out.
func scopeEvents(w *where, sc *tokend.AdminScope) {
	if sc == nil {
		return
	}
	cond, args := scopeTokenCond(sc)
	w.add("token_id IN (SELECT id FROM tokens WHERE "+cond+")", args...)
}

// marks answers n "?" for where.add, separated by commas.
func marks(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}
