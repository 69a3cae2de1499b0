package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/secret"
)

// Defaults of Options.
var (
	// DefaultSchedule is the wait after each failed attempt; the last one
	// repeats until GiveUpAfter.
	DefaultSchedule = []time.Duration{
		5 * time.Second, 5 * time.Minute, 30 * time.Minute,
		2 * time.Hour, 5 * time.Hour, 10 * time.Hour,
	}
)

const (
	DefaultPollInterval = time.Second
	DefaultGiveUpAfter  = 72 * time.Hour
	DefaultDisableAfter = 5 * 24 * time.Hour
	DefaultLease        = 60 * time.Second
	DefaultWorkers      = 64

	// MailTimeout bounds one mail attempt (an SMTP exchange may be slow).
	MailTimeout = 30 * time.Second

	// maxBody is how much of an answer is read (to reuse the
	// connection); maxError how much of it an error keeps.
	maxBody  = 64 << 10
	maxError = 1 << 10

	dispatchBatch = 100
)

// Opener opens sealed signing secrets (Secrets).
type Opener interface {
	Open(sealed []byte) ([]byte, error)
}

// Options configure a Dispatcher. Store and Secrets are required.
type Options struct {
	Store   tokend.WebhookStore
	Secrets Opener
	// Mailer sends the mailed event types; nil: no mail.
	Mailer tokend.Mailer
	// AllowHTTP and AllowPrivate loosen the client (ClientOptions).
	AllowHTTP, AllowPrivate bool
	// PollInterval is how often the outbox and the due deliveries are
	// looked at without a Nudge.
	PollInterval time.Duration
	// Schedule is the wait after each failed attempt, the last repeated;
	// jittered by ±20 %.
	Schedule []time.Duration
	// GiveUpAfter: a delivery whose next attempt would come later than
	// this after it was made is failed instead.
	GiveUpAfter time.Duration
	// DisableAfter: an endpoint whose deliveries have all failed for this
	// long is disabled at its next failure.
	DisableAfter time.Duration
	// Lease is how long a claimed delivery is held; longer than Timeout,
	// and than MailTimeout with a Mailer (or no mail attempt begins).
	Lease time.Duration
	// Workers bounds the attempts made at once. An endpoint has at most
	// one under way, so a slow endpoint holds one worker; the default
	// leaves room for dozens of slow ones before a healthy endpoint waits.
	Workers int
	Now     func() time.Time
	Logger  *slog.Logger
	// Version is sent in the User-Agent (tokend/<version>).
	Version string
	// Client sends the deliveries; nil: NewClient with AllowHTTP and
	// AllowPrivate.
	Client *http.Client
}

// Dispatcher turns the outbox into deliveries and attempts them. Several
// dispatchers, in one process or several instances on one PostgreSQL
// database, may run at once: the store hands each event and each due
// delivery to one of them.
type Dispatcher struct {
	o      Options
	nudge  chan struct{}
	counts [3]atomic.Uint64 // by result
	sem    chan struct{}    // one per attempt under way (Workers)

	// The claimed deliveries not yet attempted, per endpoint (or mail
	// address), in claim order: one goroutine drains each queue, so that
	// an endpoint's deliveries go one after the other while a slow
	// endpoint holds back no other.
	mu      sync.Mutex
	queues  map[string][]claim
	queued  int
	running sync.WaitGroup
}

// claim is a claimed delivery and when it was claimed.
type claim struct {
	c  tokend.ClaimedDelivery
	at time.Time
}

// results of an attempt, the label of tokend_webhook_deliveries_total
// (metrics.WebhookResults).
var results = []string{"delivered", "retry", "failed"}

const (
	resultDelivered = iota
	resultRetry
	resultFailed
)

