package verify

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/tokend/tokend"
)

// TokenChanged makes the next verification of the token's secrets (current
// and retired) re-read storage. Call it after the change is committed.
func (e *Engine) TokenChanged(id string) { e.tokens.tokenChanged(id) }

// AppChanged makes the next verification of any token of the app re-read
// storage.
func (e *Engine) AppChanged(id string) { e.tokens.appChanged(id) }

// Run writes pending usage every FlushInterval until ctx is done. Call it
// once, in its own goroutine, and Close after it returns.
func (e *Engine) Run(ctx context.Context) {
	t := time.NewTicker(e.flushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = e.Flush(ctx) // Flush logs, and keeps what it could not write
		}
	}
}

// Close writes what is pending, for a graceful shutdown.
func (e *Engine) Close(ctx context.Context) error { return e.Flush(ctx) }

// Flush writes the usage and audit events collected since the last flush.
// What storage refuses is kept for the next try.
func (e *Engine) Flush(ctx context.Context) error {
	e.usage.flushMu.Lock()
	defer e.usage.flushMu.Unlock()
	var errs []error
	if b := e.usage.take(); len(b.Counts) > 0 || len(b.Last) > 0 {
		if err := e.store.RecordUsage(ctx, b); err != nil {
			e.usage.putBack(b)
			e.log.Error("verify: writing usage failed; it is kept for the next flush",
				"err", err, "counts", len(b.Counts), "tokens", len(b.Last))
			errs = append(errs, err)
		} else {
			for _, l := range b.Last {
				e.tokens.settled(l.TokenID, l.Uses)
			}
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

// oldSecretUsed records that a secret retired by rotation was presented
// after its grace period: a sign that it leaked. At most one audit event and
// one warning per token per hour, so that whoever holds the old secret cannot
// flood either. Neither carries the secret.
func (e *Engine) oldSecretUsed(ent *entry, ip string, now int64) {
	st := ent.state
	last := st.oldSecretAt.Load()
	if last != 0 && now-last < int64(time.Hour) {
		return
	}
	if !st.oldSecretAt.CompareAndSwap(last, now) {
		return // a concurrent request records it
	}
	details := map[string]any{"reason": "a secret replaced by rotation was used after its grace period"}
	if ent.graceUntil != 0 {
		details["grace_until"] = time.Unix(0, ent.graceUntil).UTC().Format(time.RFC3339)
	}
	e.events.add(tokend.Event{
		Time:      time.Unix(0, now).UTC(),
		Actor:     "system",
		ActorName: "tokend verification",
		IP:        ip,
		Action:    tokend.ActionTokenOldSecret,
		AppID:     st.appID,
		TokenID:   st.id,
		Details:   details,
	}, e)
	e.log.Warn("verify: a secret replaced by rotation was used after its grace period; it may have leaked",
		"token_id", st.id, "app_id", st.appID, "ip", ip)
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

// usageTable collects usage between flushes, in shards chosen by token so
// that requests for different tokens do not share a lock.
type usageTable struct {
	flushMu sync.Mutex // one flush at a time; never taken by Verify
	index   func(tokenID string) uint64
	shard   [shards]usageShard
}

type usageShard struct {
	mu     sync.Mutex
	counts map[usageKey]int64
	last   map[string]lastUse
}

func (u *usageTable) init(index func(string) uint64) {
	u.index = index
	for i := range u.shard {
		u.shard[i].counts = make(map[usageKey]int64)
		u.shard[i].last = make(map[string]lastUse)
	}
}

// record counts one verification of a known token.
func (u *usageTable) record(st *tokenState, now int64, code tokend.Code, ip string) {
	valid := code == tokend.CodeValid
	if valid {
		// Before the use is visible to a flush, which subtracts it once
		// written: the state is kept while this is above zero.
		st.unflushed.Add(1)
	}
	hour := now - now%hourNs
	sh := &u.shard[st.shard]
	sh.mu.Lock()
	sh.counts[usageKey{id: st.id, hour: hour, code: code}]++
	if valid {
		lu := sh.last[st.id]
		if now >= lu.at {
			lu.at, lu.ip = now, ip
		}
		lu.uses++
		sh.last[st.id] = lu
	}
	sh.mu.Unlock()
}

// take swaps out everything collected so far as one batch.
func (u *usageTable) take() tokend.UsageBatch {
	var b tokend.UsageBatch
	for i := range u.shard {
		sh := &u.shard[i]
		sh.mu.Lock()
		// An empty map stays in place: taking it would only allocate a
		// new one every flush for nothing.
		var counts map[usageKey]int64
		var last map[string]lastUse
		if len(sh.counts) > 0 {
			counts = sh.counts
			sh.counts = make(map[usageKey]int64, len(counts))
		}
		if len(sh.last) > 0 {
			last = sh.last
			sh.last = make(map[string]lastUse, len(last))
		}
		sh.mu.Unlock()
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
	}
	return b
}

// putBack merges a batch that could not be written into what was collected
// meanwhile.
func (u *usageTable) putBack(b tokend.UsageBatch) {
	for _, c := range b.Counts {
		sh := u.shardFor(c.TokenID)
		sh.mu.Lock()
		sh.counts[usageKey{id: c.TokenID, hour: c.Hour.UnixNano(), code: c.Code}] += c.Count
		sh.mu.Unlock()
	}
	for _, l := range b.Last {
		sh := u.shardFor(l.TokenID)
		sh.mu.Lock()
		cur := sh.last[l.TokenID]
		if at := l.At.UnixNano(); at > cur.at {
			cur.at, cur.ip = at, l.IP
		}
		cur.uses += l.Uses
		sh.last[l.TokenID] = cur
		sh.mu.Unlock()
	}
}

// shardFor finds the shard of a token id by hashing it, for the flush path
// only (the hot path has the index in the token state). It must be the
// token's own shard: one key in two shards would reach storage as two rows
// of one batch.
func (u *usageTable) shardFor(id string) *usageShard { return &u.shard[u.index(id)] }

// maxPendingEvents bounds the audit events waiting for a flush while storage
// refuses them.
const maxPendingEvents = 10_000

type eventQueue struct {
	mu      sync.Mutex
	pending []tokend.Event
}

func (q *eventQueue) add(ev tokend.Event, e *Engine) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) >= maxPendingEvents {
		e.log.Error("verify: too many audit events waiting for storage; dropping one",
			"action", ev.Action, "token_id", ev.TokenID)
		return
	}
	q.pending = append(q.pending, ev)
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
