package verify

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokend/tokend"
)

// TokenChanged makes the next verification of the token's secrets (current
// and retired) re-read storage, and the decoys' secrets be read again. Call
// it after the change is committed (and after a decoy is created).
func (e *Engine) TokenChanged(id string) {
	e.filter.changed(id) // a create, or a rotation, elsewhere: see filter.go
	e.tokens.tokenChanged(id)
	e.decoysChanged()
}

// AppChanged makes the next verification of any token of the app re-read
// storage, and the decoys' secrets be read again.
func (e *Engine) AppChanged(id string) {
	e.tokens.appChanged(id)
	e.decoysChanged()
}

// Run writes pending usage every FlushInterval until ctx is done, and keeps
// the decoys' secrets fresh (see decoy.go): read first, then
// DecoyRefreshDelay after an invalidation and every DecoyRefreshInterval,
// and keeps the filter of known secrets (see filter.go): nothing is ruled
// out before Run has built it. Call it once, in its own goroutine, and Close after it returns.
func (e *Engine) Run(ctx context.Context) {
	filterDone := make(chan struct{})
	go func() { e.runFilter(ctx); close(filterDone) }()
	defer func() { <-filterDone }()
	t := time.NewTicker(e.flushInterval)
	defer t.Stop()
	_ = e.refreshDecoys(ctx) // logs, and is tried again
	every := time.NewTicker(e.decoyEvery)
	defer every.Stop()
	var debounce <-chan time.Time // nil while no refresh is asked for
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = e.Flush(ctx) // Flush logs, and keeps what it could not write
		case <-e.nudge:
			e.usage.flushMu.Lock()
			_ = e.applyDisables(ctx) // logs, and keeps what it could not write
			e.usage.flushMu.Unlock()
		case <-e.decoyNudge:
			// Invalidations come in bursts (a revocation of all of an
			// app's tokens, a listener that reconnects): one read after
			// the burst.
			if debounce == nil {
				debounce = time.After(e.decoyDelay)
			}
		case <-debounce:
			debounce = nil
			_ = e.refreshDecoys(ctx)
		case <-every.C:
			_ = e.refreshDecoys(ctx)
		}
	}
}

// Close writes what is pending, for a graceful shutdown.
func (e *Engine) Close(ctx context.Context) error { return e.Flush(ctx) }

