package web

// The webhook pages: the endpoints, adding one (its signing secret shown
// once, as a token's), an endpoint's page with its edit form, enable,
// disable, delete, secret rotation, a test event, and its recent
// deliveries with a retry button. Reading needs apps:read, changing
// apps:write, as for applications.

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tokend/tokend"
)

func (s *Server) webhookRoutes() {
	s.handle("GET /webhooks", tokend.PermAppsRead, s.webhooksPage)
	s.handle("GET /webhooks/new", tokend.PermAppsWrite, s.webhookNewPage)
	s.handle("POST /webhooks", tokend.PermAppsWrite, s.webhookCreate)
	s.handle("GET /webhooks/{id}", tokend.PermAppsRead, s.webhookPage)
	s.handle("POST /webhooks/{id}", tokend.PermAppsWrite, s.webhookUpdate)
	s.handle("POST /webhooks/{id}/enable", tokend.PermAppsWrite, s.webhookSetEnabled(true))
	s.handle("POST /webhooks/{id}/disable", tokend.PermAppsWrite, s.webhookSetEnabled(false))
	s.handle("GET /webhooks/{id}/delete", tokend.PermAppsWrite, s.webhookDeletePage)
	s.handle("POST /webhooks/{id}/delete", tokend.PermAppsWrite, s.webhookDelete)
	s.handle("POST /webhooks/{id}/rotate-secret", tokend.PermAppsWrite, s.webhookRotate)
	s.handle("POST /webhooks/{id}/test", tokend.PermAppsWrite, s.webhookTest)
	s.handle("POST /webhooks/{id}/deliveries/{delivery_id}/retry", tokend.PermAppsWrite, s.webhookRetry)
}

// webhookDeliveriesShown is how many recent deliveries an endpoint's page
// lists.
const webhookDeliveriesShown = 25

// webhookForm is the add or edit form of an endpoint as typed.
type webhookForm struct {
	Edit        bool
	ID          string
	Version     int64
	URL         string
	AllEvents   bool
	Events      []string
	AppID       string
	Description string
	Apps        []tokend.App // the product applications, for the select
	Types       []string     // the event types to choose from
	Err         *formError
	InDialog    bool
}

var webhookFormFields = []string{"url", "events", "app_id", "description"}

func (s *Server) newWebhookForm(r *http.Request) (webhookForm, error) {
	apps, err := s.allApps(r.Context(), s.actor(r))
	f := webhookForm{Types: tokend.EventTypes}
	for _, a := range apps {
		if !a.System {
			f.Apps = append(f.Apps, a)
		}
	}
	return f, err
}

// readWebhookForm reads the form into f; "All events" wins over the
// single types ticked with it.
func readWebhookForm(r *http.Request, f *webhookForm) {
	v := r.PostForm
	f.URL = strings.TrimSpace(v.Get("url"))
	f.Description = v.Get("description")
	f.AppID = v.Get("app_id")
	f.Events = v["events"]
	f.AllEvents = slices.Contains(f.Events, "*")
	f.Version, _ = strconv.ParseInt(v.Get("version"), 10, 64)
	f.InDialog = v.Get("in_dialog") == "1"
}

func (f *webhookForm) events() []string {
	if f.AllEvents {
		return []string{"*"}
	}
	return f.Events
}

type webhooksData struct {
	Now      time.Time
	Webhooks []tokend.Webhook
	AppNames map[string]string
	Form     webhookForm
	NextURL  string
	FirstURL string
}

func (s *Server) webhooksPage(w http.ResponseWriter, r *http.Request) {
	s.webhooksList(w, r, http.StatusOK, nil)
}

