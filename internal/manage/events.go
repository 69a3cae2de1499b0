package manage

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tokend/tokend"
)

// Events (tokend.Notice, GET /v1/events, webhooks, mail): every change of a
// token raises the event of its action, with the token as the API shows it
// (tokenEvent, the one place that builds them); the scheduler below raises
// the time-based ones.

// noticeOf is the event type each audited token action raises.
var noticeOf = map[string]string{
	tokend.ActionTokenCreate:  tokend.EventTokenCreated,
	tokend.ActionTokenUpdate:  tokend.EventTokenUpdated,
	tokend.ActionTokenDisable: tokend.EventTokenDisabled,
	tokend.ActionTokenEnable:  tokend.EventTokenEnabled,
	tokend.ActionTokenRotate:  tokend.EventTokenRotated,
	tokend.ActionTokenRevoke:  tokend.EventTokenRevoked,
	tokend.ActionTokenDelete:  tokend.EventTokenDeleted,
}

// tokenEvent is the audit Event of a's action on t, with the Notice of the
// event type the action raises, whose data is t as the API shows it. t is
// the token as it is stored after the change (see stored).
func (s *Service) tokenEvent(a tokend.Actor, action string, t tokend.Token, details map[string]any) tokend.Event {
	ev := s.event(a, action, t.AppID, t.ID, details)
	if typ := noticeOf[action]; typ != "" {
		ev.Notices = []tokend.Notice{{Type: typ, Data: s.tokenData(t)}}
	}
	return ev
}

// stored is t as an updater's store writes it: with the next version.
func stored(t tokend.Token) tokend.Token {
	t.Version++
	return t
}

// tokenData is t's public fields, as GET /v1/tokens/{id} shows them (the
// secret hash is no field of the JSON form), less those that are null: an
// event's data never holds a null (a field without a value is left out),
// which keeps it an object of values the OpenAPI document can describe.
func (s *Service) tokenData(t tokend.Token) map[string]any {
	m, err := publicData(s.present(t))
	if err != nil {
		// Only metadata the API took could fail here; say the least.
		s.log.Error("events: token data", "token_id", t.ID, "err", err)
	}
	return m
}

// publicData is what tokenData answers for a token already presented; on
// an error, the least: its id, app and name.
func publicData(t tokend.Token) (map[string]any, error) {
	m, err := toMap(t)
	if err != nil {
		return map[string]any{"id": t.ID, "app_id": t.AppID, "name": t.Name}, err
	}
	for k, v := range m {
		if v == nil {
			delete(m, k)
		}
	}
	return m, nil
}

func toMap(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}

// eachRevoked is the event of one token a revoke-all revoked: token.revoked
// as a single revocation raises it, so that a subscriber to token.revoked
// hears of every revoked token however it was revoked.
func (s *Service) eachRevoked(t tokend.Token) []tokend.Notice {
	return []tokend.Notice{{Type: tokend.EventTokenRevoked, Data: s.tokenData(t)}}
}

// withNotice adds a notice of typ with data to ev.
func withNotice(ev tokend.Event, typ string, data map[string]any) tokend.Event {
	ev.Notices = append(ev.Notices, tokend.Notice{Type: typ, Data: data})
	return ev
}

// eventStore answers the service's tokend.EventStore.
func (s *Service) eventStore() (tokend.EventStore, error) {
	if s.events == nil {
		return nil, tokend.Internal(errNoEventStore)
	}
	return s.events, nil
}

var errNoEventStore = errors.New("the store keeps no events")

// markCache remembers the marks this process has seen raised (by it or
// another), until a while after the time they are about.
type markCache struct {
	mu sync.Mutex
	m  map[tokend.EventMark]bool
}

func (c *markCache) seen(m tokend.EventMark) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[m]
}

// add remembers m, and forgets the marks about times so long past that no
// scheduler run looks at them again.
func (c *markCache) add(m tokend.EventMark, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[tokend.EventMark]bool{}
	}
	c.m[m] = true
	if len(c.m)%1024 == 0 {
		for k := range c.m {
			if now.Sub(k.At) > ExpiredWindow {
				delete(c.m, k)
			}
		}
	}
}

