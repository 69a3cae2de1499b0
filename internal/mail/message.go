package mail

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	htmltemplate "html/template"
	"mime/multipart"
	"mime/quotedprintable"
	"net/textproto"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tokend/tokend"
)

// content is what one mail says, before it is rendered as plain text and
// as HTML. Every string in it is already clean (see clean).
type content struct {
	Subject string
	// Intro says what happened; Advice what to do. Paragraphs.
	Intro  []string
	Facts  []fact
	Advice []string
	// Link is the dashboard page to open, with LinkText; "" for none.
	Link, LinkText string
	// Why says why the reader receives this mail, and Profile where they
	// choose which they receive ("" without --public-url).
	Why, Profile string
}

type fact struct{ Label, Value string }

// Longest values, in characters, as a mail shows them.
const (
	maxSubjectValue = 80
	maxValue        = 300
)

// content answers what the mail about n says.
func (m *Mailer) content(ctx context.Context, n tokend.Notification) (content, error) {
	tokenName := clean(str(n.Data, "name"), maxValue)
	if tokenName == "" && n.TokenID != "" {
		if t, err := m.tokens.Token(ctx, n.TokenID); err == nil {
			tokenName = clean(t.Name, maxValue)
		}
	}
	appID := clean(cmp.Or(n.AppID, str(n.Data, "app_id")), maxValue)
	appName := clean(str(n.Data, "app_name"), maxValue)
	if appName == "" && appID != "" {
		if a, err := m.tokens.App(ctx, appID); err == nil {
			appName = clean(a.Name, maxValue)
		}
	}
	appName = cmp.Or(appName, appID)
	tokenName = cmp.Or(tokenName, clean(n.TokenID, maxValue))
	tokenID := clean(n.TokenID, maxValue)
	owner := clean(cmp.Or(str(n.Data, "owner_name"), str(n.Data, "owner_id")), maxValue)
	now := m.now()

	c := content{Why: "You receive this mail as an owner or admin of tokend, or because you created the token."}
	if m.publicURL != "" {
		c.Profile = m.publicURL + "/profile"
	}
	tokenFacts := func() []fact {
		f := []fact{{"Token", tokenName + " (" + tokenID + ")"}, {"Application", appName}}
		if owner != "" {
			f = append(f, fact{"Owner", owner})
		}
		return f
	}
	tokenLink := func() {
		if m.publicURL != "" && tokenID != "" {
			c.Link, c.LinkText = m.publicURL+"/tokens/"+url.PathEscape(n.TokenID), "Open the token in tokend"
		}
	}
	short := func(s string) string { return truncate(s, maxSubjectValue) }

	switch n.Type {
	case tokend.EventTokenExpiring:
		exp, ok := timeOf(n.Data, "expires_at")
		in := "soon"
		if d := exp.Sub(now); ok && d > 0 {
			in = "in " + humanDuration(d)
		} else if ok {
			in = "now"
		}
		c.Subject = fmt.Sprintf("Token %s of %s expires %s", short(tokenName), short(appName), in)
		c.Intro = []string{fmt.Sprintf("The API token %s of the application %s expires %s. From then on, every request that presents it is refused.", tokenName, appName, in)}
		c.Facts = tokenFacts()
		if ok {
			c.Facts = append(c.Facts, fact{"Expires", formatTime(exp)})
		}
		c.Advice = []string{"If the token is still needed: rotate it, or create a new one, and give the new secret to whoever uses it before the old one expires. If it is not, nothing needs doing."}
		tokenLink()
	case tokend.EventTokenExpired:
		exp, ok := timeOf(n.Data, "expires_at")
		c.Subject = fmt.Sprintf("Token %s of %s has expired", short(tokenName), short(appName))
		c.Intro = []string{fmt.Sprintf("The API token %s of the application %s has expired: every request that presents it is refused.", tokenName, appName)}
		c.Facts = tokenFacts()
		if ok {
			c.Facts = append(c.Facts, fact{"Expired", formatTime(exp)})
		}
		c.Advice = []string{"If something still needs access, create a new token for it. Requests refused since the expiry show in the token's activity."}
		tokenLink()
	case tokend.EventTokenRotatedSecretUsed:
		ip := clean(cmp.Or(str(n.Data, "ip"), str(n.Data, "client_ip"), str(n.Data, "remote_ip"), str(n.Data, "last_used_ip")), maxValue)
		c.Subject = fmt.Sprintf("Security alert: the old secret of token %s of %s was used", short(tokenName), short(appName))
		c.Intro = []string{fmt.Sprintf("Someone presented a secret of the API token %s of the application %s that was replaced by a rotation and whose grace period has ended. tokend refused the request.", tokenName, appName)}
		c.Facts = tokenFacts()
		c.Facts = append(c.Facts, fact{"When", formatTime(presentedAt(n))})
		if ip != "" {
			c.Facts = append(c.Facts, fact{"From address", ip})
		}
		if ua := clean(str(n.Data, "user_agent"), maxValue); ua != "" {
			c.Facts = append(c.Facts, fact{"User agent", ua})
		}
		if ep := clean(str(n.Data, "endpoint"), maxValue); ep != "" {
			c.Facts = append(c.Facts, fact{"Presented at", endpointName(ep)})
		}
		if grace, ok := timeOf(n.Data, "grace_until"); ok {
			c.Facts = append(c.Facts, fact{"Grace ended", formatTime(grace)})
		}
		if str(n.Data, "policy") == string(tokend.RotatedDisable) {
			c.Intro = append(c.Intro, "tokend disabled the token, as the application's rotated-secret policy says: every request that presents it is refused until it is enabled again.")
		}
		c.Advice = []string{
			"Whoever holds the old secret was not given the new one, or the old secret has leaked. If the address is one of your own systems, give it the new secret.",
			"If you do not know the address, treat the token as leaked: revoke it (or rotate it again) and check the token's activity for other uses.",
		}
		tokenLink()
	case tokend.EventTokenDecoyUsed:
		c.Subject = fmt.Sprintf("Security alert: the decoy token %s of %s was used", short(tokenName), short(appName))
		c.Intro = []string{fmt.Sprintf("Someone presented the secret of the decoy token %s of the application %s. A decoy is planted where only an intruder would look; tokend answered as for an unknown token, so whoever presented it learned nothing.", tokenName, appName)}
		c.Facts = tokenFacts()
		c.Facts = append(c.Facts, fact{"When", formatTime(presentedAt(n))})
		for _, f := range []struct{ label, key string }{
			{"Client address", "ip"}, {"Seen from", "peer"}, {"User agent", "user_agent"}, {"Origin", "origin"}, {"Endpoint", "endpoint"},
		} {
			if v := clean(str(n.Data, f.key), maxValue); v != "" {
				c.Facts = append(c.Facts, fact{f.label, v})
			}
		}
		c.Advice = []string{
			"Find where this decoy was planted (its name and description should say): whoever presented it has read that place, a repository, a CI variable or a configuration file. Treat the real secrets kept there as leaked: rotate or revoke them.",
			"The decoy itself needs nothing: it keeps working as an alarm. tokend mails at most one alert per decoy and address every 10 minutes, and at most 20 per decoy an hour.",
		}
		tokenLink()
	case tokend.EventTokenLeaked:
		action := clean(str(n.Data, "action"), maxValue)
		c.Subject = fmt.Sprintf("Security alert: the secret of token %s of %s was reported leaked", short(tokenName), short(appName))
		c.Intro = []string{fmt.Sprintf("The secret of the API token %s of the application %s was reported leaked.", tokenName, appName)}
		switch action {
		case tokend.LeakResultRevoked:
			c.Intro = append(c.Intro, "tokend revoked the token, as the application's leak policy says: every request that presents it is refused.")
		case tokend.LeakResultDisabled:
			c.Intro = append(c.Intro, "tokend disabled the token, as the application's leak policy says: every request that presents it is refused until it is enabled again.")
		default:
			if decoy, _ := n.Data["decoy"].(bool); decoy {
				c.Intro = append(c.Intro, "The token is a decoy: tokend changed nothing, and it stays an alarm (token.decoy_used) wherever it was found.")
			} else {
				c.Intro = append(c.Intro, "The application's leak policy is to notify only: the token still works.")
			}
		}
		c.Facts = tokenFacts()
		c.Facts = append(c.Facts, fact{"When", formatTime(n.OccurredAt)})
		if src := clean(str(n.Data, "source"), maxValue); src != "" {
			c.Facts = append(c.Facts, fact{"Reported by", src})
		}
		if where := clean(str(n.Data, "url"), maxValue); where != "" {
			c.Facts = append(c.Facts, fact{"Found at", where})
		}
		c.Advice = []string{"Remove the secret from where it was found, give whoever needs access a new token (or rotate this one if it was only disabled or left working), and check the token's activity for uses you do not know."}
		tokenLink()
	case tokend.EventWebhookDisabled:
		endpoint := clean(cmp.Or(str(n.Data, "url"), str(n.Data, "webhook_url")), maxValue)
		id := clean(cmp.Or(str(n.Data, "id"), str(n.Data, "webhook_id")), maxValue)
		reason := clean(str(n.Data, "disabled_reason"), maxValue)
		c.Subject = "Webhook endpoint disabled: " + short(cmp.Or(endpoint, id))
		c.Intro = []string{"tokend disabled a webhook endpoint: every delivery to it failed for 5 days. Events are no longer sent to it."}
		c.Facts = []fact{{"Endpoint", endpoint}, {"Webhook", id}}
		if reason != "" {
			c.Facts = append(c.Facts, fact{"Reason", reason})
		}
		if since, ok := timeOf(n.Data, "failing_since"); ok {
			c.Facts = append(c.Facts, fact{"Failing since", formatTime(since)})
		}
		c.Advice = []string{"Find out why the endpoint fails (its recent deliveries show each attempt's status and error), fix it, then enable the webhook again on its page in the dashboard, or with PATCH /v1/webhooks/" + cmp.Or(id, "{id}") + ` {"enabled": true}. Deliveries that failed meanwhile can be retried from the same page.`}
		if rawID := str(n.Data, "id"); m.publicURL != "" && rawID != "" {
			c.Link, c.LinkText = m.publicURL+"/webhooks/"+url.PathEscape(rawID), "Open the webhook endpoint in tokend"
		} else if m.publicURL != "" {
			c.Link, c.LinkText = m.publicURL+"/webhooks", "Open the webhooks in tokend"
		}
		c.Why = "You receive this mail as an owner or admin of tokend."
	default:
		return content{}, fmt.Errorf("mail: %q is not a mailed event type", clean(n.Type, 64))
	}
	return c, nil
}

