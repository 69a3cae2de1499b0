package manage

import (
	"context"
	"errors"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/webhook"
	"github.com/tokend/tokend/secret"
)

// Webhook endpoints: who may manage them, what a valid one is, and the
// audit record of every change. The deliveries themselves (signing,
// retries, the check of the address after DNS) are internal/webhook's.
//
// Endpoints are administration of the whole instance, like applications:
// apps:read to see them, apps:write to change them, and no owner-scoped
// admin token may do either (403), since an endpoint hears the events of
// every owner.

// PreviousSecretOverlap is how long the signing secret replaced by a
// rotation keeps signing alongside the new one.
const PreviousSecretOverlap = 24 * time.Hour

// errNoWebhooks answers when the service was built without a webhook
// store (a store that does not keep them).
var errNoWebhooks = tokend.Errorf(tokend.ECodeUnavailable, "webhooks are not available on this server")

func (s *Service) webhookStore(a tokend.Actor, perm string) (tokend.WebhookStore, error) {
	if err := a.Require(perm); err != nil {
		return nil, err
	}
	if err := refuseScoped(a, "manage webhooks"); err != nil {
		return nil, err
	}
	if s.webhooks == nil {
		return nil, errNoWebhooks
	}
	return s.webhooks, nil
}

// newWebhookSecret makes a signing secret: as shown once, and as stored.
func (s *Service) newWebhookSecret() (shown string, sealed []byte, err error) {
	if s.webhookSecrets == nil {
		return "", nil, errNoWebhooks
	}
	if shown, sealed, err = s.webhookSecrets.NewSecret(); err != nil {
		return "", nil, tokend.Internal(err)
	}
	return shown, sealed, nil
}

// CreateWebhook adds an endpoint and answers it with its signing secret,
// which is shown this once.
func (s *Service) CreateWebhook(ctx context.Context, a tokend.Actor, in tokend.WebhookInput) (tokend.Webhook, string, error) {
	ws, err := s.webhookStore(a, tokend.PermAppsWrite)
	if err != nil {
		return tokend.Webhook{}, "", err
	}
	p := problemsOf(ctx)
	s.checkWebhookURL(&p, "url", in.URL)
	events := checkWebhookEvents(&p, "events", in.Events)
	checkWebhookDescription(&p, "description", in.Description)
	if err := p.Err(); err != nil {
		return tokend.Webhook{}, "", err
	}
	if err := s.checkWebhookApp(ctx, in.AppID); err != nil {
		return tokend.Webhook{}, "", err
	}
	shown, sealed, err := s.newWebhookSecret()
	if err != nil {
		return tokend.Webhook{}, "", err
	}
	now := s.Now()
	w := tokend.Webhook{
		URL: in.URL, Events: events, AppID: in.AppID, Description: in.Description, Enabled: true,
		CreatedBy: a.Ref(), CreatedAt: now, UpdatedAt: now, Version: 1, Secret: sealed,
	}
	if w.ID, err = secret.NewID("whk"); err != nil {
		return tokend.Webhook{}, "", tokend.Internal(err)
	}
	ev := s.event(a, tokend.ActionWebhookCreate, w.AppID, "", map[string]any{
		"webhook_id": w.ID, "url": w.URL, "events": w.Events, "description": w.Description,
	})
	if err := ws.CreateWebhook(ctx, w, ev); err != nil {
		return tokend.Webhook{}, "", storeErr(err, "webhook")
	}
	s.log.InfoContext(ctx, "webhook created", "webhook_id", w.ID, "actor", a.Ref())
	return s.presentWebhook(w), shown, nil
}

// Webhook answers one endpoint.
func (s *Service) Webhook(ctx context.Context, a tokend.Actor, id string) (tokend.Webhook, error) {
	ws, err := s.webhookStore(a, tokend.PermAppsRead)
	if err != nil {
		return tokend.Webhook{}, err
	}
	if err := checkID(id, "webhook"); err != nil {
		return tokend.Webhook{}, err
	}
	w, err := ws.Webhook(ctx, id)
	if err != nil {
		return tokend.Webhook{}, storeErr(err, "webhook")
	}
	return s.presentWebhook(w), nil
}

