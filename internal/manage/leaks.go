package manage

import (
	"context"
	"errors"
	"time"

	"github.com/tokend/tokend"
)

// Leak reports (POST /v1/leaks, tokend leaks report): each reported secret
// that is a token's (current or retired) is handled by its app's leak
// policy, in one store transaction per token with the audit row token.leak
// and the event token.leaked. Anything else - not a secret at all, no
// token's, a token outside the actor's scope - answers "unknown" and
// changes nothing, by one code path, so that the answers cannot differ.

// ReportLeaks applies the leak policy of each secret's app and answers one
// result per secret, in order. A secret given twice is acted on once; its
// second answer repeats the first.
func (s *Service) ReportLeaks(ctx context.Context, a tokend.Actor, r tokend.LeakReport) ([]tokend.LeakResult, error) {
	if err := a.Require(tokend.PermTokensWrite); err != nil {
		return nil, err
	}
	var p tokend.Problems
	switch {
	case len(r.Tokens) == 0:
		p.Add("tokens", "must hold at least one secret")
	case len(r.Tokens) > tokend.MaxLeakSecrets:
		p.Add("tokens", "must hold at most %d secrets", tokend.MaxLeakSecrets)
	}
	for _, t := range r.Tokens {
		if len(t) > tokend.MaxLeakSecretLength {
			p.Add("tokens", "each secret must be at most %d bytes", tokend.MaxLeakSecretLength)
			break
		}
	}
	checkLeakText(&p, "source", r.Source, tokend.MaxLeakSourceLength)
	checkLeakText(&p, "url", r.URL, tokend.MaxLeakURLLength)
	if err := p.Err(); err != nil {
		return nil, err
	}
	out := make([]tokend.LeakResult, len(r.Tokens))
	seen := map[string]int{}
	for i, sec := range r.Tokens {
		if j, ok := seen[sec]; ok {
			out[i] = out[j]
			continue
		}
		seen[sec] = i
		res, err := s.reportLeak(ctx, a, sec, leakOrigin{source: r.Source, url: r.URL})
		if err != nil {
			return nil, err
		}
		out[i] = res
	}
	return out, nil
}

// checkLeakText checks a report's free text: at most max bytes, one line
// as every name is (tokend.TextProblem's LineText rule: valid UTF-8, no
// control, bidirectional or invisible characters).
func checkLeakText(p *tokend.Problems, field, v string, max int) {
	if len(v) > max {
		p.Add(field, "must be at most %d bytes", max)
	} else if msg := tokend.TextProblem(v, tokend.LineText); msg != "" {
		p.Add(field, "%s", msg)
	}
}

var unknownLeak = tokend.LeakResult{Result: tokend.LeakResultUnknown}

// leakOrigin is where a reported secret was found, as the audit row and
// token.leaked tell it.
type leakOrigin struct {
	source, url string
	// githubSource is what GitHub found the secret in (content, commit,
	// gist…), for a report from GitHub's secret scanning.
	githubSource string
}

