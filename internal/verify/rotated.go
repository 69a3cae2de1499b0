package verify

import (
	"context"
	"errors"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/tokend/tokend"
)

// A secret replaced by rotation, presented after its grace period, answers
// ROTATED and raises token.rotated_secret_used: whoever holds it may have
// stolen it. With its app's rotated_secret_policy disable, the token is
// disabled too (Options.Disable), off the request path but at once.

// maxEventText bounds the text a client sent (user agent, origin) kept in
// a security event, in bytes (cut on a character boundary).
const maxEventText = 256

// eventText answers what of text a client sent (a user agent, an origin)
// may be kept in a security event: at most maxEventText bytes, cut on a character
// boundary, and only a line of text (tokend.CheckText's LineText rule);
// "" otherwise. The caller controls it: it is shown in mail and the
// dashboard, so nothing that could pass for something else gets in.
func eventText(ua string) string {
	ua = cutText(ua, maxEventText)
	if tokend.TextProblem(ua, tokend.LineText) != "" {
		return ""
	}
	return ua
}

// cutText cuts s to at most n bytes, on a character boundary.
func cutText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// rotatedMark is when a token last raised token.rotated_secret_used on this
// instance, and at which version of the token: at most one event per token
// per hour, so that whoever holds the old secret cannot flood the audit log
// or anyone's mailbox, but a change to the token (re-enabled, rotated
// again) starts the count afresh, so that a re-enabled token is watched
// again at once.
type rotatedMark struct {
	mu      sync.Mutex
	at      int64 // unix ns; 0 for never
	version int64
}

// claim reports whether an event is due now for the token at version, and
// if so records it.
func (m *rotatedMark) claim(now, version int64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.at != 0 && m.version == version && now-m.at < int64(time.Hour) {
		return false
	}
	m.at, m.version = now, version
	return true
}

// rotatedSecretUsed records that a secret retired by rotation was presented
// after its grace period. Neither the event nor the log carries the secret.
func (e *Engine) rotatedSecretUsed(ent *entry, r *tokend.VerifyRequest, now int64) {
	st := ent.state
	if !st.rotatedMarkOf().claim(now, ent.rare.version) {
		return
	}
	when := time.Unix(0, now).UTC()
	ua := eventText(r.UserAgent)
	data := map[string]any{"token_id": st.id, "app_id": st.app.id, "at": when.Format(time.RFC3339Nano)}
	details := map[string]any{"reason": "a secret replaced by rotation was used after its grace period"}
	for k, v := range map[string]string{"ip": storableIP(r.IP), "user_agent": ua, "endpoint": r.Endpoint} {
		if v != "" {
			data[k], details[k] = v, v
		}
	}
	if !ent.negative() {
		data["name"] = ent.token.Name
	}
	if ent.graceUntil() != 0 {
		details["grace_until"] = time.Unix(0, ent.graceUntil()).UTC().Format(time.RFC3339)
		data["grace_until"] = details["grace_until"]
	}
	policy := tokend.RotatedNotify
	if ent.disableOnReuse() {
		policy = tokend.RotatedDisable
	}
	data["policy"] = string(policy)
	ev := tokend.Event{
		Time:      when,
		Actor:     "system",
		ActorName: "tokend verification",
		IP:        storableIP(r.IP),
		Action:    tokend.ActionTokenOldSecret,
		AppID:     st.app.id,
		TokenID:   st.id,
		Details:   details,
		Notices:   []tokend.Notice{{Type: tokend.EventTokenRotatedSecretUsed, Data: data}},
	}
	queued := false
	if ent.disableOnReuse() && e.disable != nil {
		queued = e.disables.add(ev)
		if queued {
			select {
			case e.nudge <- struct{}{}:
			default: // a nudge is pending already
			}
		}
	} else {
		queued = e.events.add(ev)
	}
	if !queued {
		e.log.Error("verify: too many audit events waiting for storage; one was dropped",
			"action", tokend.ActionTokenOldSecret, "token_id", st.id)
	}
	e.log.Warn("verify: a secret replaced by rotation was used after its grace period; it may have leaked",
		"token_id", st.id, "app_id", st.app.id, "ip", ev.IP, "endpoint", r.Endpoint, "policy", string(policy))
}

// applyDisables hands each queued use of a rotated-out secret whose app
// disables the token to Options.Disable, one transaction each. What storage
// could not take is kept for the next flush; a token gone meanwhile needs
// nothing more.
func (e *Engine) applyDisables(ctx context.Context) error {
	evs := e.disables.take()
	for i, ev := range evs {
		err := e.disable(ctx, ev.TokenID, ev)
		if err == nil || errors.Is(err, tokend.ErrNotFound) {
			continue
		}
		e.disables.putBack(evs[i:])
		e.log.Error("verify: disabling a token whose rotated-out secret was used failed; it is retried at the next flush",
			"err", err, "token_id", ev.TokenID)
		return err
	}
	return nil
}