// Webhooks lists endpoints, oldest first.
func (s *Service) Webhooks(ctx context.Context, a tokend.Actor, f tokend.WebhookFilter) (tokend.Page[tokend.Webhook], error) {
	ws, err := s.webhookStore(a, tokend.PermAppsRead)
	if err != nil {
		return tokend.Page[tokend.Webhook]{}, err
	}
	var p tokend.Problems
	checkLimit(&p, f.Limit)
	checkFilterID(&p, "app_id", f.AppID)
	if err := p.Err(); err != nil {
		return tokend.Page[tokend.Webhook]{}, err
	}
	page, err := ws.Webhooks(ctx, f)
	if err != nil {
		return tokend.Page[tokend.Webhook]{}, storeErr(err, "webhook")
	}
	if page.Items == nil {
		page.Items = []tokend.Webhook{}
	}
	for i := range page.Items {
		page.Items[i] = s.presentWebhook(page.Items[i])
	}
	return page, nil
}

// UpdateWebhook edits an endpoint; version, when not 0, must be the stored
// one. Enabling it clears why it was disabled and since when it failed.
func (s *Service) UpdateWebhook(ctx context.Context, a tokend.Actor, id string, patch tokend.WebhookPatch, version int64) (tokend.Webhook, error) {
	ws, err := s.webhookStore(a, tokend.PermAppsWrite)
	if err != nil {
		return tokend.Webhook{}, err
	}
	if err := checkID(id, "webhook"); err != nil {
		return tokend.Webhook{}, err
	}
	p := problemsOf(ctx)
	var events []string
	for _, f := range patch.Null {
		p.Add(f, "cannot be null")
	}
	if patch.URL != nil {
		s.checkWebhookURL(&p, "url", *patch.URL)
	}
	if patch.Events != nil {
		events = checkWebhookEvents(&p, "events", *patch.Events)
	}
	if patch.Description != nil {
		checkWebhookDescription(&p, "description", *patch.Description)
	}
	if err := p.Err(); err != nil {
		return tokend.Webhook{}, err
	}
	now := s.Now()
	w, err := ws.UpdateWebhook(ctx, id, func(w *tokend.Webhook) (tokend.Event, error) {
		if err := versionCheck(version, w.Version); err != nil {
			return tokend.Event{}, err
		}
		d := map[string]any{}
		if patch.URL != nil && *patch.URL != w.URL {
			change(d, "url", w.URL, *patch.URL)
			w.URL = *patch.URL
		}
		if patch.Events != nil && !slices.Equal(events, w.Events) {
			change(d, "events", w.Events, events)
			w.Events = events
		}
		if patch.Description != nil && *patch.Description != w.Description {
			change(d, "description", w.Description, *patch.Description)
			w.Description = *patch.Description
		}
		if patch.Enabled != nil && *patch.Enabled != w.Enabled {
			change(d, "enabled", w.Enabled, *patch.Enabled)
			w.Enabled = *patch.Enabled
			if w.Enabled {
				w.FailingSince = nil
			}
			// Enabled again, or disabled by a person: either way the
			// reason tokend had is no longer why.
			w.DisabledReason = ""
		}
		if len(d) == 0 {
			return tokend.Event{}, errNothing
		}
		d["webhook_id"] = w.ID
		w.UpdatedAt = now
		return s.event(a, tokend.ActionWebhookUpdate, w.AppID, "", d), nil
	})
	if errors.Is(err, errNothing) {
		return s.Webhook(ctx, a, id)
	}
	if err != nil {
		return tokend.Webhook{}, storeErrIfMatch(err, "webhook", version)
	}
	return s.presentWebhook(w), nil
}

