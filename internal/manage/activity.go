package manage

import (
	"context"
	"time"

	"github.com/tokend/tokend"
)

// TokenActivity answers the token's recent verifications, newest first (at
// most tokend.MaxActivity), with the permission and answers of Token.
func (s *Service) TokenActivity(ctx context.Context, a tokend.Actor, id string) ([]tokend.Activity, error) {
	if err := a.Require(tokend.PermTokensRead); err != nil {
		return nil, err
	}
	if err := checkID(id, "token"); err != nil {
		return nil, err
	}
	if err := s.readable(ctx, a, id); err != nil {
		return nil, err
	}
	act, err := s.store.Activity(ctx, id)
	if err != nil {
		return nil, storeErr(err, "token")
	}
	if act == nil {
		act = []tokend.Activity{}
	}
	return act, nil
}

// Leak is the warning raised when a secret that rotation replaced was used
// after its grace period (the verification engine's audit event
// token.old_secret_used): the secret may have leaked. It stands until
// someone dismisses it, or the token is rotated again or revoked.
type Leak struct {
	TokenID   string
	TokenName string
	AppID     string
	// RotatedAt is when the rotation that retired the secret happened;
	// zero when the audit log no longer tells.
	RotatedAt time.Time
	UsedAt    time.Time // the latest use recorded
	IP        string    // where from, as the verifier was told
}

// maxLeaks bounds the tokens LeakSignals looks at.
const maxLeaks = 20

// TokenLeak answers the token's standing leak warning, or nil.
func (s *Service) TokenLeak(ctx context.Context, a tokend.Actor, id string) (*Leak, error) {
	t, err := s.Token(ctx, a, id)
	if err != nil {
		return nil, err
	}
	return s.leakOf(ctx, t)
}

// LeakSignals answers the standing leak warnings of every token, the most
// recent use first (at most 20 tokens).
func (s *Service) LeakSignals(ctx context.Context, a tokend.Actor) ([]Leak, error) {
	if err := a.Require(tokend.PermTokensRead); err != nil {
		return nil, err
	}
	page, err := s.store.Events(ctx, tokend.EventFilter{Action: tokend.ActionTokenOldSecret, Limit: tokend.MaxPageSize})
	if err != nil {
		return nil, storeErr(err, "event")
	}
	seen := map[string]bool{}
	var out []Leak
	for _, ev := range page.Items {
		if seen[ev.TokenID] || len(out) >= maxLeaks {
			continue
		}
		seen[ev.TokenID] = true
		t, err := s.store.Token(ctx, ev.TokenID)
		if err != nil || outOfScope(a, t) != nil {
			continue // deleted since, or not the actor's to see
		}
		l, err := s.leakOf(ctx, t)
		if err != nil {
			return nil, err
		}
		if l != nil {
			out = append(out, *l)
		}
	}
	return out, nil
}

// leakOf reads the warning from the token's audit events: the latest use of
// an old secret, unless a rotation or a dismissal came after it.
func (s *Service) leakOf(ctx context.Context, t tokend.Token) (*Leak, error) {
	if t.Status == tokend.StatusRevoked {
		return nil, nil
	}
	latest := func(action string) (tokend.Event, bool, error) {
		page, err := s.store.Events(ctx, tokend.EventFilter{TokenID: t.ID, Action: action, Limit: 1})
		if err != nil || len(page.Items) == 0 {
			return tokend.Event{}, false, storeErr(err, "event")
		}
		return page.Items[0], true, nil
	}
	used, ok, err := latest(tokend.ActionTokenOldSecret)
	if err != nil || !ok {
		return nil, err
	}
	rotated, okRot, err := latest(tokend.ActionTokenRotate)
	if err != nil {
		return nil, err
	}
	if okRot && rotated.Time.After(used.Time) {
		return nil, nil // rotated again since: the warned-of secret is gone
	}
	dismissed, okDis, err := latest(tokend.ActionTokenLeakDismissed)
	if err != nil {
		return nil, err
	}
	if okDis && !dismissed.Time.Before(used.Time) {
		return nil, nil
	}
	l := &Leak{TokenID: t.ID, TokenName: t.Name, AppID: t.AppID, UsedAt: used.Time.UTC(), IP: used.IP}
	if okRot {
		l.RotatedAt = rotated.Time.UTC()
	}
	return l, nil
}

// DismissLeak acknowledges the token's leak warning, in the audit log.
// Dismissing a token without one changes nothing and is no error.
func (s *Service) DismissLeak(ctx context.Context, a tokend.Actor, id string) error {
	if err := a.Require(tokend.PermTokensWrite); err != nil {
		return err
	}
	l, err := s.TokenLeak(ctx, a, id)
	if err != nil || l == nil {
		return err
	}
	ev := s.event(a, tokend.ActionTokenLeakDismissed, l.AppID, l.TokenID, map[string]any{
		"name": l.TokenName, "used_at": l.UsedAt.Format(time.RFC3339), "ip": l.IP,
	})
	if ev.Time.Before(l.UsedAt) {
		ev.Time = l.UsedAt // a clock behind the verifier's must not leave it standing
	}
	if err := s.store.AppendEvent(ctx, ev); err != nil {
		return storeErr(err, "token")
	}
	s.log.InfoContext(ctx, "token leak warning dismissed", "token_id", l.TokenID, "actor", a.Ref())
	return nil
}
