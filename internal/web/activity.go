package web

// Recent activity: audit events told as sentences a person reads at a
// glance ("Ana revoked the token deploy bot of Shop · 3 minutes ago"),
// with links to what they name. The audit log keeps the full record.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tokend/tokend"
)

// activity is one event as a sentence: who, then parts of text and links.
type activity struct {
	ID    int64
	Time  time.Time
	Actor string
	Parts []phrase
}

// phrase is a piece of a sentence: text, a link when URL is set.
type phrase struct{ Text, URL string }

// activities tells events as sentences. Token events name their token:
// from the event's own details, else (an edit) from the token itself, read
// once per token and only when the actor may read tokens.
func (s *Server) activities(ctx context.Context, a tokend.Actor, events []tokend.Event, apps map[string]string) []activity {
	names := map[string]string{}
	for _, e := range events {
		if e.TokenID == "" {
			continue
		}
		if n := detailName(e.Details, "name"); n != "" {
			if _, ok := names[e.TokenID]; !ok {
				names[e.TokenID] = n
			}
		}
	}
	for _, e := range events {
		if _, ok := names[e.TokenID]; ok || e.TokenID == "" || !a.Can(tokend.PermTokensRead) {
			continue
		}
		names[e.TokenID] = e.TokenID // deleted since, or unreadable: its id
		if t, err := s.svc.Token(ctx, a, e.TokenID); err == nil {
			names[e.TokenID] = t.Name
		}
	}
	out := make([]activity, 0, len(events))
	for _, e := range events {
		out = append(out, tell(e, names, apps))
	}
	return out
}

// webhookVerbs are what a person did to a webhook endpoint, by action.
var webhookVerbs = map[string]string{
	tokend.ActionWebhookCreate: "added", tokend.ActionWebhookUpdate: "edited", tokend.ActionWebhookDelete: "deleted",
	tokend.ActionWebhookRotateSecret: "rotated the signing secret of", tokend.ActionWebhookTest: "sent a test event to",
	tokend.ActionDeliveryRetry: "retried a delivery to",
}

// tokenVerbs are what a person did to a token, by action.
var tokenVerbs = map[string]string{
	tokend.ActionTokenCreate: "generated", tokend.ActionTokenUpdate: "edited",
	tokend.ActionTokenDisable: "disabled", tokend.ActionTokenEnable: "enabled",
	tokend.ActionTokenRevoke: "revoked", tokend.ActionTokenRotate: "rotated the secret of",
	tokend.ActionTokenDelete: "deleted",
}