// DeleteWebhook deletes an endpoint and its deliveries; version, when not
// 0, must be the stored one.
func (s *Service) DeleteWebhook(ctx context.Context, a tokend.Actor, id string, version int64) error {
	ws, err := s.webhookStore(a, tokend.PermAppsWrite)
	if err != nil {
		return err
	}
	if err := checkID(id, "webhook"); err != nil {
		return err
	}
	w, err := ws.Webhook(ctx, id)
	if err != nil {
		return storeErrIfMatch(err, "webhook", version)
	}
	if err := versionCheck(version, w.Version); err != nil {
		return err
	}
	ev := s.event(a, tokend.ActionWebhookDelete, w.AppID, "", map[string]any{"webhook_id": w.ID, "url": w.URL})
	if err := ws.DeleteWebhook(ctx, id, version, ev); err != nil {
		return storeErrIfMatch(err, "webhook", version)
	}
	s.log.InfoContext(ctx, "webhook deleted", "webhook_id", id, "actor", a.Ref())
	return nil
}

// RotateWebhookSecret gives an endpoint a new signing secret, shown this
// once; the old one keeps signing alongside it for PreviousSecretOverlap,
// so that receivers can switch without losing a delivery.
func (s *Service) RotateWebhookSecret(ctx context.Context, a tokend.Actor, id string, version int64) (tokend.Webhook, string, error) {
	ws, err := s.webhookStore(a, tokend.PermAppsWrite)
	if err != nil {
		return tokend.Webhook{}, "", err
	}
	if err := checkID(id, "webhook"); err != nil {
		return tokend.Webhook{}, "", err
	}
	shown, sealed, err := s.newWebhookSecret()
	if err != nil {
		return tokend.Webhook{}, "", err
	}
	now := s.Now()
	w, err := ws.UpdateWebhook(ctx, id, func(w *tokend.Webhook) (tokend.Event, error) {
		if err := versionCheck(version, w.Version); err != nil {
			return tokend.Event{}, err
		}
		until := now.Add(PreviousSecretOverlap)
		w.PreviousSecret, w.PreviousSecretUntil, w.Secret = w.Secret, &until, sealed
		w.UpdatedAt = now
		return s.event(a, tokend.ActionWebhookRotateSecret, w.AppID, "", map[string]any{
			"webhook_id": w.ID, "previous_secret_expires_at": fmtTime(&until),
		}), nil
	})
	if err != nil {
		return tokend.Webhook{}, "", storeErrIfMatch(err, "webhook", version)
	}
	s.log.InfoContext(ctx, "webhook secret rotated", "webhook_id", id, "actor", a.Ref())
	return s.presentWebhook(w), shown, nil
}

// TestWebhook raises a webhook.test event for one endpoint, which the
// dispatcher sends to that endpoint only, and answers the event's id.
func (s *Service) TestWebhook(ctx context.Context, a tokend.Actor, id string) (string, error) {
	ws, err := s.webhookStore(a, tokend.PermAppsWrite)
	if err != nil {
		return "", err
	}
	if err := checkID(id, "webhook"); err != nil {
		return "", err
	}
	w, err := ws.Webhook(ctx, id)
	if err != nil {
		return "", storeErr(err, "webhook")
	}
	if !w.Enabled {
		return "", errWebhookDisabled
	}
	evtID, err := secret.NewID("evt")
	if err != nil {
		return "", tokend.Internal(err)
	}
	ev := s.event(a, tokend.ActionWebhookTest, w.AppID, "", map[string]any{"webhook_id": w.ID, "event_id": evtID})
	ev.Notices = []tokend.Notice{{ID: evtID, Type: tokend.EventWebhookTest, Data: map[string]any{
		"webhook_id": w.ID,
		"message":    "A test event sent by " + a.Name + " from tokend. It needs no action.",
	}}}
	if err := s.store.AppendEvent(ctx, ev); err != nil {
		return "", storeErr(err, "webhook")
	}
	return evtID, nil
}