// New makes a dispatcher; Run starts it.
func New(o Options) *Dispatcher {
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if len(o.Schedule) == 0 {
		o.Schedule = DefaultSchedule
	}
	if o.GiveUpAfter <= 0 {
		o.GiveUpAfter = DefaultGiveUpAfter
	}
	if o.DisableAfter <= 0 {
		o.DisableAfter = DefaultDisableAfter
	}
	if o.Lease <= Timeout {
		o.Lease = max(DefaultLease, 2*Timeout)
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Client == nil {
		o.Client = NewClient(ClientOptions{AllowHTTP: o.AllowHTTP, AllowPrivate: o.AllowPrivate})
	}
	return &Dispatcher{o: o, nudge: make(chan struct{}, 1), sem: make(chan struct{}, o.Workers), queues: map[string][]claim{}}
}

// Deliveries answers how many attempts ended with result (delivered,
// retry or failed) since the dispatcher started.
func (d *Dispatcher) Deliveries(result string) uint64 {
	i := slices.Index(results, result)
	if i < 0 {
		return 0
	}
	return d.counts[i].Load()
}

// Nudge wakes the loop at once, to deliver an event just written without
// waiting for the poll.
func (d *Dispatcher) Nudge() {
	select {
	case d.nudge <- struct{}{}:
	default:
	}
}

// Run dispatches and delivers until ctx ends; attempts under way then are
// finished (each within Timeout, or MailTimeout) before it returns.
func (d *Dispatcher) Run(ctx context.Context) error {
	t := time.NewTicker(d.o.PollInterval)
	defer t.Stop()
	for {
		d.dispatchAll(ctx)
		d.claim(ctx)
		select {
		case <-ctx.Done():
			d.running.Wait()
			return nil
		case <-t.C:
		case <-d.nudge:
		}
	}
}

// Round dispatches the outbox and attempts the due deliveries, until
// neither has more, and returns once the attempts are recorded; tests
// drive the dispatcher with it.
func (d *Dispatcher) Round(ctx context.Context) {
	for ctx.Err() == nil {
		d.dispatchAll(ctx)
		more := d.claim(ctx)
		d.running.Wait()
		if !more {
			return
		}
	}
}

// dispatchAll makes the deliveries of the whole outbox.
func (d *Dispatcher) dispatchAll(ctx context.Context) {
	for ctx.Err() == nil {
		n, err := d.dispatch(ctx)
		if err != nil {
			if ctx.Err() == nil {
				d.o.Logger.Error("webhook dispatch failed", "err", err)
			}
			return
		}
		if n < dispatchBatch {
			return
		}
	}
}

// claim claims due deliveries while fewer than 4 per worker wait, and
// queues them; it reports whether the last claim was full (more may be
// due).
func (d *Dispatcher) claim(ctx context.Context) (more bool) {
	limit := 4 * d.o.Workers
	for ctx.Err() == nil {
		d.mu.Lock()
		free := limit - d.queued
		d.mu.Unlock()
		if free <= 0 {
			return true
		}
		at := d.o.Now()
		claimed, err := d.o.Store.ClaimDeliveries(ctx, at, d.o.Lease, free)
		if err != nil {
			if ctx.Err() == nil {
				d.o.Logger.Error("webhook claim failed", "err", err)
			}
			return false
		}
		for _, c := range claimed {
			d.enqueue(ctx, claim{c: c, at: at})
		}
		if len(claimed) < free {
			return false
		}
	}
	return false
}

// enqueue adds a claimed delivery to its endpoint's queue, and starts the
// queue's goroutine when none runs.
func (d *Dispatcher) enqueue(ctx context.Context, cl claim) {
	k := cl.c.Delivery.Kind + ":" + cl.c.Delivery.WebhookID + cl.c.Delivery.Recipient
	d.mu.Lock()
	defer d.mu.Unlock()
	q, busy := d.queues[k]
	d.queues[k] = append(q, cl)
	d.queued++
	if busy {
		return
	}
	d.running.Add(1)
	go d.drain(ctx, k)
}

// drain attempts the deliveries of queue k one after the other, each
// holding a worker, until the queue is empty.
func (d *Dispatcher) drain(ctx context.Context, k string) {
	defer d.running.Done()
	for {
		d.mu.Lock()
		q := d.queues[k]
		if len(q) == 0 {
			delete(d.queues, k)
			d.mu.Unlock()
			d.Nudge() // room to claim more
			return
		}
		cl := q[0]
		d.queues[k] = q[1:]
		d.queued--
		d.mu.Unlock()
		// One begun too late might outlast the lease: it lapses, and
		// the delivery is claimed again. On shutdown, none begins.
		if d.o.Now().Sub(cl.at) > budget(d.o.Lease, cl.c.Delivery.Kind) || ctx.Err() != nil {
			continue
		}
		d.sem <- struct{}{}
		d.attempt(ctx, cl.c)
		<-d.sem
	}
}

// dispatch makes the deliveries of one batch of the outbox. The endpoints
// are read once the batch is taken (at the first event fan is asked
// about, and again when a retried transaction starts over): an endpoint
// created before an event of the batch was written is then among them.
// Read before DispatchEvents, they could miss one created, and an event
// written, in between.
func (d *Dispatcher) dispatch(ctx context.Context) (int, error) {
	var (
		hooks []tokend.Webhook
		last  int64 // seq of the last event fanned; 0: none yet
	)
	return d.o.Store.DispatchEvents(ctx, dispatchBatch, func(n tokend.Notification) ([]tokend.Delivery, error) {
		if last == 0 || n.Seq <= last {
			var err error
			if hooks, err = d.webhooks(ctx); err != nil {
				return nil, err
			}
		}
		last = n.Seq
		return d.fan(ctx, hooks, n)
	})
}

// webhooks reads every endpoint.
func (d *Dispatcher) webhooks(ctx context.Context) ([]tokend.Webhook, error) {
	var hooks []tokend.Webhook
	f := tokend.WebhookFilter{Limit: tokend.MaxPageSize}
	for {
		p, err := d.o.Store.Webhooks(ctx, f)
		if err != nil {
			return nil, err
		}
		hooks = append(hooks, p.Items...)
		if f.Cursor = p.NextCursor; f.Cursor == "" {
			return hooks, nil
		}
	}
}

// fan answers the deliveries of n: one to each enabled endpoint that hears
// it, and one mail to each recipient of a mailed type.
func (d *Dispatcher) fan(ctx context.Context, hooks []tokend.Webhook, n tokend.Notification) ([]tokend.Delivery, error) {
	now := d.o.Now()
	var out []tokend.Delivery
	add := func(kind, webhookID, to string) error {
		id, err := secret.NewID("dlv")
		if err != nil {
			return err
		}
		out = append(out, tokend.Delivery{ID: id, Kind: kind, WebhookID: webhookID, Recipient: to, CreatedAt: now})
		return nil
	}
	for _, w := range hooks {
		if !Hears(w, n) {
			continue
		}
		if err := add(tokend.DeliveryWebhook, w.ID, ""); err != nil {
			return nil, err
		}
	}
	if d.o.Mailer != nil && slices.Contains(tokend.MailedEventTypes, n.Type) {
		to, err := d.o.Mailer.Recipients(ctx, n)
		if err != nil {
			return nil, fmt.Errorf("mail recipients of %s: %w", n.ID, err)
		}
		seen := map[string]bool{}
		for _, a := range to {
			if a == "" || seen[a] {
				continue
			}
			seen[a] = true
			if err := add(tokend.DeliveryMail, "", a); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// Hears reports whether endpoint w gets event n: only an enabled one;
// webhook.test only the endpoint it names (data.webhook_id); any other
// type an endpoint of every application or of n's, subscribed to the type
// or to "*".
func Hears(w tokend.Webhook, n tokend.Notification) bool {
	if !w.Enabled {
		return false
	}
	if n.Type == tokend.EventWebhookTest {
		id, _ := n.Data["webhook_id"].(string)
		return id == w.ID
	}
	if w.AppID != "" && w.AppID != n.AppID {
		return false
	}
	return slices.Contains(w.Events, "*") || slices.Contains(w.Events, n.Type)
}

// budget answers how long after a claim an attempt of kind may still
// begin: one begun later might outlast the lease, so it waits for the lease
// to lapse and is claimed again.
func budget(lease time.Duration, kind string) time.Duration {
	b := lease - Timeout
	if kind == tokend.DeliveryMail {
		b = lease - MailTimeout
	}
	return max(0, b-min(5*time.Second, b/2))
}

// attempt makes one attempt of c and records it. The attempt is not cut
// short by ctx (it ends within Timeout or MailTimeout), so that a shutdown does not leave
// an answered delivery to be sent again.
func (d *Dispatcher) attempt(ctx context.Context, c tokend.ClaimedDelivery) {
	ctx = context.WithoutCancel(ctx)
	if c.Delivery.Kind == tokend.DeliveryWebhook {
		// The endpoint as it is now, not as it was claimed: one disabled,
		// deleted or pointed elsewhere while the delivery waited in its
		// queue gets nothing more at its old address.
		switch w, err := d.o.Store.Webhook(ctx, c.Delivery.WebhookID); {
		case err == nil:
			c.Webhook = &w
		case errors.Is(err, tokend.ErrNotFound):
			c.Webhook = nil
		default:
			d.o.Logger.Error("reading a webhook endpoint before an attempt failed; the lease will lapse and the delivery be tried again",
				"webhook", c.Delivery.WebhookID, "err", err)
			return
		}
	}
	at := d.o.Now()
	began := time.Now()
	var (
		status *int
		errMsg string
	)
	switch {
	case c.Delivery.Kind == tokend.DeliveryMail && d.o.Mailer == nil:
		errMsg = "mail is not configured"
	case c.Delivery.Kind == tokend.DeliveryMail:
		mctx, cancel := context.WithTimeout(ctx, MailTimeout)
		if err := d.o.Mailer.Send(mctx, c.Delivery.Recipient, c.Event); err != nil {
			errMsg = "mail: " + err.Error()
		}
		cancel()
	case c.Webhook == nil:
		errMsg = "endpoint deleted"
	case !c.Webhook.Enabled:
		errMsg = "endpoint disabled; not sent"
	default:
		status, errMsg = d.post(ctx, c, at)
	}
	a := tokend.DeliveryAttempt{
		N: c.Delivery.Attempts + 1, At: at, HTTPStatus: status,
		DurationMS: time.Since(began).Milliseconds(), Error: cleanError(errMsg),
	}
	dl := c.Delivery
	dl.Attempts, dl.LastStatus, dl.LastError = a.N, status, a.Error
	result := resultDelivered
	switch {
	case errMsg == "":
		dl.Status, dl.NextAt, dl.DeliveredAt = tokend.DeliveryDelivered, nil, &at
	case c.Webhook != nil && !c.Webhook.Enabled, c.Webhook == nil && dl.Kind == tokend.DeliveryWebhook:
		dl.Status, dl.NextAt, result = tokend.DeliveryFailed, nil, resultFailed
	default:
		// The wait counts from the attempt's end: an endpoint that timed
		// out is not tried again the moment it did.
		next := d.o.Now().Add(d.wait(a.N))
		if next.Sub(dl.CreatedAt) > d.o.GiveUpAfter {
			dl.Status, dl.NextAt, result = tokend.DeliveryFailed, nil, resultFailed
		} else {
			dl.Status, dl.NextAt, result = tokend.DeliveryPending, &next, resultRetry
			a.NextRetryAt = &next
		}
	}
	d.counts[result].Add(1)
	log := d.o.Logger.With("delivery", dl.ID, "event", dl.EventID, "type", dl.EventType, "attempt", a.N)
	if dl.Kind == tokend.DeliveryWebhook {
		log = log.With("webhook", dl.WebhookID)
	}
	if result != resultDelivered {
		log.Warn("delivery attempt failed", "err", a.Error, "status", dl.Status)
	}
	switch err := d.o.Store.FinishAttempt(ctx, dl, a); {
	case errors.Is(err, tokend.ErrStale):
		// The lease lapsed mid-attempt and another worker recorded
		// this attempt first: its record stands.
		log.Warn("delivery attempt outlasted its lease; another worker's attempt is recorded instead")
		return
	case errors.Is(err, tokend.ErrNotFound):
		// Its endpoint was deleted meanwhile, and the delivery with it.
		return
	case err != nil:
		log.Error("recording a delivery attempt failed", "err", err)
		return
	}
	if result != resultDelivered && c.Webhook != nil && c.Webhook.Enabled {
		d.maybeDisable(ctx, *c.Webhook, at)
	}
}

// wait answers the jittered wait after the n-th failed attempt.
func (d *Dispatcher) wait(n int) time.Duration {
	s := d.o.Schedule[min(n, len(d.o.Schedule))-1]
	return time.Duration(float64(s) * (0.8 + 0.4*rand.Float64()))
}

// post sends c's event to its endpoint, signed; it answers the HTTP status
// (nil when none came) and what went wrong ("" for a 2xx).
func (d *Dispatcher) post(ctx context.Context, c tokend.ClaimedDelivery, at time.Time) (*int, string) {
	w := c.Webhook
	if err := CheckURL(w.URL, d.o.AllowHTTP); err != nil {
		return nil, "endpoint URL " + err.Error()
	}
	key, err := d.o.Secrets.Open(w.Secret)
	if err != nil {
		return nil, "signing secret: " + err.Error()
	}
	keys := [][]byte{key}
	if w.PreviousSecret != nil && w.PreviousSecretUntil != nil && at.Before(*w.PreviousSecretUntil) {
		if prev, err := d.o.Secrets.Open(w.PreviousSecret); err == nil {
			keys = append(keys, prev)
		}
	}
	body, err := json.Marshal(c.Event)
	if err != nil {
		return nil, "encoding the event: " + err.Error()
	}
	rctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return nil, "endpoint URL is not valid"
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tokend/"+cmpOr(d.o.Version, "dev"))
	SetHeaders(req.Header, c.Event.ID, at, body, keys...)
	resp, err := d.o.Client.Do(req)
	if err != nil {
		return nil, attemptError(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return &code, ""
	case code >= 300 && code < 400:
		return &code, fmt.Sprintf("HTTP %d: %s", code, ErrRedirect)
	}
	msg := fmt.Sprintf("HTTP %d", code)
	if t := strings.TrimSpace(string(got)); t != "" {
		msg += ": " + t
	}
	return &code, msg
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// cleanError makes an error fit to store and show: valid UTF-8, no
// control or bidirectional formatting characters (and so no NUL, which
// PostgreSQL's text refuses), at most maxError bytes.
func cleanError(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return ' '
		}
		return r
	}, s)
	if len(s) <= maxError {
		return s
	}
	cut := maxError - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// errStillFine aborts the disabling of an endpoint that is no longer due
// for it.
var errStillFine = errors.New("endpoint not due to be disabled")

// maybeDisable disables w when its deliveries have failed for
// DisableAfter: enabled=false, reason "failing", audited as the system's
// webhook.disable with the webhook.disabled event, which is mailed.
func (d *Dispatcher) maybeDisable(ctx context.Context, w tokend.Webhook, now time.Time) {
	if w.FailingSince == nil || now.Sub(*w.FailingSince) < d.o.DisableAfter {
		return
	}
	_, err := d.o.Store.UpdateWebhook(ctx, w.ID, func(w *tokend.Webhook) (tokend.Event, error) {
		if !w.Enabled || w.FailingSince == nil || now.Sub(*w.FailingSince) < d.o.DisableAfter {
			return tokend.Event{}, errStillFine
		}
		w.Enabled, w.DisabledReason, w.UpdatedAt = false, "failing", now
		data, err := publicFields(*w)
		if err != nil {
			return tokend.Event{}, err
		}
		data["version"] = w.Version + 1
		return tokend.Event{
			Time: now, Actor: tokend.SystemActor.Ref(), ActorName: tokend.SystemActor.Name,
			Action: ActionWebhookDisable, AppID: w.AppID,
			Details: map[string]any{
				"webhook_id": w.ID,
				"enabled":    map[string]any{"from": true, "to": false},
				"reason":     fmt.Sprintf("every delivery failed since %s", w.FailingSince.UTC().Format(time.RFC3339)),
			},
			Notices: []tokend.Notice{{Type: tokend.EventWebhookDisabled, Data: data}},
		}, nil
	})
	switch {
	case errors.Is(err, errStillFine), errors.Is(err, tokend.ErrNotFound):
	case err != nil:
		d.o.Logger.Error("disabling a failing webhook failed", "webhook", w.ID, "err", err)
	default:
		d.o.Logger.Warn("webhook disabled: every delivery failed", "webhook", w.ID, "since", w.FailingSince)
	}
}

// ActionWebhookDisable is the audit action of an endpoint disabled.
const ActionWebhookDisable = "webhook.disable"

// publicFields are w as the API shows it, as a JSON object.
func publicFields(w tokend.Webhook) (map[string]any, error) {
	b, err := json.Marshal(w)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}