// message renders c as the MIME message to to: headers, then
// multipart/alternative with text/plain and text/html, both UTF-8 and
// quoted-printable.
func (m *Mailer) message(to string, c content) ([]byte, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, part := range []struct {
		typ    string
		render func(*bytes.Buffer, content) error
	}{{"text/plain; charset=utf-8", renderText}, {"text/html; charset=utf-8", renderHTML}} {
		var b bytes.Buffer
		if err := part.render(&b, c); err != nil {
			return nil, fmt.Errorf("mail: rendering %s: %w", part.typ, err)
		}
		pw, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.typ},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		qp := quotedprintable.NewWriter(pw)
		if _, err := qp.Write(b.Bytes()); err != nil {
			return nil, err
		}
		if err := qp.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}

	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	var msg bytes.Buffer
	header := func(name, value string) { fmt.Fprintf(&msg, "%s: %s\r\n", name, value) }
	header("From", m.from.String())
	header("To", "<"+to+">")
	header("Subject", encodeHeader(c.Subject))
	header("Date", m.now().Format(time.RFC1123Z))
	header("Message-ID", "<"+hex.EncodeToString(id)+"@"+m.domain+">")
	header("MIME-Version", "1.0")
	header("Content-Type", `multipart/alternative; boundary="`+mw.Boundary()+`"`)
	header("Auto-Submitted", "auto-generated")
	msg.WriteString("\r\n")
	msg.Write(body.Bytes())
	return msg.Bytes(), nil
}

