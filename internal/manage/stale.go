package manage

import (
	"context"
	"errors"
	"time"

	"github.com/tokend/tokend"
)

// DisableUnused applies every application's stale-token policy
// (App.DisableUnusedAfter) once, at the service clock's now, and answers
// how many tokens it disabled.
//
// A token is disabled when it is active, not expired, and neither used nor
// created nor changed (enabled, edited) within the app's period: an admin
// who enables a token the policy disabled gets a full period before the
// policy looks at it again. Each disable is its own audited token.disable
// by the system actor, and invalidates cached verification answers as any
// disable does.
//
// Several instances may run it at once: each token is re-read and checked
// inside the transaction that disables it (UpdateToken), so a token is
// disabled, and audited, once.
func (s *Service) DisableUnused(ctx context.Context) (int, error) {
	now := s.Now()
	n := 0
	var cursor string
	for {
		apps, err := s.store.Apps(ctx, tokend.AppFilter{Limit: tokend.MaxPageSize, Cursor: cursor})
		if err != nil {
			return n, storeErr(err, "app")
		}
		for _, app := range apps.Items {
			if app.System || app.DisableUnusedAfter == nil {
				continue
			}
			k, err := s.disableUnusedOf(ctx, app, now)
			n += k
			if err != nil {
				return n, err
			}
		}
		if apps.NextCursor == "" {
			return n, nil
		}
		cursor = apps.NextCursor
	}
}

// disableUnusedOf applies one app's policy.
func (s *Service) disableUnusedOf(ctx context.Context, app tokend.App, now time.Time) (int, error) {
	period := *app.DisableUnusedAfter
	cutoff := now.Add(-time.Duration(period))
	f := tokend.TokenFilter{AppID: app.ID, Status: tokend.StatusActive, UnusedFor: period, Now: now, Limit: tokend.MaxPageSize}
	n := 0
	for {
		page, err := s.store.Tokens(ctx, f)
		if err != nil {
			return n, storeErr(err, "token")
		}
		for _, t := range page.Items {
			ok, err := s.disableUnused(ctx, t.ID, period, cutoff, now)
			if err != nil {
				return n, err
			}
			if ok {
				n++
			}
		}
		if page.NextCursor == "" {
			return n, nil
		}
		f.Cursor = page.NextCursor
	}
}

// disableUnused disables one token if, read again inside the transaction,
// it still falls under the policy.
func (s *Service) disableUnused(ctx context.Context, id string, period tokend.Duration, cutoff, now time.Time) (bool, error) {
	a := tokend.SystemActor
	_, err := s.store.UpdateToken(ctx, id, func(t *tokend.Token) (tokend.Event, error) {
		last := t.CreatedAt // never used: since created, as the stores count
		if t.LastUsedAt != nil {
			last = *t.LastUsedAt
		}
		if t.StatusAt(now) != tokend.StatusActive || last.After(cutoff) || t.UpdatedAt.After(cutoff) {
			return tokend.Event{}, errNothing
		}
		t.Status, t.UpdatedAt = tokend.StatusDisabled, now
		ev := s.tokenEvent(a, tokend.ActionTokenDisable, stored(*t), map[string]any{
			"status": map[string]any{"from": tokend.StatusActive, "to": tokend.StatusDisabled},
			"name":   t.Name, "reason": "unused", "unused_for": period.String(),
		})
		inactive := s.tokenData(stored(*t))
		inactive["unused_for"] = period.String()
		return withNotice(ev, tokend.EventTokenInactive, inactive), nil
	})
	switch {
	case errors.Is(err, errNothing), errors.Is(err, tokend.ErrNotFound):
		return false, nil // changed, used or deleted meanwhile
	case err != nil:
		return false, storeErr(err, "token")
	}
	s.inval.TokenChanged(id)
	s.log.InfoContext(ctx, "token disabled: unused", "token_id", id, "unused_for", period.String())
	return true, nil
}

// RunDisableUnused applies the stale-token policies at start and then on
// every tick until ctx ends. Failures are logged and retried at the next
// tick. tick is a channel so that a test drives it without waiting.
func (s *Service) RunDisableUnused(ctx context.Context, tick <-chan time.Time) {
	for {
		if n, err := s.DisableUnused(ctx); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "stale-token policy", "err", err, "disabled", n)
		} else if n > 0 {
			s.log.InfoContext(ctx, "stale-token policy", "disabled", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
	}
}

