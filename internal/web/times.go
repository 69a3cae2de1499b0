package web

// Times as the pages show them: one helper for every relative time, in
// words that cannot be misread ("expires in 30 days", "expired 2 minutes
// ago", "in less than a minute"), with the exact time, in UTC with seconds,
// on hover and on the token's page.

import (
	"html/template"
	"strconv"
	"time"

	"github.com/tokend/tokend"
)

// exactLayout is how the pages write an exact time.
const exactLayout = "2006-01-02 15:04:05 UTC"

var _ = addFuncs(template.FuncMap{
	"expiry": func(now time.Time, t tokend.Token) expiryData { return expiryOf(now, t) },
})

// exactTime writes t exactly, in UTC with seconds.
func exactTime(t time.Time) string { return t.UTC().Format(exactLayout) }

// relUnits are the units of relTime, each used while the rounded count
// stays below its limit.
var relUnits = []struct {
	size  time.Duration
	name  string
	limit int64
}{
	{time.Minute, "minute", 60},
	{time.Hour, "hour", 48},
	{24 * time.Hour, "day", 60},
	{30 * 24 * time.Hour, "month", 24},
	{365 * 24 * time.Hour, "year", 1 << 62},
}

// relTime says when t is relative to now in words: "in 30 days", "3 hours
// ago", "in less than a minute", "less than a minute ago". Counts are
// rounded to the nearest unit, so that a token made for 30 days reads "in
// 30 days" a few seconds later, not "in 29 days".
func relTime(now, t time.Time) string {
	d := t.Sub(now)
	future := d > 0
	if !future {
		d = -d
	}
	var s string
	if d < time.Minute {
		s = "less than a minute"
	} else {
		for _, u := range relUnits {
			n := int64((d + u.size/2) / u.size)
			if n < u.limit {
				s = strconv.FormatInt(n, 10) + " " + u.name
				if n != 1 {
					s += "s"
				}
				break
			}
		}
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

// expiryData is a token's expiry as the pages say it: a verb ("Expires",
// "Expired", "Revoked"), the relative time and the exact time it is about;
// At is zero for a token that never expires.
type expiryData struct {
	Verb  string
	Rel   string
	At    time.Time
	Never bool
}

// Text is the whole phrase: "Expires in 30 days", "Revoked 2 hours ago".
func (e expiryData) Text() string {
	if e.Never {
		return e.Verb
	}
	return e.Verb + " " + e.Rel
}

// Exact is the exact time, "" for none.
func (e expiryData) Exact() string {
	if e.At.IsZero() {
		return ""
	}
	return exactTime(e.At)
}

// ISO is the time for a <time datetime>.
func (e expiryData) ISO() string {
	if e.At.IsZero() {
		return ""
	}
	return e.At.UTC().Format(time.RFC3339)
}

// expiryOf says when t stops or stopped working. A revoked token says
// when it was revoked, never an expiry countdown.
func expiryOf(now time.Time, t tokend.Token) expiryData {
	switch {
	case t.Status == tokend.StatusRevoked:
		if t.RevokedAt == nil {
			return expiryData{Verb: "Revoked", Never: true}
		}
		return expiryData{Verb: "Revoked", Rel: relTime(now, *t.RevokedAt), At: *t.RevokedAt}
	case t.ExpiresAt == nil:
		return expiryData{Verb: "Never expires", Never: true}
	case now.Before(*t.ExpiresAt):
		return expiryData{Verb: "Expires", Rel: relTime(now, *t.ExpiresAt), At: *t.ExpiresAt}
	}
	return expiryData{Verb: "Expired", Rel: relTime(now, *t.ExpiresAt), At: *t.ExpiresAt}
}
