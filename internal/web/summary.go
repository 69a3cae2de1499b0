package web

// The error summary at the top of a form: every problem in one list, each
// a link to its field, so that a form reports all of its errors in one
// round and the keyboard reaches each field from the list.

import (
	"html/template"
)

var _ = addFuncs(template.FuncMap{
	"summary": summarize,
})

// fieldRef is a form control as the summary links to it.
type fieldRef struct {
	Field string // the form field, as formError.Fields keys it
	ID    string // the control's id
	Label string
}

// formFields are the controls of each summarised form, in page order.
var formFields = map[string][]fieldRef{
	"token": {
		{"name", "f-name", "Name"}, {"description", "f-description", "Description"},
		{"app_id", "f-app", "Application"}, {"type", "f-type-standard", "Type"},
		{"access", "f-access-read", "Access"}, {"permissions", "f-access-custom", "Permissions"},
		{"expires_in", "f-expiry", "Expiration"}, {"allowed_ips", "f-ips", "Allowed IP ranges"},
		{"allowed_origins", "f-origins", "Allowed browser origins"}, {"rate_limit", "f-rate", "Rate limit"},
		{"max_uses", "f-max-uses", "Maximum uses"},
	},
	"app": {
		{"name", "a-name", "Name"}, {"token_prefix", "a-prefix", "Token prefix"},
		{"permissions", "a-perms", "Permission catalog"}, {"max_token_lifetime", "a-lifetime", "Maximum token lifetime"},
		{"disable_unused_after", "a-unused", "Disable tokens unused for"}, {"expiry_notice", "a-notice", "Also warn of expiry"},
		{"leak_policy", "a-leak", "When a secret leaks"},
		{"rotated_secret_policy", "a-rotated", "When a rotated-out secret comes back"},
	},
	"webhook": {
		{"url", "w-url", "Endpoint URL"}, {"events", "w-events-all", "Events"},
		{"app_id", "w-app", "Application"}, {"description", "w-description", "Description"},
	},
}

// summaryItem is one line of the summary; Href is empty for a problem of
// no field.
type summaryItem struct {
	Href, Label, Message string
}

// errorSummary is what the error-summary partial shows.
type errorSummary struct {
	Items []summaryItem
}

// summarize lists e's problems: those of no field first, then one per
// field in the form's order.
func summarize(e *formError, form string) errorSummary {
	var s errorSummary
	if !e.Has() {
		return s
	}
	for _, m := range e.General {
		s.Items = append(s.Items, summaryItem{Message: m})
	}
	for _, f := range formFields[form] {
		if msgs := e.Fields[f.Field]; len(msgs) > 0 {
			s.Items = append(s.Items, summaryItem{Href: "#" + f.ID, Label: f.Label, Message: msgs[0]})
		}
	}
	return s
}