// Flush writes the usage and audit events collected since the last flush.
// What storage could not take is kept for the next try; usage rows it
// refuses on their own are dropped (see writeUsage).
func (e *Engine) Flush(ctx context.Context) error {
	e.usage.flushMu.Lock()
	defer e.usage.flushMu.Unlock()
	var errs []error
	counts, last := e.usage.take()
	if len(counts) > 0 || len(last) > 0 {
		if err := e.writeUsage(ctx, batchOf(counts, last)); err != nil {
			errs = append(errs, err)
		}
	}
	if act := e.usage.takeActivity(); len(act) > 0 {
		if err := e.writeActivity(ctx, act); err != nil {
			errs = append(errs, err)
		}
	}
	if err := e.writeNetworks(ctx); err != nil {
		errs = append(errs, err)
	}
	if e.disable != nil {
		if err := e.applyDisables(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	evs := e.events.take()
	for i, ev := range evs {
		if err := e.store.AppendEvent(ctx, ev); err != nil {
			e.events.putBack(evs[i:])
			e.log.Error("verify: writing audit events failed; they are kept for the next flush",
				"err", err, "events", len(evs)-i)
			errs = append(errs, err)
			break
		}
	}
	return errors.Join(errs...)
}

// maxUsageWrites bounds the writes of one flush that looks for the rows
// storage refuses, so that a database refusing everything for a reason of
// its own costs a bounded number of failed transactions per flush.
const maxUsageWrites = 64

// writeUsage writes a batch. When storage refuses it for a reason other than
// being unavailable, the batch is split in halves, and halves of those, so
// that every good row lands and only the rows refused on their own are
// dropped (logged and counted as flush errors): one bad row never holds back
// the others. What is not written for want of storage (an outage, or the
// write budget spent, or nothing landing at all, which looks like an outage
// too) is kept whole for the next flush.
func (e *Engine) writeUsage(ctx context.Context, b tokend.UsageBatch) error {
	w := usageWriter{e: e, ctx: ctx}
	w.write(b)
	if w.failed.Counts == nil && w.failed.Last == nil && w.bad.Counts == nil && w.bad.Last == nil {
		return nil
	}
	e.stats.flushErrors.Add(1)
	if !w.landed || w.outage {
		// Kept and merged into the next batch, so one key never reaches
		// storage as two rows of a batch.
		w.failed.Counts = append(w.failed.Counts, w.bad.Counts...)
		w.failed.Last = append(w.failed.Last, w.bad.Last...)
		w.bad = tokend.UsageBatch{}
	}
	if n := len(w.bad.Counts) + len(w.bad.Last); n > 0 {
		for _, l := range w.bad.Last {
			e.tokens.settled(l.TokenID, l.Uses) // lost for good
		}
		e.stats.flushErrors.Add(uint64(n))
		e.log.Error("verify: storage refused usage rows; they are dropped, the rest is written",
			"err", w.badErr, "rows", n)
	}
	if n := len(w.failed.Counts) + len(w.failed.Last); n > 0 {
		e.usage.carry, e.usage.carryLast = unbatch(w.failed)
		e.log.Error("verify: writing usage failed; it is kept for the next flush",
			"err", w.err, "counts", len(w.failed.Counts), "tokens", len(w.failed.Last))
	}
	return w.err
}

type usageWriter struct {
	e      *Engine
	ctx    context.Context
	writes int
	landed bool // some rows were written
	outage bool // storage is unavailable: stop trying
	err    error
	badErr error
	failed tokend.UsageBatch // not written, for the next flush
	bad    tokend.UsageBatch // refused on their own
}

func (w *usageWriter) write(b tokend.UsageBatch) {
	if w.outage || w.writes >= maxUsageWrites {
		w.keep(b)
		return
	}
	w.writes++
	err := w.e.store.RecordUsage(w.ctx, b)
	if err == nil {
		w.landed = true
		for _, l := range b.Last {
			w.e.tokens.settled(l.TokenID, l.Uses)
		}
		return
	}
	w.err = err
	if w.ctx.Err() != nil || tokend.CodeOf(err) == tokend.ECodeUnavailable {
		w.outage = true
		w.keep(b)
		return
	}
	nc, nl := len(b.Counts), len(b.Last)
	if nc+nl == 1 {
		w.badErr = err
		w.bad.Counts = append(w.bad.Counts, b.Counts...)
		w.bad.Last = append(w.bad.Last, b.Last...)
		return
	}
	// Halve the rows, counts first, then last uses.
	half := (nc + nl) / 2
	var x, y tokend.UsageBatch
	if half <= nc {
		x.Counts, y.Counts, y.Last = b.Counts[:half], b.Counts[half:], b.Last
	} else {
		x.Counts, x.Last, y.Last = b.Counts, b.Last[:half-nc], b.Last[half-nc:]
	}
	w.write(x)
	w.write(y)
}

func (w *usageWriter) keep(b tokend.UsageBatch) {
	w.failed.Counts = append(w.failed.Counts, b.Counts...)
	w.failed.Last = append(w.failed.Last, b.Last...)
}

// unbatch turns rows back into the maps a flush collects into.
func unbatch(b tokend.UsageBatch) (map[usageKey]int64, map[string]lastUse) {
	counts := make(map[usageKey]int64, len(b.Counts))
	last := make(map[string]lastUse, len(b.Last))
	for _, c := range b.Counts {
		counts[usageKey{id: c.TokenID, hour: c.Hour.UnixNano(), code: c.Code}] += c.Count
	}
	for _, l := range b.Last {
		last[l.TokenID] = lastUse{at: l.At.UnixNano(), ip: l.IP, uses: l.Uses}
	}
	return counts, last
}

const hourNs = int64(time.Hour)

// usageKey is one row of the hourly usage table. The hour is in unix ns,
// which are UTC, so truncating them truncates the UTC hour.
type usageKey struct {
	id   string
	hour int64
	code tokend.Code
}

type lastUse struct {
	at   int64
	ip   string
	uses int64
}

// maxCodes bounds the verification codes counted per hour; New checks
// that tokend.Codes fits.
const maxCodes = 16

// codeSlot is the index of c in tokend.Codes.
func codeSlot(c tokend.Code) int {
	for i, x := range tokend.Codes {
		if x == c {
			return i
		}
	}
	panic("verify: unknown verification code " + string(c))
}

// hourUsage counts one token's verifications in one hour, by code, with
// atomics: a hot token verified from every core meets no lock and no map.
// Most tokens only ever see CodeValid: the other codes' counters are made
// at the first of them, so that every token verified since the last flush
// holds 32 bytes of counters rather than 144.
type hourUsage struct {
	hour    int64
	valid   atomic.Int64
	others  atomic.Pointer[[maxCodes]atomic.Int64] // by codeSlot; nil until needed
	drained bool                                   // emptied by an earlier flush; under the token state's mu
}

// add counts one verification answered code.
func (hu *hourUsage) add(code tokend.Code) {
	if code == tokend.CodeValid {
		hu.valid.Add(1)
		return
	}
	o := hu.others.Load()
	if o == nil {
		hu.others.CompareAndSwap(nil, new([maxCodes]atomic.Int64))
		o = hu.others.Load()
	}
	o[codeSlot(code)].Add(1)
}

// take empties the counters, calling fn with each code counted and its
// count.
func (hu *hourUsage) take(fn func(code tokend.Code, n int64)) {
	if v := hu.valid.Swap(0); v != 0 {
		fn(tokend.CodeValid, v)
	}
	if o := hu.others.Load(); o != nil {
		for i := range o {
			if v := o[i].Swap(0); v != 0 {
				fn(tokend.Codes[i], v)
			}
		}
	}
}

// empty reports whether nothing is counted.
func (hu *hourUsage) empty() bool {
	if hu.valid.Load() != 0 {
		return false
	}
	if o := hu.others.Load(); o != nil {
		for i := range o {
			if o[i].Load() != 0 {
				return false
			}
		}
	}
	return true
}

// usageTable collects usage between flushes. The counters live in each
// token's state; the table only lists the states that have something to
// write (marked dirty once per flush interval, not once per request).
type usageTable struct {
	flushMu sync.Mutex // one flush at a time; never taken by Verify
	dirty   [shards]dirtyShard

	// carry is what the last flush could not write; flush-only, under
	// flushMu.
	carry     map[usageKey]int64
	carryLast map[string]lastUse

	// act collects the recent activity a flush takes from the token
	// states, after what the last flush could not write; flush-only.
	act []tokend.Activity
}

type dirtyShard struct {
	mu     sync.Mutex
	states []*tokenState
}

// record counts one verification of a known token. counted says that a
// successful one was already added to the token's use count in storage (a
// token with max_uses, see Engine.takeUse): the flush must not add it again.
func (u *usageTable) record(st *tokenState, now int64, code tokend.Code, r *tokend.VerifyRequest, counted bool) {
	st.recordActivity(now, code, r)
	hour := now - now%hourNs
	hu := st.usage.Load()
	if hu == nil || hu.hour != hour {
		hu = st.newHour(hour)
	}
	if code == tokend.CodeValid {
		if !counted {
			// Before the use can be drained by a flush, which subtracts it
			// once written: the state is kept while this is above zero.
			st.unflushed.Add(1)
			st.batched.Add(1)
		}
		st.lastUse(now)
	}
	hu.add(code)
	// After counting: a flush clears the mark before it drains, so a count
	// it misses is marked again for the next one.
	if !st.dirty.Load() && st.dirty.CompareAndSwap(false, true) {
		sh := &u.dirty[st.dirtyShard()]
		sh.mu.Lock()
		sh.states = append(sh.states, st)
		sh.mu.Unlock()
	}
}

// newHour starts the counters of a new hour, keeping the last one's until a
// flush has written them.
func (st *tokenState) newHour(hour int64) *hourUsage {
	st.mu.Lock()
	defer st.mu.Unlock()
	hu := st.usage.Load()
	if hu != nil && hu.hour == hour {
		return hu
	}
	if hu != nil {
		// Looked at by two more flushes, whatever the last one did: a
		// request that loaded it before the hour turned may still add.
		hu.drained = false
		h := st.heldLocked()
		h.past = append(h.past, hu)
	}
	hu = &hourUsage{hour: hour}
	st.usage.Store(hu)
	return hu
}

// storableIP answers what of a request's ip may be written as a last-used
// address: an address that parses, without a zone; nothing otherwise. A
// caller's string is never stored as it came (one with a NUL byte made every
// usage write of PostgreSQL fail).
func storableIP(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ""
	}
	if a.Zone() != "" {
		return a.WithZone("").String()
	}
	return ip
}

// lastUse moves the last use forward (its address is noted with the
// activity, see recordActivity).
func (st *tokenState) lastUse(now int64) {
	for {
		cur := st.lastAt.Load()
		if now <= cur || st.lastAt.CompareAndSwap(cur, now) {
			return
		}
	}
}

// take drains every dirty token's counters into one batch, together with
// what the last flush could not write.
func (u *usageTable) take() (map[usageKey]int64, map[string]lastUse) {
	counts, last := u.carry, u.carryLast
	u.carry, u.carryLast = nil, nil
	if counts == nil {
		counts = make(map[usageKey]int64)
		last = make(map[string]lastUse)
	}
	var again []*tokenState
	for i := range u.dirty {
		sh := &u.dirty[i]
		sh.mu.Lock()
		states := sh.states
		sh.states = nil
		sh.mu.Unlock()
		for _, st := range states {
			if st.drain(u, counts, last) {
				again = append(again, st)
			}
		}
	}
	// Tokens with an old hour still held are looked at again next time.
	for _, st := range again {
		if st.dirty.CompareAndSwap(false, true) {
			sh := &u.dirty[st.dirtyShard()]
			sh.mu.Lock()
			sh.states = append(sh.states, st)
			sh.mu.Unlock()
		}
	}
	return counts, last
}

// drain moves the token's counts into the batch maps, and answers whether
// it still holds counters (a past hour's, or the current one's, which an
// idle token gives up) to look at next time.
func (st *tokenState) drain(u *usageTable, counts map[usageKey]int64, last map[string]lastUse) (keep bool) {
	st.dirty.Store(false)
	st.mu.Lock()
	cur := st.usage.Load()
	var held []*hourUsage
	if st.held != nil {
		held = st.held.past
	}
	hours := append([]*hourUsage{cur}, held...)
	// A past hour is forgotten once a flush found it empty after an
	// earlier one drained it: a request that loaded it just before the
	// hour turned has long finished adding to it.
	past := held[:0]
	for _, hu := range held {
		if hu.drained && hu.empty() {
			continue
		}
		hu.drained = true
		past = append(past, hu)
	}
	clear(held[len(past):])
	if cur != nil {
		if cur.drained && cur.empty() {
			// Not verified since the last flush: the current hour's
			// counters become a past hour's, which the next flush
			// forgets (or drains, should a request that loaded them
			// just now still add), so that an idle token holds none.
			st.usage.CompareAndSwap(cur, nil)
			past = append(past, cur)
		}
		cur.drained = true
	}
	if len(past) > 0 {
		st.heldLocked().past = past
	} else if st.held != nil {
		st.held.past = nil
	}
	keep = len(past) > 0 || st.usage.Load() != nil
	st.mu.Unlock()

	at, ip := st.takeActivity(&u.act)

	var valid int64
	for _, hu := range hours {
		if hu == nil {
			continue
		}
		hu.take(func(code tokend.Code, v int64) {
			counts[usageKey{id: st.id, hour: hu.hour, code: code}] += v
			if code == tokend.CodeValid {
				valid += v
			}
		})
	}
	// Only the uses not counted in storage already (see record); the hourly
	// counts above take every verification.
	uses := st.batched.Swap(0)
	if valid > 0 || uses > 0 || at > st.flushedAt {
		st.flushedAt = at
		l := last[st.id]
		if at > l.at {
			l.at, l.ip = at, storableIP(ip)
		}
		l.uses += uses
		last[st.id] = l
	}
	return keep
}

func batchOf(counts map[usageKey]int64, last map[string]lastUse) tokend.UsageBatch {
	var b tokend.UsageBatch
	for k, n := range counts {
		b.Counts = append(b.Counts, tokend.UsageCount{
			TokenID: k.id, Hour: time.Unix(0, k.hour).UTC(), Code: k.code, Count: n,
		})
	}
	for id, l := range last {
		b.Last = append(b.Last, tokend.LastUse{
			TokenID: id, At: time.Unix(0, l.at).UTC(), IP: l.ip, Uses: l.uses,
		})
	}
	return b
}

// maxPendingEvents bounds the audit events waiting for a flush while storage
// refuses them.
const maxPendingEvents = 10_000

type eventQueue struct {
	mu      sync.Mutex
	pending []tokend.Event
}

// add queues ev, or answers false when the queue is full.
func (q *eventQueue) add(ev tokend.Event) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) >= maxPendingEvents {
		return false
	}
	q.pending = append(q.pending, ev)
	return true
}

func (q *eventQueue) take() []tokend.Event {
	q.mu.Lock()
	defer q.mu.Unlock()
	evs := q.pending
	q.pending = nil
	return evs
}

func (q *eventQueue) putBack(evs []tokend.Event) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pending = append(append([]tokend.Event(nil), evs...), q.pending...)
	if n := len(q.pending); n > maxPendingEvents {
		q.pending = q.pending[n-maxPendingEvents:]
	}
}