// Notifications lists events (GET /v1/events), newest first. An
// owner-scoped actor sees only the events of its scope's tokens, as in the
// audit log.
func (s *Service) Notifications(ctx context.Context, a tokend.Actor, f tokend.NotificationFilter) (tokend.Page[tokend.Notification], error) {
	if err := a.Require(tokend.PermAuditRead); err != nil {
		return tokend.Page[tokend.Notification]{}, err
	}
	var p tokend.Problems
	checkLogFilter(&p, f.Limit, f.TokenID, f.AppID, f.Since, f.Until)
	if f.Type != "" && !knownEventType(f.Type) {
		p.Add("type", "must be one of %s or %s", strings.Join(tokend.EventTypes, ", "), tokend.EventWebhookTest)
	}
	if err := p.Err(); err != nil {
		return tokend.Page[tokend.Notification]{}, err
	}
	es, err := s.eventStore()
	if err != nil {
		return tokend.Page[tokend.Notification]{}, err
	}
	f.Scope = a.Scope
	page, err := es.Notifications(ctx, f)
	if page.Items == nil {
		page.Items = []tokend.Notification{}
	}
	return page, storeErr(err, "event")
}

// knownEventType reports whether typ is an event type tokend raises.
func knownEventType(typ string) bool {
	return typ == tokend.EventWebhookTest || slices.Contains(tokend.EventTypes, typ)
}

// The time-based events.

// Notice periods of token.expiring every app has; an app may add its own
// (App.ExpiryNotice).
var defaultNotices = []time.Duration{24 * time.Hour, 7 * 24 * time.Hour}

// ExpiredWindow is how long after its expiry a token's token.expired is
// still raised: an upgrade, or a scheduler that did not run for a while,
// does not announce every token that expired long ago.
const ExpiredWindow = 7 * 24 * time.Hour

// timeEventsJob names the scheduler for Lead.
const timeEventsJob = "time-events"

// leader runs a job on one instance at a time (sqlstore.Store.Lead).
type leader interface {
	Lead(ctx context.Context, name string, fn func(context.Context) error) (bool, error)
}

// RaiseTimeEvents raises, once, the time-based events due at the service
// clock's now, and answers how many it raised:
//
//   - token.expiring, for each active token (not revoked, not disabled,
//     not expired) whose remaining time is within a notice period (7 days,
//     1 day, and the app's own ExpiryNotice): for the smallest period that
//     holds it, unless raised already for that period and expiry. A token
//     made with 2 days left hears of the 7-day period at once and of the
//     1-day one a day later; the periods it skipped it never hears of.
//   - token.expired, for each token not revoked whose expiry passed within
//     the last ExpiredWindow, once per expiry.
//
// Each is raised through the store's RaiseOnce, so that no instance raises
// one twice; on PostgreSQL the store's Lead keeps the other instances from
// even trying at the same time.
func (s *Service) RaiseTimeEvents(ctx context.Context) (int, error) {
	es, err := s.eventStore()
	if err != nil {
		return 0, err
	}
	n := 0
	run := func(ctx context.Context) error {
		var err error
		n, err = s.raiseTimeEvents(ctx, es)
		return err
	}
	if l, ok := s.store.(leader); ok {
		_, err = l.Lead(ctx, timeEventsJob, run)
	} else {
		err = run(ctx)
	}
	return n, err
}