// reportLeak handles one secret.
func (s *Service) reportLeak(ctx context.Context, a tokend.Actor, sec string, r leakOrigin) (tokend.LeakResult, error) {
	sum := s.hasher.Sum(sec)
	cred, err := s.store.TokenBySecret(ctx, sum[:])
	switch {
	case errors.Is(err, tokend.ErrNotFound):
		return unknownLeak, nil
	case err != nil:
		return tokend.LeakResult{}, storeErr(err, "token")
	}
	if outOfScope(a, cred.Token) != nil {
		return unknownLeak, nil
	}
	id := cred.Token.ID
	app, err := s.store.App(ctx, cred.Token.AppID)
	if errors.Is(err, tokend.ErrNotFound) {
		return unknownLeak, nil // deleted meanwhile
	} else if err != nil {
		return tokend.LeakResult{}, storeErr(err, "app")
	}
	policy := app.LeakPolicy
	if !policy.Valid() {
		policy = tokend.LeakRevoke
	}
	if cred.Token.Decoy {
		// A decoy found in the wild is still a true positive, but it must
		// stay planted: revoking or disabling it changes nothing a holder
		// could see, and would only end the alarm.
		policy = tokend.LeakNotify
	}
	now := s.Now()
	// A secret replaced by rotation whose grace has ended opens nothing
	// (verification answers ROTATED): its leak says the token's secrets are
	// handled carelessly, not that the token is open. Acting on it would
	// let whoever kept an old secret (a former employee, an old backup)
	// revoke the live token by publishing it.
	rotatedOut := cred.Retired && !now.Before(cred.GraceUntil)
	which := "current" // the secret reported: the token's current one, or one replaced by rotation
	if cred.Retired {
		which = "retired"
	}
	if rotatedOut {
		policy = tokend.LeakNotify
	}
	var result string
	_, err = s.store.UpdateToken(ctx, id, func(t *tokend.Token) (tokend.Event, error) {
		if err := outOfScope(a, *t); err != nil {
			return tokend.Event{}, err
		}
		if t.Status == tokend.StatusRevoked && !t.Decoy {
			result = tokend.LeakResultAlreadyRevoked
			return tokend.Event{}, errNothing
		}
		// Read under the token's lock: of two copies of one report at
		// once, the second sees the first's row.
		if repeat, err := s.leakReportedRecently(ctx, t.ID, r, which, now); err != nil {
			return tokend.Event{}, err
		} else if repeat {
			result = tokend.LeakResultAlreadyReported
			return tokend.Event{}, errNothing
		}
		from := t.Status
		var raise string // the status event the change raises, if any
		switch policy {
		case tokend.LeakRevoke:
			t.Status, t.RevokedAt, result, raise = tokend.StatusRevoked, &now, tokend.LeakResultRevoked, tokend.EventTokenRevoked
		case tokend.LeakDisable:
			result = tokend.LeakResultDisabled
			if t.Status != tokend.StatusDisabled {
				t.Status, raise = tokend.StatusDisabled, tokend.EventTokenDisabled
			}
		default:
			result = tokend.LeakResultNotified
		}
		t.UpdatedAt = now
		after := stored(*t)
		details := map[string]any{"name": t.Name, "policy": policy, "action": result, "source": r.source, "url": r.url, "github_source": r.githubSource, "secret": which}
		if from != t.Status {
			details["status"] = map[string]any{"from": from, "to": t.Status}
		}
		ev := s.event(a, tokend.ActionTokenLeak, t.AppID, t.ID, details)
		data := s.tokenData(after)
		data["action"] = result
		if rotatedOut {
			data["rotated_out"] = true
			details["rotated_out"] = true
		}
		for k, v := range map[string]string{"source": r.source, "url": r.url, "github_source": r.githubSource} {
			if v != "" {
				data[k] = v
			}
		}
		ev = withNotice(ev, tokend.EventTokenLeaked, data)
		if raise != "" {
			ev = withNotice(ev, raise, s.tokenData(after))
		}
		return ev, nil
	})
	switch {
	case errors.Is(err, errNothing):
		return tokend.LeakResult{TokenID: id, Result: result}, nil
	case errors.Is(err, tokend.ErrNotFound):
		return unknownLeak, nil // deleted meanwhile
	case err != nil:
		return tokend.LeakResult{}, storeErr(err, "token")
	}
	s.inval.TokenChanged(id)
	s.log.InfoContext(ctx, "token reported leaked", "token_id", id, "action", result, "actor", a.Ref())
	return tokend.LeakResult{TokenID: id, Result: result}, nil
}

// leakReportedRecently reports whether the token's latest leak report was of
// the same secret (which: current or retired) from the same place as r,
// within tokend.LeakRepeatWindow before now.
func (s *Service) leakReportedRecently(ctx context.Context, id string, r leakOrigin, which string, now time.Time) (bool, error) {
	page, err := s.store.Events(ctx, tokend.EventFilter{TokenID: id, Action: tokend.ActionTokenLeak, Limit: 1})
	if err != nil {
		return false, err
	}
	if len(page.Items) == 0 {
		return false, nil
	}
	ev := page.Items[0]
	text := func(k string) string { v, _ := ev.Details[k].(string); return v }
	return now.Sub(ev.Time) < tokend.LeakRepeatWindow && text("secret") == which &&
		text("source") == r.source && text("url") == r.url && text("github_source") == r.githubSource, nil
}