// encodeHeader answers s as a header value: as is when it is printable
// ASCII, else RFC 2047 Q-encoded words, each on its own folded line so that
// no line runs long. Text that holds "=?" is encoded too: as is, a name
// such as "=?utf-8?q?=0D=0A?=" would decode, in the reader's mail program,
// to characters that clean removed. s holds no CR or LF (clean removed
// them); the mapping below is the last guard.
func encodeHeader(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
	plain := !strings.Contains(s, "=?")
	for i := 0; plain && i < len(s); i++ {
		plain = s[i] >= ' ' && s[i] <= '~'
	}
	if plain {
		return s
	}
	var words []string
	for len(s) > 0 {
		// At most 20 bytes of text a word: 3 characters each encoded
		// keep a word within RFC 2047's 75.
		n := 0
		for n < len(s) {
			_, size := utf8.DecodeRuneInString(s[n:])
			if n+size > 20 {
				break
			}
			n += size
		}
		words = append(words, "=?utf-8?q?"+qEncode(s[:n])+"?=")
		s = s[n:]
	}
	return strings.Join(words, "\r\n ")
}

// qEncode is RFC 2047's Q encoding of an encoded-word's text.
func qEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ' ':
			b.WriteByte('_')
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.IndexByte("!*+-/", c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "=%02X", c)
		}
	}
	return b.String()
}

// renderText writes the plain part: paragraphs, the facts as an indented
// list, the link on a line of its own. Lines are CRLF, as MIME text is.
func renderText(b *bytes.Buffer, c content) error {
	line := func(s string) { b.WriteString(s + "\r\n") }
	for _, p := range c.Intro {
		line(p)
		line("")
	}
	width := 0
	for _, f := range c.Facts {
		width = max(width, utf8.RuneCountInString(f.Label))
	}
	for _, f := range c.Facts {
		line(fmt.Sprintf("  %-*s  %s", width+1, f.Label+":", f.Value))
	}
	line("")
	for _, p := range c.Advice {
		line(p)
		line("")
	}
	if c.Link != "" {
		line(c.LinkText + ":")
		line(c.Link)
		line("")
	}
	line("-- ")
	line(c.Why)
	if c.Profile != "" {
		line("Choose which mails you receive on your profile: " + c.Profile)
	} else {
		line("Choose which mails you receive on your profile page in the tokend dashboard.")
	}
	return nil
}