// tell makes the sentence of one event.
func tell(e tokend.Event, tokenNames, apps map[string]string) activity {
	act := activity{ID: e.ID, Time: e.Time, Actor: e.ActorName}
	if act.Actor == "" {
		act.Actor = e.Actor
	} else if strings.HasPrefix(e.Actor, "token:") {
		act.Actor = "The admin token " + act.Actor
	} else if strings.HasPrefix(e.Actor, "owner:") {
		act.Actor = "The customer " + act.Actor // through the customer portal
	}
	say := func(p ...phrase) { act.Parts = append(act.Parts, p...) }
	text := func(s string) phrase { return phrase{Text: s} }
	// token names the event's token, linked unless it is gone.
	token := func(linked bool) phrase {
		p := phrase{Text: tokenNames[e.TokenID]}
		if p.Text == "" {
			p.Text = e.TokenID
		}
		if linked {
			p.URL = "/tokens/" + e.TokenID
		}
		return p
	}
	// ofApp is " of <app>", or nothing when the app is not known.
	ofApp := func() []phrase {
		if name := apps[e.AppID]; name != "" {
			return []phrase{text(" of "), {Text: name, URL: "/apps/" + e.AppID}}
		}
		return nil
	}
	app := func(linked bool) phrase {
		p := phrase{Text: apps[e.AppID]}
		if p.Text == "" {
			p.Text = detailName(e.Details, "name")
		}
		if p.Text == "" {
			p.Text = e.AppID
		}
		if linked {
			p.URL = "/apps/" + e.AppID
		}
		return p
	}
	user := func() phrase {
		for _, k := range []string{"name", "email", "user_id"} {
			if n := detailName(e.Details, k); n != "" {
				return text(n)
			}
		}
		return text("a user")
	}
	switch e.Action {
	case tokend.ActionTokenCreate, tokend.ActionTokenUpdate, tokend.ActionTokenDisable, tokend.ActionTokenEnable,
		tokend.ActionTokenRevoke, tokend.ActionTokenRotate, tokend.ActionTokenDelete:
		say(text(" "+tokenVerbs[e.Action]+" the token "), token(e.Action != tokend.ActionTokenDelete))
		say(ofApp()...)
	case tokend.ActionTokenOldSecret, tokend.ActionTokenDecoyUsed:
		act.Actor = "Someone"
		verb := " used a rotated-out secret of the token "
		if e.Action == tokend.ActionTokenDecoyUsed {
			verb = " presented the decoy token "
		}
		say(text(verb), token(true))
		say(ofApp()...)
		if e.IP != "" {
			say(text(" from " + e.IP))
		}
	case tokend.ActionTokenNewNetwork:
		act.Actor = "Someone"
		say(text(" used the token "), token(true))
		say(ofApp()...)
		say(text(" from the new network " + detailName(e.Details, "network")))
	case tokend.ActionAppCreate:
		say(text(" created the application "), app(true))
	case tokend.ActionAppUpdate:
		say(text(" edited the application "), app(true))
	case tokend.ActionAppDelete:
		say(text(" deleted the application "), app(false))
	case tokend.ActionAppRevokeAll:
		say(text(" revoked every token of the application "), app(true))
	case tokend.ActionOwnerRevokeAll:
		say(text(" revoked every token of the owner "+detailName(e.Details, "owner_id")+" in the application "), app(true))
	case tokend.ActionUserCreate:
		say(text(" added the user "), user())
	case tokend.ActionUserUpdate:
		switch {
		case detailTo(e.Details, "role") != "":
			say(text(" made "), user(), text(" "+article(detailTo(e.Details, "role"))))
		case detailTo(e.Details, "disabled") == "true":
			say(text(" disabled the user "), user())
		case detailTo(e.Details, "disabled") == "false":
			say(text(" enabled the user "), user())
		default:
			say(text(" edited the user "), user())
		}
	case tokend.ActionUserDelete:
		say(text(" deleted the user "), user())
	case tokend.ActionUserLogin:
		say(text(" signed in"))
	case tokend.ActionUserLogout:
		say(text(" signed out"))
	case tokend.ActionUserSetup:
		say(text(" set up tokend for its owner "), user())
	case tokend.ActionSystemBootstrap:
		say(text(" created the first admin token"))
	case tokend.ActionWebhookCreate, tokend.ActionWebhookUpdate, tokend.ActionWebhookDelete,
		tokend.ActionWebhookRotateSecret, tokend.ActionWebhookTest, tokend.ActionDeliveryRetry:
		hook := phrase{Text: detailName(e.Details, "url")}
		if hook.Text == "" {
			hook.Text = detailName(e.Details, "webhook_id")
		}
		if id := detailName(e.Details, "webhook_id"); id != "" && e.Action != tokend.ActionWebhookDelete {
			hook.URL = "/webhooks/" + id
		}
		say(text(" "+webhookVerbs[e.Action]+" the webhook endpoint "), hook)
	default:
		say(text(" did " + e.Action))
		if e.TokenID != "" {
			say(text(" to the token "), token(true))
		}
	}
	return act
}

// detailName answers a detail as text: a string, or the new value of a
// change ({"from", "to"}).
func detailName(d map[string]any, key string) string {
	switch v := d[key].(type) {
	case string:
		return v
	case map[string]any:
		if to, ok := v["to"].(string); ok {
			return to
		}
	}
	return ""
}

// detailTo answers the new value of a changed detail, as text.
func detailTo(d map[string]any, key string) string {
	if ch, ok := d[key].(map[string]any); ok {
		if to, ok := ch["to"]; ok && to != nil {
			return fmt.Sprint(to)
		}
	}
	return ""
}

// article puts "a" or "an" before a role name: "an admin", "a viewer".
func article(role string) string {
	if role != "" && (role[0] == 'a' || role[0] == 'e' || role[0] == 'i' || role[0] == 'o' || role[0] == 'u') {
		return "an " + role
	}
	return "a " + role
}