func (s *Service) raiseTimeEvents(ctx context.Context, es tokend.EventStore) (int, error) {
	now := s.Now()
	apps, longest, err := s.noticePeriods(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	// Active tokens expiring within the longest period, soonest first.
	f := tokend.TokenFilter{Status: tokend.StatusActive, ExpiresBefore: now.Add(longest), Now: now,
		Sort: tokend.TokenSortExpires, Order: tokend.OrderAsc, Limit: tokend.MaxPageSize}
	err = s.eachToken(ctx, f, func(t tokend.Token) (bool, error) {
		left := t.ExpiresAt.Sub(now)
		period, ok := noticePeriod(apps[t.AppID], left)
		if !ok {
			return true, nil
		}
		mark := tokend.EventMark{TokenID: t.ID, Kind: "expiring:" + tokend.Duration(period).String(), At: *t.ExpiresAt}
		data := s.tokenData(t)
		data["expires_in_seconds"] = int64(left / time.Second)
		data["notice_period"] = tokend.Duration(period).String()
		raised, err := s.raiseOnce(ctx, es, mark, t, tokend.EventTokenExpiring, data)
		if raised {
			n++
		}
		return true, err
	})
	if err != nil {
		return n, err
	}
	// Tokens expired within the window, latest first: the walk stops at
	// the first one older than that.
	f = tokend.TokenFilter{Status: tokend.StatusExpired, Now: now,
		Sort: tokend.TokenSortExpires, Order: tokend.OrderDesc, Limit: tokend.MaxPageSize}
	err = s.eachToken(ctx, f, func(t tokend.Token) (bool, error) {
		if now.Sub(*t.ExpiresAt) > ExpiredWindow {
			return false, nil
		}
		mark := tokend.EventMark{TokenID: t.ID, Kind: "expired", At: *t.ExpiresAt}
		raised, err := s.raiseOnce(ctx, es, mark, t, tokend.EventTokenExpired, s.tokenData(t))
		if raised {
			n++
		}
		return true, err
	})
	return n, err
}

// noticePeriods answers each app's notice periods, shortest first, and the
// longest of all.
func (s *Service) noticePeriods(ctx context.Context) (map[string][]time.Duration, time.Duration, error) {
	periods := map[string][]time.Duration{}
	longest := defaultNotices[len(defaultNotices)-1]
	var cursor string
	for {
		page, err := s.store.Apps(ctx, tokend.AppFilter{Limit: tokend.MaxPageSize, Cursor: cursor})
		if err != nil {
			return nil, 0, storeErr(err, "app")
		}
		for _, a := range page.Items {
			if a.ExpiryNotice == nil {
				continue
			}
			own := time.Duration(*a.ExpiryNotice)
			ps := []time.Duration{}
			for _, d := range defaultNotices {
				if d < own {
					ps = append(ps, d)
				}
			}
			ps = append(ps, own)
			for _, d := range defaultNotices {
				if d > own {
					ps = append(ps, d)
				}
			}
			periods[a.ID] = ps
			longest = max(longest, own)
		}
		if page.NextCursor == "" {
			return periods, longest, nil
		}
		cursor = page.NextCursor
	}
}

// noticePeriod answers the smallest of periods (shortest first; nil for
// the defaults) that holds left.
func noticePeriod(periods []time.Duration, left time.Duration) (time.Duration, bool) {
	if periods == nil {
		periods = defaultNotices
	}
	if left <= 0 {
		return 0, false
	}
	for _, p := range periods {
		if left <= p {
			return p, true
		}
	}
	return 0, false
}

// eachToken calls fn on each token f lists, page by page, until fn answers
// false or an error.
func (s *Service) eachToken(ctx context.Context, f tokend.TokenFilter, fn func(tokend.Token) (bool, error)) error {
	for {
		page, err := s.store.Tokens(ctx, f)
		if err != nil {
			return storeErr(err, "token")
		}
		for _, t := range page.Items {
			more, err := fn(t)
			if err != nil || !more {
				return err
			}
		}
		if page.NextCursor == "" {
			return nil
		}
		f.Cursor = page.NextCursor
	}
}

// raiseOnce raises the event typ about t once per mark, as tokend itself.
// Marks this process has seen raised are remembered, so that a scheduler
// run does not write for every token in a notice window each time.
func (s *Service) raiseOnce(ctx context.Context, es tokend.EventStore, mark tokend.EventMark, t tokend.Token, typ string, data map[string]any) (bool, error) {
	if s.marks.seen(mark) {
		return false, nil
	}
	ev := s.event(tokend.SystemActor, typ, t.AppID, t.ID, map[string]any{"name": t.Name, "expires_at": fmtTime(t.ExpiresAt)})
	ev.Notices = []tokend.Notice{{Type: typ, Data: data}}
	raised, err := es.RaiseOnce(ctx, mark, ev)
	switch {
	case errors.Is(err, tokend.ErrNotFound):
		return false, nil // deleted meanwhile
	case err != nil:
		return false, storeErr(err, "event")
	}
	s.marks.add(mark, s.Now())
	if raised {
		s.log.InfoContext(ctx, "event raised", "type", typ, "token_id", t.ID)
	}
	return raised, nil
}

// RunTimeEvents raises the time-based events at start and then on every
// tick until ctx ends, as RunDisableUnused applies the stale-token policy.
func (s *Service) RunTimeEvents(ctx context.Context, tick <-chan time.Time) {
	for {
		if n, err := s.RaiseTimeEvents(ctx); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "time-based events", "err", err, "raised", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
	}
}