// WebhookDeliveries lists the deliveries to one endpoint, newest first,
// each with its attempts.
func (s *Service) WebhookDeliveries(ctx context.Context, a tokend.Actor, id string, f tokend.DeliveryFilter) (tokend.Page[tokend.Delivery], error) {
	ws, err := s.webhookStore(a, tokend.PermAppsRead)
	if err != nil {
		return tokend.Page[tokend.Delivery]{}, err
	}
	if err := checkID(id, "webhook"); err != nil {
		return tokend.Page[tokend.Delivery]{}, err
	}
	var p tokend.Problems
	checkLimit(&p, f.Limit)
	switch f.Status {
	case "", tokend.DeliveryPending, tokend.DeliveryDelivered, tokend.DeliveryFailed:
	default:
		p.Add("status", "must be pending, delivered or failed")
	}
	if err := p.Err(); err != nil {
		return tokend.Page[tokend.Delivery]{}, err
	}
	if _, err := ws.Webhook(ctx, id); err != nil {
		return tokend.Page[tokend.Delivery]{}, storeErr(err, "webhook")
	}
	f.WebhookID = id
	page, err := ws.Deliveries(ctx, f)
	if err != nil {
		return tokend.Page[tokend.Delivery]{}, storeErr(err, "delivery")
	}
	if page.Items == nil {
		page.Items = []tokend.Delivery{}
	}
	for i, d := range page.Items {
		full, err := ws.Delivery(ctx, d.ID)
		if errors.Is(err, tokend.ErrNotFound) {
			continue // deleted since the list was read
		}
		if err != nil {
			return tokend.Page[tokend.Delivery]{}, storeErr(err, "delivery")
		}
		page.Items[i] = presentDelivery(full)
	}
	return page, nil
}

// errWebhookDisabled answers a request to send something to a disabled
// endpoint (a test event, a retry): nothing is sent to one.
var errWebhookDisabled = tokend.Errorf(tokend.ECodeConflict, "the webhook is disabled: enable it to send it events")

// RetryDelivery makes a delivery of one endpoint pending and due at once,
// whatever its state; the endpoint must be enabled (409 otherwise).
func (s *Service) RetryDelivery(ctx context.Context, a tokend.Actor, webhookID, deliveryID string) (tokend.Delivery, error) {
	ws, err := s.webhookStore(a, tokend.PermAppsWrite)
	if err != nil {
		return tokend.Delivery{}, err
	}
	if err := checkID(webhookID, "webhook"); err != nil {
		return tokend.Delivery{}, err
	}
	if err := checkID(deliveryID, "delivery"); err != nil {
		return tokend.Delivery{}, err
	}
	w, err := ws.Webhook(ctx, webhookID)
	if err != nil {
		return tokend.Delivery{}, storeErr(err, "webhook")
	}
	d, err := ws.Delivery(ctx, deliveryID)
	if err == nil && (d.Kind != tokend.DeliveryWebhook || d.WebhookID != webhookID) {
		err = tokend.ErrNotFound // another endpoint's delivery, or a mail: as one that does not exist
	}
	if err != nil {
		return tokend.Delivery{}, storeErr(err, "delivery")
	}
	if !w.Enabled {
		return tokend.Delivery{}, errWebhookDisabled
	}
	ev := s.event(a, tokend.ActionDeliveryRetry, w.AppID, d.TokenID, map[string]any{
		"webhook_id": w.ID, "delivery_id": d.ID, "event_id": d.EventID, "event_type": d.EventType,
	})
	d, err = ws.RetryDelivery(ctx, deliveryID, s.Now(), ev)
	if err != nil {
		return tokend.Delivery{}, storeErr(err, "delivery")
	}
	return presentDelivery(d), nil
}

// presentWebhook puts an endpoint in the form callers see: never a sealed
// secret, an empty list rather than null, and no previous secret once it
// has stopped signing.
func (s *Service) presentWebhook(w tokend.Webhook) tokend.Webhook {
	w.Secret, w.PreviousSecret = nil, nil
	w.Events = orEmpty(w.Events)
	if w.PreviousSecretUntil != nil && !w.PreviousSecretUntil.After(s.Now()) {
		w.PreviousSecretUntil = nil
	}
	return w
}

func presentDelivery(d tokend.Delivery) tokend.Delivery {
	if d.History == nil {
		d.History = []tokend.DeliveryAttempt{}
	}
	return d
}