// DisableRotated disables a token whose secret replaced by rotation was
// presented after its grace, its app's rotated_secret_policy being
// disable: one transaction writes the token, the audit row of the disable
// and its events, token.disabled and token.rotated_secret_used (ev's, as
// the verification engine made it), and then the caches are told. A token
// no longer active (disabled, revoked, expired meanwhile) or gone is left
// as it is, and ev is recorded on its own. It is verify.Options.Disable.
func (s *Service) DisableRotated(ctx context.Context, id string, ev tokend.Event) error {
	now := s.Now()
	// The policy as it is now: a use queued during an outage is applied
	// after an admin may have set it back to notify. It is read before the
	// write begins (see appOfToken).
	cur, err := s.store.Token(ctx, id)
	if errors.Is(err, tokend.ErrNotFound) {
		return storeErr(s.store.AppendEvent(ctx, ev), "event")
	}
	if err != nil {
		return storeErr(err, "token")
	}
	app, err := s.store.App(ctx, cur.AppID)
	if err != nil {
		return storeErr(err, "app")
	}
	_, err = s.store.UpdateToken(ctx, id, func(t *tokend.Token) (tokend.Event, error) {
		if t.StatusAt(now) != tokend.StatusActive {
			return tokend.Event{}, errNothing
		}
		if t.AppID != app.ID || app.RotatedSecretPolicy != tokend.RotatedDisable {
			return tokend.Event{}, errNothing
		}
		t.Status, t.UpdatedAt = tokend.StatusDisabled, now
		details := map[string]any{
			"status": map[string]any{"from": tokend.StatusActive, "to": tokend.StatusDisabled},
			"name":   t.Name, "reason": "rotated_secret_used",
		}
		for _, k := range []string{"user_agent", "endpoint", "grace_until"} {
			if v, ok := ev.Details[k]; ok {
				details[k] = v
			}
		}
		d := s.tokenEvent(tokend.SystemActor, tokend.ActionTokenDisable, stored(*t), details)
		d.Actor, d.ActorName, d.IP = ev.Actor, ev.ActorName, ev.IP
		d.Notices = append(d.Notices, ev.Notices...)
		return d, nil
	})
	switch {
	case errors.Is(err, errNothing):
		if s.disabledForRotatedUse(ctx, id, ev.Time) {
			// Another instance saw the old secret too (each keeps its
			// own hourly bound) and disabled the token, raising the
			// event with it: once is enough.
			return nil
		}
		return storeErr(s.store.AppendEvent(ctx, ev), "event")
	case errors.Is(err, tokend.ErrNotFound):
		return storeErr(s.store.AppendEvent(ctx, ev), "event")
	case err != nil:
		return storeErr(err, "token")
	}
	s.inval.TokenChanged(id)
	s.log.WarnContext(ctx, "token disabled: a secret replaced by rotation was used after its grace period", "token_id", id, "ip", ev.IP)
	return nil
}

// disabledForRotatedUse reports whether the token's latest disable is one
// for a rotated-out secret's use within the hour before at.
func (s *Service) disabledForRotatedUse(ctx context.Context, id string, at time.Time) bool {
	page, err := s.store.Events(ctx, tokend.EventFilter{TokenID: id, Action: tokend.ActionTokenDisable, Limit: 1})
	if err != nil || len(page.Items) == 0 {
		return false
	}
	d := page.Items[0]
	return d.Details["reason"] == "rotated_secret_used" && at.Sub(d.Time) < time.Hour
}

// RunForgetRotated deletes, at start and then on every tick until ctx
// ends, the secrets replaced by rotation whose grace ended more than
// retention ago: their use answers NOT_FOUND from then on. Every instance
// may run it; the delete is idempotent. Failures are logged and retried at
// the next tick.
func (s *Service) RunForgetRotated(ctx context.Context, tick <-chan time.Time, retention time.Duration) {
	for {
		if n, err := s.store.ForgetRetiredSecrets(ctx, s.Now().Add(-retention)); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "forgetting rotated-out secrets", "err", err)
		} else if n > 0 {
			s.log.InfoContext(ctx, "rotated-out secrets forgotten", "count", n, "retention", retention.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
	}
}