var htmlPart = htmltemplate.Must(htmltemplate.New("mail").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Subject}}</title></head>
<body style="font-family: sans-serif; line-height: 1.5; color: #1a1a1a; max-width: 40em;">
{{range .Intro}}<p>{{.}}</p>
{{end}}<table style="border-collapse: collapse;">
{{range .Facts}}<tr><th style="text-align: left; padding: 0 1em 0 0; vertical-align: top;">{{.Label}}</th><td style="word-break: break-all;">{{.Value}}</td></tr>
{{end}}</table>
{{range .Advice}}<p>{{.}}</p>
{{end}}{{if .Link}}<p><a href="{{.Link}}">{{.LinkText}}</a></p>
{{end}}<hr>
<p style="color: #555; font-size: smaller;">{{.Why}}
{{if .Profile}}Choose which mails you receive on <a href="{{.Profile}}">your profile</a>.{{else}}Choose which mails you receive on your profile page in the tokend dashboard.{{end}}</p>
</body></html>
`))

func renderHTML(b *bytes.Buffer, c content) error {
	var out bytes.Buffer
	if err := htmlPart.Execute(&out, c); err != nil {
		return err
	}
	// CRLF line ends, as MIME text is.
	b.WriteString(strings.ReplaceAll(out.String(), "\n", "\r\n"))
	return nil
}

// clean makes a user-controlled value safe to show in one line of a mail:
// valid UTF-8, no control characters (CR and LF included: they could
// start a header or fake a line), no bidirectional controls or invisible
// characters (they could make it read as something else), each replaced by
// U+FFFD; at most max characters.
func clean(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if tokend.TextProblem(string(r), tokend.LineText) != "" {
			return '\uFFFD'
		}
		return r
	}, s)
	return truncate(strings.TrimSpace(s), max)
}

// truncate cuts s to max characters, with an ellipsis when it cut.
func truncate(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-1]) + "…"
}

// str answers the string at key of an event's data, "" when there is none.
func str(data map[string]any, key string) string {
	s, _ := field(data, key).(string)
	return s
}

// field answers the value at key of an event's data: at its top, or in
// the subject it nests ("token", "webhook"), whichever the type carries.
func field(data map[string]any, key string) any {
	if v, ok := data[key]; ok {
		return v
	}
	for _, sub := range []string{"token", "webhook"} {
		if m, ok := data[sub].(map[string]any); ok {
			if v, ok := m[key]; ok {
				return v
			}
		}
	}
	return nil
}

// timeOf answers the time at key of an event's data: a time.Time, or RFC
// 3339 text as the data reads back from the outbox.
func timeOf(data map[string]any, key string) (time.Time, bool) {
	switch v := field(data, key).(type) {
	case time.Time:
		return v, true
	case *time.Time:
		if v != nil {
			return *v, true
		}
	case string:
		t, err := time.Parse(time.RFC3339Nano, v)
		return t, err == nil
	}
	return time.Time{}, false
}

func formatTime(t time.Time) string {
	return t.UTC().Format("Monday 2 January 2006, 15:04 UTC")
}

// humanDuration says d in whole days when it is at least one, else in
// hours, else in minutes ("2 days", "1 day", "5 hours").
func humanDuration(d time.Duration) string {
	plural := func(n int64, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	switch {
	case d >= 24*time.Hour:
		return plural(int64((d+12*time.Hour)/(24*time.Hour)), "day")
	case d >= time.Hour:
		return plural(int64((d+30*time.Minute)/time.Hour), "hour")
	}
	return plural(max(1, int64(d/time.Minute)), "minute")
}

// presentedAt is when a secret was presented, for the security events that
// say it ("at"), else when the event occurred.
func presentedAt(n tokend.Notification) time.Time {
	if when, ok := timeOf(n.Data, "at"); ok {
		return when
	}
	return n.OccurredAt
}

// endpointName says in words where a secret was presented
// (tokend.VerifyRequest.Endpoint); an unknown value as it is.
func endpointName(ep string) string {
	switch ep {
	case tokend.EndpointVerify:
		return "POST /v1/verify"
	case tokend.EndpointForwardAuth:
		return "forward auth (GET /v1/auth)"
	case tokend.EndpointAdmin:
		return "the management API"
	case tokend.EndpointDashboard:
		return "the dashboard's sign-in"
	case tokend.EndpointMiddleware:
		return "the Go SDK's middleware"
	case tokend.EndpointSelf:
		return "GET /v1/self"
	}
	return ep
}