// checkWebhookApp checks the application an endpoint is limited to: none,
// or a product application that exists (404 otherwise).
func (s *Service) checkWebhookApp(ctx context.Context, appID string) error {
	if appID == "" {
		return nil
	}
	notFound := &tokend.Error{Code: tokend.ECodeNotFound, Message: "app not found",
		Fields: tokend.Problems{{Field: "app_id", Message: "no application with this id"}}}
	if !tokend.ValidID(appID) {
		return notFound
	}
	app, err := s.store.App(ctx, appID)
	if errors.Is(err, tokend.ErrNotFound) {
		return notFound
	}
	if err != nil {
		return storeErr(err, "app")
	}
	if app.System {
		var p tokend.Problems
		p.Add("app_id", "must be a product application, not the system application")
		return p.Err()
	}
	return nil
}

// checkWebhookURL checks an endpoint's URL: the rules every delivery
// applies to it (internal/webhook's CheckURL: absolute https, or http
// where the server allows it, a host, no user:password, no fragment), so
// that no endpoint is accepted that no delivery would be sent to; and,
// unless the server allows them, a host that is not a literal address the
// delivery client refuses (webhook.Refused: loopback, private, link-local,
// metadata…) nor localhost. internal/webhook checks the addresses a name
// resolves to again at each delivery.
func (s *Service) checkWebhookURL(p *tokend.Problems, field, raw string) {
	switch {
	case raw == "":
		p.Add(field, "is required")
		return
	case len(raw) > tokend.MaxWebhookURLLen:
		p.Add(field, "must be at most %d bytes (it has %d)", tokend.MaxWebhookURLLen, len(raw))
		return
	}
	if msg := tokend.TextProblem(raw, tokend.LineText); msg != "" {
		p.Add(field, "%s", msg)
		return
	}
	if strings.ContainsAny(raw, " \u00a0") {
		p.Add(field, "must not contain spaces (percent-encode them as %%20)")
		return
	}
	if err := webhook.CheckURL(raw, s.webhookAllowHTTP); err != nil {
		p.Add(field, "%s", err.Error())
		return
	}
	u, _ := url.Parse(raw) // CheckURL parsed it
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			p.Add(field, "has an invalid port")
			return
		}
	}
	if s.webhookAllowPrivate {
		return
	}
	host := u.Hostname()
	addr, err := netip.ParseAddr(strings.TrimSuffix(host, ".")) // 10.0.0.1. is 10.0.0.1
	switch {
	case err != nil && strings.EqualFold(strings.TrimSuffix(host, "."), "localhost"):
		p.Add(field, "must not be a loopback address")
	case err != nil:
	case addr.Zone() != "":
		p.Add(field, "must not name a network interface")
	default:
		if why := webhook.Refused(addr); why != "" {
			p.Add(field, "must not be a %s address: webhooks are sent only to public addresses", why)
		}
	}
}

// checkWebhookEvents checks the event types of an endpoint and answers
// them in canonical form.
func checkWebhookEvents(p *tokend.Problems, field string, events []string) []string {
	if len(events) == 0 {
		p.Add(field, "must name at least one event type, or \"*\" for all")
		return nil
	}
	if len(events) > len(tokend.EventTypes)+1 {
		p.Add(field, "may name at most %d event types", len(tokend.EventTypes))
		return nil
	}
	seen := map[string]bool{}
	for i, e := range events {
		f := field + "[" + strconv.Itoa(i) + "]"
		switch {
		case e != "*" && !slices.Contains(tokend.EventTypes, e):
			if tokend.TextProblem(e, tokend.LineText) != "" || len(e) > 100 {
				p.Add(f, "is not an event type")
			} else {
				p.Add(f, "%q is not an event type (see GET /openapi.json or docs/webhooks.md for the list)", e)
			}
		case seen[e]:
			p.Add(f, "%q is listed twice", e)
		}
		seen[e] = true
	}
	if seen["*"] && len(events) > 1 {
		p.Add(field, "\"*\" means every event type: give it alone")
	}
	return slices.Clone(events)
}

func checkWebhookDescription(p *tokend.Problems, field, d string) {
	if n := utf8.RuneCountInString(d); n > tokend.MaxWebhookDescriptionLen {
		p.Add(field, "must be at most %d characters (it has %d)", tokend.MaxWebhookDescriptionLen, n)
		return
	}
	tokend.CheckText(p, field, d, tokend.ProseText)
}