// LeakReported is a token's latest leak report, as its audit row says.
type LeakReported struct {
	TokenID string
	At      time.Time
	Source  string
	URL     string
	// Action is what the app's policy did: revoked, disabled or notified.
	Action string
}

// TokenLeakReport answers the token's latest leak report (POST /v1/leaks),
// or nil when none was made.
func (s *Service) TokenLeakReport(ctx context.Context, a tokend.Actor, id string) (*LeakReported, error) {
	t, err := s.Token(ctx, a, id)
	if err != nil {
		return nil, err
	}
	page, err := s.store.Events(ctx, tokend.EventFilter{TokenID: t.ID, Action: tokend.ActionTokenLeak, Limit: 1})
	if err != nil {
		return nil, storeErr(err, "event")
	}
	if len(page.Items) == 0 {
		return nil, nil
	}
	ev := page.Items[0]
	text := func(k string) string { v, _ := ev.Details[k].(string); return v }
	return &LeakReported{TokenID: t.ID, At: ev.Time.UTC(), Source: text("source"), URL: text("url"), Action: text("action")}, nil
}

// GitHubScanning is the actor of reports from GitHub's secret scanning
// (POST /v1/leaks/github), whose signature is their authentication: it may
// report leaks and nothing else.
func GitHubScanning(ip string) tokend.Actor {
	return tokend.Actor{Kind: "system", ID: "system", Name: "github secret scanning", IP: ip,
		Permissions: []string{tokend.PermTokensWrite}}
}

// githubLeakSource is the source of the leaks GitHub reports.
const githubLeakSource = "github"

// ReportGitHubLeaks applies a report from GitHub's secret scanning, whose
// signature the caller has checked: each match is handled as a secret of
// ReportLeaks (source "github", the match's url, and what GitHub found it
// in), and labelled true_positive when it is a token's secret - of any
// status, already revoked or rotated out - false_positive otherwise. Every
// usable match is acted on, whatever the others hold: the url and source
// are text a repository's author chooses in part, kept as one line
// (tokend.LineOf) rather than refused, and a token that cannot be a secret
// (empty, over MaxLeakSecretLength bytes; the decoder makes one that is not
// a string empty) is labelled false_positive without a lookup. Only a
// report that is no report (no match, too many) is refused, changing
// nothing. A replayed report acts again as the first did (see
// docs/security.md).
func (s *Service) ReportGitHubLeaks(ctx context.Context, ip string, matches []tokend.GitHubMatch) ([]tokend.GitHubLabel, error) {
	var p tokend.Problems
	switch {
	case len(matches) == 0:
		p.Add("", "must hold at least one match")
	case len(matches) > tokend.MaxGitHubMatches:
		p.Add("", "must hold at most %d matches", tokend.MaxGitHubMatches)
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	a := GitHubScanning(ip)
	out := make([]tokend.GitHubLabel, len(matches))
	seen := map[string]string{}
	for i, m := range matches {
		// GitHub's feedback names the match by the secret and type it sent.
		out[i] = tokend.GitHubLabel{TokenRaw: m.Token, TokenType: m.Type, Label: tokend.GitHubFalsePositive}
		if m.Token == "" || len(m.Token) > tokend.MaxLeakSecretLength {
			continue // no secret's: nothing to look up
		}
		label, ok := seen[m.Token]
		if !ok {
			origin := leakOrigin{source: githubLeakSource, url: tokend.LineOf(m.URL, tokend.MaxLeakURLLength),
				githubSource: tokend.LineOf(m.Source, tokend.MaxLeakSourceLength)}
			res, err := s.reportLeak(ctx, a, m.Token, origin)
			if err != nil {
				return nil, err
			}
			label = tokend.GitHubTruePositive
			if res.Result == tokend.LeakResultUnknown {
				label = tokend.GitHubFalsePositive
			}
			seen[m.Token] = label
		}
		out[i].Label = label
	}
	return out, nil
}
