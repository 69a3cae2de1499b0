package verify

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tokend/tokend"
)

// Recent activity: every verification of a known token is noted in a ring
// of the token's state, under the state's lock, as strings the request
// already holds (nothing is copied or allocated per verification), and the
// usage flush writes the notes since the last one in one batch. The ring
// keeps tokend.MaxActivity, which is all storage keeps: a busy token's older
// notes are overwritten before any flush would have written them over.

// maxActivityMethod bounds a forward-auth method, in bytes.
const maxActivityMethod = 16

// maxCarriedActivity bounds the activity kept across flushes while storage
// is unavailable; the oldest is dropped first.
const maxCarriedActivity = 10_000

type activityNote struct {
	at           int64
	code         tokend.Code
	ip           string
	method, path string
}

type activityRing struct {
	notes [tokend.MaxActivity]activityNote
	n     uint64 // notes ever added
	taken uint64 // of which taken by a flush
}

// recordActivity notes one verification. The ring is made on the token's
// first verification, and never again while its state lives.
func (st *tokenState) recordActivity(now int64, code tokend.Code, r *tokend.VerifyRequest) {
	st.mu.Lock()
	ring := st.activity
	if ring == nil {
		ring = new(activityRing)
		st.activity = ring
	}
	path := r.Path
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i] // a query may hold secrets: never kept, even here
	}
	ring.notes[ring.n%tokend.MaxActivity] = activityNote{
		at: now, code: code, ip: r.IP, method: r.Method, path: path,
	}
	ring.n++
	st.mu.Unlock()
}

// takeActivity appends the notes added since the last flush to rows, oldest
// first, as the rows storage keeps.
func (st *tokenState) takeActivity(rows *[]tokend.Activity) {
	var notes [tokend.MaxActivity]activityNote
	st.mu.Lock()
	ring := st.activity
	if ring == nil {
		st.mu.Unlock()
		return
	}
	k := min(ring.n-ring.taken, tokend.MaxActivity)
	for i := range k {
		notes[i] = ring.notes[(ring.n-k+i)%tokend.MaxActivity]
	}
	ring.taken = ring.n
	st.mu.Unlock()
	for _, n := range notes[:k] {
		*rows = append(*rows, tokend.Activity{
			TokenID: st.id,
			At:      time.Unix(0, n.at).UTC(),
			IP:      storableIP(n.ip),
			Code:    n.code,
			Method:  activityMethod(n.method),
			Path:    ActivityPath(n.path),
		})
	}
}

// activityMethod answers what of a forward-auth method may be stored: a
// short line of text, upper-cased; nothing otherwise.
func activityMethod(m string) string {
	m = strings.TrimSpace(m)
	if m == "" || len(m) > maxActivityMethod || tokend.TextProblem(m, tokend.LineText) != "" {
		return ""
	}
	return strings.ToUpper(m)
}

// ActivityPath answers what of a forward-auth path may be stored: the path
// without its query string or fragment (a query may hold secrets), cut to
// tokend.MaxActivityPath bytes on a character boundary, and only when it is
// a line of text (tokend.CheckText's LineText rule); "" otherwise.
func ActivityPath(p string) string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	if len(p) > tokend.MaxActivityPath {
		cut := tokend.MaxActivityPath
		for cut > 0 && !utf8.RuneStart(p[cut]) {
			cut--
		}
		p = p[:cut]
	}
	if tokend.TextProblem(p, tokend.LineText) != "" {
		return ""
	}
	return p
}

// takeActivity answers the activity a flush writes: what the last one could
// not, then what the token states noted since.
func (u *usageTable) takeActivity() []tokend.Activity {
	act := u.act
	u.act = nil
	return act
}

// writeActivity writes a batch of activity. As with usage (see writeUsage),
// a batch storage refuses for a reason of its own is split in halves so that
// every good row lands and only rows refused on their own are dropped; what
// is not written for want of storage is kept for the next flush, bounded.
func (e *Engine) writeActivity(ctx context.Context, rows []tokend.Activity) error {
	w := activityWriter{e: e, ctx: ctx}
	w.write(rows)
	if len(w.failed) == 0 && w.bad == 0 {
		return nil
	}
	e.stats.flushErrors.Add(1)
	if w.bad > 0 {
		e.stats.flushErrors.Add(uint64(w.bad))
		e.log.Error("verify: storage refused activity rows; they are dropped, the rest is written",
			"err", w.badErr, "rows", w.bad)
	}
	if n := len(w.failed); n > 0 {
		if n > maxCarriedActivity {
			w.failed = w.failed[n-maxCarriedActivity:]
		}
		// Flush-only, like carry: the next flush's notes come after these.
		e.usage.act = append(w.failed, e.usage.act...)
		e.log.Error("verify: writing activity failed; it is kept for the next flush",
			"err", w.err, "rows", len(w.failed))
	}
	return w.err
}

type activityWriter struct {
	e      *Engine
	ctx    context.Context
	writes int
	outage bool
	err    error
	badErr error
	bad    int
	failed []tokend.Activity
}

func (w *activityWriter) write(rows []tokend.Activity) {
	if w.outage || w.writes >= maxUsageWrites {
		w.failed = append(w.failed, rows...)
		return
	}
	w.writes++
	err := w.e.store.RecordActivity(w.ctx, rows)
	if err == nil {
		return
	}
	w.err = err
	if w.ctx.Err() != nil || tokend.CodeOf(err) == tokend.ECodeUnavailable {
		w.outage = true
		w.failed = append(w.failed, rows...)
		return
	}
	if len(rows) == 1 {
		w.badErr = err
		w.bad++
		return
	}
	half := len(rows) / 2
	w.write(rows[:half])
	w.write(rows[half:])
}