// webhooksList shows the list, with the add dialog open on form when the
// dialog's submission failed.
func (s *Server) webhooksList(w http.ResponseWriter, r *http.Request, status int, form *webhookForm) {
	ctx, a := r.Context(), s.actor(r)
	cursor := r.URL.Query().Get("cursor")
	list, err := s.svc.Webhooks(ctx, a, tokend.WebhookFilter{Limit: tokend.DefaultPageSize, Cursor: cursor})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f, err := s.newWebhookForm(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f.InDialog = true
	if form != nil {
		form.Apps, form.Types = f.Apps, f.Types
		f = *form
	}
	d := &webhooksData{Now: s.now().UTC(), Webhooks: list.Items, AppNames: appNames(f.Apps), Form: f}
	if list.NextCursor != "" {
		d.NextURL = "/webhooks?cursor=" + url.QueryEscape(list.NextCursor)
	}
	if cursor != "" {
		d.FirstURL = "/webhooks"
	}
	s.render(w, r, status, "webhooks.html", &page{Title: "Webhooks", Nav: "webhooks", Data: d})
}

func (s *Server) webhookNewPage(w http.ResponseWriter, r *http.Request) {
	f, err := s.newWebhookForm(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "webhook_new.html", &page{Title: "Add webhook endpoint", Nav: "webhooks", Data: &f})
}

func (s *Server) webhookCreate(w http.ResponseWriter, r *http.Request) {
	if !s.readForm(w, r) {
		return
	}
	var f webhookForm
	readWebhookForm(r, &f)
	wh, sec, err := s.svc.CreateWebhook(r.Context(), s.actor(r), tokend.WebhookInput{
		URL: f.URL, Events: f.events(), AppID: f.AppID, Description: f.Description,
	})
	if err == nil {
		s.reveal(w, r, wh.ID, sec)
		s.setFlash(w, "ok", "Webhook endpoint added.")
		http.Redirect(w, r, "/webhooks/"+url.PathEscape(wh.ID), http.StatusSeeOther)
		return
	}
	f.Err = s.formErrorOf(r, err, webhookFormFields...)
	if f.InDialog {
		s.webhooksList(w, r, f.Err.Status, &f)
		return
	}
	base, lerr := s.newWebhookForm(r)
	if lerr != nil {
		s.fail(w, r, lerr)
		return
	}
	f.Apps, f.Types = base.Apps, base.Types
	s.render(w, r, f.Err.Status, "webhook_new.html", &page{Title: "Add webhook endpoint", Nav: "webhooks", Data: &f})
}

type webhookData struct {
	Now        time.Time
	Webhook    tokend.Webhook
	AppName    string
	Form       webhookForm
	Stale      bool
	Deliveries []tokend.Delivery
	// Secret is the new signing secret, present only on the one page view
	// after adding the endpoint or rotating its secret.
	Secret      string
	SecretUsed  bool
	SecretLater bool
	Err         *formError // of the delete confirmation
}

func (s *Server) loadWebhook(r *http.Request, id string) (*webhookData, error) {
	ctx, a := r.Context(), s.actor(r)
	wh, err := s.svc.Webhook(ctx, a, id)
	if err != nil {
		return nil, err
	}
	f, err := s.newWebhookForm(r)
	if err != nil {
		return nil, err
	}
	f.Edit, f.ID, f.Version, f.URL, f.AppID, f.Description = true, wh.ID, wh.Version, wh.URL, wh.AppID, wh.Description
	f.AllEvents = slices.Contains(wh.Events, "*")
	f.Events = wh.Events
	d := &webhookData{Now: s.now().UTC(), Webhook: wh, Form: f, AppName: wh.AppID}
	if name, ok := appNames(f.Apps)[wh.AppID]; ok {
		d.AppName = name
	}
	recent, err := s.svc.WebhookDeliveries(ctx, a, id, tokend.DeliveryFilter{Limit: webhookDeliveriesShown})
	if err != nil {
		return nil, err
	}
	d.Deliveries = recent.Items
	return d, nil
}

func (s *Server) webhookPage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	d, err := s.loadWebhook(r, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var st revealState
	d.Secret, st = s.takeReveal(w, r, id)
	d.SecretUsed, d.SecretLater = st == revealUsed, st == revealUnavailable
	s.render(w, r, http.StatusOK, "webhook.html", &page{Title: "Webhook " + d.Webhook.URL, Nav: "webhooks", Data: d})
}

func (s *Server) webhookUpdate(w http.ResponseWriter, r *http.Request) {
	if !s.readForm(w, r) {
		return
	}
	id := r.PathValue("id")
	var f webhookForm
	readWebhookForm(r, &f)
	events := f.events()
	_, err := s.svc.UpdateWebhook(r.Context(), s.actor(r), id, tokend.WebhookPatch{
		URL: &f.URL, Events: &events, Description: &f.Description,
	}, f.Version)
	done, fe, stale := s.afterEdit(w, r, err, "the webhook endpoint", "/webhooks/"+url.PathEscape(id), webhookFormFields)
	if done {
		return
	}
	d, err := s.loadWebhook(r, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f.Edit, f.ID, f.Apps, f.Types, f.Err, f.AppID = true, id, d.Form.Apps, d.Form.Types, fe, d.Webhook.AppID
	d.Form, d.Stale = f, stale
	s.render(w, r, fe.Status, "webhook.html", &page{Title: "Webhook " + d.Webhook.URL, Nav: "webhooks", Data: d})
}

// webhookDone ends an action of an endpoint's page: its flash and back to
// the page, or the error page for a missing endpoint, or the page again
// with the flash of what went wrong.
func (s *Server) webhookDone(w http.ResponseWriter, r *http.Request, err error, ok string) {
	id := r.PathValue("id")
	switch {
	case err == nil:
		s.setFlash(w, "ok", ok)
	case tokend.CodeOf(err) == tokend.ECodeNotFound && !strings.Contains(r.URL.Path, "/deliveries/"):
		s.fail(w, r, err)
		return
	case tokend.CodeOf(err).Status() >= 500:
		s.fail(w, r, err)
		return
	default:
		s.setFlash(w, "error", publicMessage(err))
	}
	http.Redirect(w, r, "/webhooks/"+url.PathEscape(id), http.StatusSeeOther)
}

func (s *Server) webhookSetEnabled(on bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.readForm(w, r) {
			return
		}
		version, _ := strconv.ParseInt(r.PostForm.Get("version"), 10, 64)
		_, err := s.svc.UpdateWebhook(r.Context(), s.actor(r), r.PathValue("id"), tokend.WebhookPatch{Enabled: &on}, version)
		msg := "Webhook endpoint disabled: nothing is sent to it until it is enabled again."
		if on {
			msg = "Webhook endpoint enabled."
		}
		s.webhookDone(w, r, err, msg)
	}
}

func (s *Server) webhookDeletePage(w http.ResponseWriter, r *http.Request) {
	d, err := s.loadWebhook(r, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "webhook_confirm.html", &page{Title: "Delete webhook endpoint", Nav: "webhooks", Data: d})
}

func (s *Server) webhookDelete(w http.ResponseWriter, r *http.Request) {
	if !s.readForm(w, r) {
		return
	}
	version, _ := strconv.ParseInt(r.PostForm.Get("version"), 10, 64)
	err := s.svc.DeleteWebhook(r.Context(), s.actor(r), r.PathValue("id"), version)
	if err != nil {
		s.webhookDone(w, r, err, "")
		return
	}
	s.setFlash(w, "ok", "Webhook endpoint deleted.")
	http.Redirect(w, r, "/webhooks", http.StatusSeeOther)
}

func (s *Server) webhookRotate(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	wh, sec, err := s.svc.RotateWebhookSecret(r.Context(), s.actor(r), id, 0)
	if err == nil {
		s.reveal(w, r, wh.ID, sec)
	}
	s.webhookDone(w, r, err, "New signing secret made. The previous one keeps signing alongside it for 24 hours.")
}

func (s *Server) webhookTest(w http.ResponseWriter, r *http.Request) {
	evt, err := s.svc.TestWebhook(r.Context(), s.actor(r), r.PathValue("id"))
	s.webhookDone(w, r, err, "Test event "+evt+" sent; its delivery shows below within a few seconds.")
}

func (s *Server) webhookRetry(w http.ResponseWriter, r *http.Request) {
	_, err := s.svc.RetryDelivery(r.Context(), s.actor(r), r.PathValue("id"), r.PathValue("delivery_id"))
	s.webhookDone(w, r, err, "The delivery will be sent again shortly.")
}
