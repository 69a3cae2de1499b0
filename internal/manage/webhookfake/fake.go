// Package webhookfake is an in-memory tokend.WebhookStore and
// tokend.WebhookSecrets for the tests of the administration of webhooks
// (service, API, dashboard) where no database store is wired. It writes
// each change's audit event to a real tokend.Store, not atomically: it
// is a test double, never for serving.
package webhookfake

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/tokend/tokend"
)

// Store keeps endpoints and deliveries in memory.
type Store struct {
	Audit tokend.Store // receives the audit events

	mu         sync.Mutex
	webhooks   []tokend.Webhook
	deliveries []tokend.Delivery // oldest first
}

// New answers an empty Store writing its audit events to audit.
func New(audit tokend.Store) *Store { return &Store{Audit: audit} }

var _ tokend.WebhookStore = (*Store)(nil)

func (s *Store) CreateWebhook(ctx context.Context, w tokend.Webhook, ev tokend.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.webhooks = append(s.webhooks, clone(w))
	return s.Audit.AppendEvent(ctx, ev)
}

func (s *Store) find(id string) int {
	return slices.IndexFunc(s.webhooks, func(w tokend.Webhook) bool { return w.ID == id })
}

func (s *Store) Webhook(_ context.Context, id string) (tokend.Webhook, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.find(id)
	if i < 0 {
		return tokend.Webhook{}, tokend.ErrNotFound
	}
	return clone(s.webhooks[i]), nil
}

func page[T any](items []T, limit int, cursor string) tokend.Page[T] {
	if limit <= 0 {
		limit = tokend.DefaultPageSize
	}
	start, _ := strconv.Atoi(cursor)
	if start > len(items) || start < 0 {
		start = len(items)
	}
	end := min(start+limit, len(items))
	p := tokend.Page[T]{Items: slices.Clone(items[start:end])}
	if end < len(items) {
		p.NextCursor = strconv.Itoa(end)
	}
	return p
}

func (s *Store) Webhooks(_ context.Context, f tokend.WebhookFilter) (tokend.Page[tokend.Webhook], error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []tokend.Webhook
	for _, w := range s.webhooks {
		if f.AppID == "" || w.AppID == f.AppID {
			out = append(out, clone(w))
		}
	}
	return page(out, f.Limit, f.Cursor), nil
}

func (s *Store) UpdateWebhook(ctx context.Context, id string, fn func(w *tokend.Webhook) (tokend.Event, error)) (tokend.Webhook, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.find(id)
	if i < 0 {
		return tokend.Webhook{}, tokend.ErrNotFound
	}
	w := clone(s.webhooks[i])
	ev, err := fn(&w)
	if err != nil {
		return tokend.Webhook{}, err
	}
	w.Version++
	if err := s.Audit.AppendEvent(ctx, ev); err != nil {
		return tokend.Webhook{}, err
	}
	s.webhooks[i] = clone(w)
	return w, nil
}

func (s *Store) DeleteWebhook(ctx context.Context, id string, version int64, ev tokend.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.find(id)
	if i < 0 {
		return tokend.ErrNotFound
	}
	if version != 0 && s.webhooks[i].Version != version {
		return tokend.ErrStale
	}
	s.webhooks = slices.Delete(s.webhooks, i, i+1)
	s.deliveries = slices.DeleteFunc(s.deliveries, func(d tokend.Delivery) bool { return d.WebhookID == id })
	return s.Audit.AppendEvent(ctx, ev)
}

// DispatchEvents takes nothing: the fake has no outbox.
func (s *Store) DispatchEvents(context.Context, int, func(tokend.Notification) ([]tokend.Delivery, error)) (int, error) {
	return 0, nil
}

// ClaimDeliveries claims nothing: the fake sends nothing.
func (s *Store) ClaimDeliveries(context.Context, time.Time, time.Duration, int) ([]tokend.ClaimedDelivery, error) {
	return nil, nil
}

// AddDelivery stores a delivery as the dispatcher would.
func (s *Store) AddDelivery(d tokend.Delivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deliveries = append(s.deliveries, d)
}

func (s *Store) FinishAttempt(_ context.Context, d tokend.Delivery, a tokend.DeliveryAttempt) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.deliveries {
		if s.deliveries[i].ID == d.ID {
			d.Attempts = a.N
			d.History = append(slices.Clone(s.deliveries[i].History), a)
			s.deliveries[i] = d
			return nil
		}
	}
	return tokend.ErrNotFound
}

func (s *Store) Deliveries(_ context.Context, f tokend.DeliveryFilter) (tokend.Page[tokend.Delivery], error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []tokend.Delivery
	for i := len(s.deliveries) - 1; i >= 0; i-- {
		d := s.deliveries[i]
		if (f.WebhookID == "" || d.WebhookID == f.WebhookID) && (f.Status == "" || d.Status == f.Status) {
			d.History = nil
			out = append(out, d)
		}
	}
	return page(out, f.Limit, f.Cursor), nil
}

func (s *Store) Delivery(_ context.Context, id string) (tokend.Delivery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.deliveries {
		if d.ID == id {
			d.History = slices.Clone(d.History)
			return d, nil
		}
	}
	return tokend.Delivery{}, tokend.ErrNotFound
}

func (s *Store) RetryDelivery(ctx context.Context, id string, now time.Time, ev tokend.Event) (tokend.Delivery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.deliveries {
		if s.deliveries[i].ID == id {
			s.deliveries[i].Status = tokend.DeliveryPending
			s.deliveries[i].NextAt = &now
			if err := s.Audit.AppendEvent(ctx, ev); err != nil {
				return tokend.Delivery{}, err
			}
			d := s.deliveries[i]
			d.History = slices.Clone(d.History)
			return d, nil
		}
	}
	return tokend.Delivery{}, tokend.ErrNotFound
}

func clone(w tokend.Webhook) tokend.Webhook {
	w.Events = slices.Clone(w.Events)
	w.Secret = slices.Clone(w.Secret)
	w.PreviousSecret = slices.Clone(w.PreviousSecret)
	return w
}

// Secrets makes random secrets and "seals" them by prefixing "sealed:".
type Secrets struct{}

func (Secrets) NewSecret() (string, []byte, error) {
	key := make([]byte, 24)
	if _, err := rand.Read(key); err != nil {
		return "", nil, err
	}
	shown := "whsec_" + base64.StdEncoding.EncodeToString(key)
	return shown, append([]byte("sealed:"), key...), nil
}
