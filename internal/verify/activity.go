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
	ip           string
	method, path string
	code         uint8 // its index in tokend.Codes (codeSlot)
}

// activityRing holds the notes since the last flush: a slice that grows
// to tokend.MaxActivity and then turns into a ring. A flush empties it and
// keeps its array, so that a token verified at a steady rate allocates
// nothing, and a token verified rarely holds a few notes' worth, not 50.
type activityRing struct {
	notes []activityNote
	n     int32 // notes added since the last flush (far fewer than 2^31)
}

// add notes one verification, overwriting the oldest when full.
func (ring *activityRing) add(a activityNote) {
	if len(ring.notes) < tokend.MaxActivity {
		ring.notes = append(ring.notes, a)
	} else {
		ring.notes[int(ring.n)%tokend.MaxActivity] = a
	}
	ring.n++
}

// recordActivity notes one verification.
func (st *tokenState) recordActivity(now int64, code tokend.Code, r *tokend.VerifyRequest) {
	// A query may hold secrets: never kept, even here. A long path or
	// method would keep its whole request header alive in the ring: the
	// path is cut and copied (an allocation only for such a path), the
	// method dropped. All of it before the lock, which guards only the
	// ring.
	path, cut := cutPath(r.Path)
	if cut {
		path = strings.Clone(path)
	}
	method := r.Method
	if len(method) > maxActivityMethod {
		method = ""
	}
	note := activityNote{at: now, code: uint8(codeSlot(code)), ip: r.IP, method: method, path: path}
	st.mu.Lock()
	h := st.heldLocked()
	h.activity.add(note)
	if code == tokend.CodeValid {
		// Before lastUse moves lastAt (see tokenState.drain).
		h.lastIP = r.IP
	}
	st.mu.Unlock()
}

// takeActivity appends the notes added since the last flush to rows, oldest
// first, as the rows storage keeps, and answers the last use and its
// address, read together: an address is noted before lastAt moves.
func (st *tokenState) takeActivity(rows *[]tokend.Activity) (at int64, ip string) {
	var notes [tokend.MaxActivity]activityNote
	st.mu.Lock()
	k := 0
	at = st.lastAt.Load()
	if h := st.held; h != nil {
		ip = h.lastIP
		ring := &h.activity
		k = len(ring.notes)
		for i := range k {
			notes[i] = ring.notes[(int(ring.n)-k+i)%tokend.MaxActivity]
		}
		clear(ring.notes) // let go of the requests' strings
		ring.notes, ring.n = ring.notes[:0], 0
		if k == 0 && len(h.past) == 0 {
			// Not verified since the last flush, and no past hour
			// left: the array goes too, and comes back with the next
			// verification.
			st.held = nil
		}
	}
	st.mu.Unlock()
	for _, n := range notes[:k] {
		*rows = append(*rows, tokend.Activity{
			TokenID: st.id,
			At:      time.Unix(0, n.at).UTC(),
			IP:      storableIP(n.ip),
			Code:    tokend.Codes[n.code],
			Method:  activityMethod(n.method),
			Path:    ActivityPath(n.path),
		})
	}
	return at, ip
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
	p, _ = cutPath(p)
	if tokend.TextProblem(p, tokend.LineText) != "" {
		return ""
	}
	return p
}

// cutPath drops the query string and fragment, and cuts what is left to
// tokend.MaxActivityPath bytes on a character boundary; cut reports the
// latter.
func cutPath(p string) (_ string, cut bool) {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	if len(p) <= tokend.MaxActivityPath {
		return p, false
	}
	n := tokend.MaxActivityPath
	for n > 0 && !utf8.RuneStart(p[n]) {
		n--
	}
	return p[:n], true
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
