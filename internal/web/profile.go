package web

// The profile page: every signed-in user sees who they are and chooses
// which of the mailed event types (tokend.MailedEventTypes) they receive.
// The change goes through the user service (SetMailOptOut), which lets
// users change only their own choice and audits it.

import (
	"net/http"
	"slices"

	"github.com/tokend/tokend"
)

func (s *Server) profileRoutes() {
	s.handle("GET /profile", "", s.profilePage)
	s.handle("POST /profile", "", s.profileSave)
}

// mailChoice is one mailed event type as the profile offers it.
type mailChoice struct {
	Type, Text string
	On         bool
}

var mailTexts = map[string]string{
	tokend.EventTokenExpiring:          "A token is about to expire (7 days and 1 day before, and at its application’s own notice period).",
	tokend.EventTokenExpired:           "A token has expired.",
	tokend.EventTokenRotatedSecretUsed: "Security alert: a secret replaced by a rotation was presented after its grace period.",
	tokend.EventWebhookDisabled:        "A webhook endpoint was disabled after failing for 5 days.",
	tokend.EventTokenLeaked:            "Security alert: a token's secret was reported leaked (and what its application's leak policy did).",
	tokend.EventTokenDecoyUsed:         "Security alert: a decoy token was presented (someone read where it was planted).",
}

type profileData struct {
	Mail []mailChoice
	// MailOn is whether this server sends mail (--smtp-url).
	MailOn bool
	// Receives is whether the user's role receives the mails about every
	// token (owners and admins); others get those of the tokens they made.
	Receives bool
}

func (s *Server) profilePage(w http.ResponseWriter, r *http.Request) {
	u, err := s.svc.User(r.Context(), s.actor(r), s.actor(r).ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d := profileData{MailOn: s.mailOn, Receives: u.Role == tokend.RoleOwner || u.Role == tokend.RoleAdmin}
	for _, t := range tokend.MailedEventTypes {
		d.Mail = append(d.Mail, mailChoice{Type: t, Text: mailTexts[t], On: !u.OptedOut(t)})
	}
	s.render(w, r, http.StatusOK, "profile.html", &page{Title: "Your profile", Nav: "profile", Data: d})
}

// profileSave stores the choice: the types ticked are received, the others
// opted out of.
func (s *Server) profileSave(w http.ResponseWriter, r *http.Request) {
	receive := r.PostForm["receive"]
	var optout []string
	for _, t := range receive {
		if !slices.Contains(tokend.MailedEventTypes, t) {
			s.errorPage(w, r, http.StatusBadRequest, "The form names a kind of mail tokend does not send; reload the page and try again.")
			return
		}
	}
	for _, t := range tokend.MailedEventTypes {
		if !slices.Contains(receive, t) {
			optout = append(optout, t)
		}
	}
	a := s.actor(r)
	if _, err := s.svc.SetMailOptOut(r.Context(), a, a.ID, optout); err != nil {
		s.fail(w, r, err)
		return
	}
	s.setFlash(w, "ok", "Saved which mails you receive.")
	http.Redirect(w, r, "/profile", http.StatusSeeOther)
}
