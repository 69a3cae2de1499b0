package verify

import "time"

// OutOfSync says that changes made since t may not have been told (the
// listener that relays other instances' changes lost its connection). From
// then on a cached answer is trusted only within the stale window (see
// Options.StaleWindow); past it the engine reads storage, and answers an
// error when storage cannot be read. Repeated calls keep the earliest t.
func (e *Engine) OutOfSync(t time.Time) {
	since := t.UnixNano()
	if since <= 0 { // the zero time or earlier: out of sync since forever
		since = 1
	}
	// Creates elsewhere may go untold: the filter rules nothing out until
	// it is built again after Resync.
	e.filter.outOfSync(false)
	for {
		cur := e.outOfSync.Load()
		if (cur != 0 && cur <= since) || e.outOfSync.CompareAndSwap(cur, since) {
			return
		}
	}
}

// Resync says that every change from now on is told. Every answer cached
// before is dropped, and the decoys' secrets are read again, since changes
// may have been missed meanwhile; the
// listener calls it only once its LISTEN is in place again, so that nothing
// read from now on can miss a change.
func (e *Engine) Resync() {
	e.tokens.resync()
	e.cache.dropNegative()
	e.filter.outOfSync(true) // built again, and only then trusted
	e.outOfSync.Store(0)
	e.decoysChanged()
}

// CaughtUp says that every change made while out of sync has been told
// since (the poller read the change log on from where it stopped): cached
// answers are trusted again, and none is dropped.
func (e *Engine) CaughtUp() {
	e.outOfSync.Store(0)
	// The filter was dropped when the trouble began, and the adds told
	// meanwhile went nowhere: built again, and only then trusted.
	e.filter.outOfSync(true)
}

// resync makes every cached positive entry stale at once. The token states
// stay, with their use counts and rate limiters; the next verification of
// each token reads storage again.
func (t *tokenTable) resync() {
	t.epoch.Add(1)
	for i := range t.shard {
		sh := &t.shard[i]
		sh.mu.RLock()
		for _, st := range sh.byID {
			st.gen.Add(1)
		}
		sh.mu.RUnlock()
	}
}

// dropNegative forgets every unknown secret, so that a token created while
// out of sync is found at once rather than after the negative TTL.
func (c *cache) dropNegative() {
	for i := range c.shard {
		sh := &c.shard[i]
		sh.mu.Lock()
		for k, ent := range sh.m {
			if ent.negative() {
				delete(sh.m, k)
				sh.bytes -= int64(ent.size)
			}
		}
		sh.mu.Unlock()
	}
}
