package verify

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/tokend/tokend"
)

// New networks (token.new_network): every valid verification with an
// address notes the address's network (tokend.NetworkOf) in a small set of
// the token's state, and a network the set does not hold is queued for the
// next usage flush, which hands the queue to the store (RecordNetworks).
// The store decides what is new, in the flush's transaction: after a
// restart the set is empty and everything is queued again, which raises
// nothing the store has seen within tokend.NewNetworkWindow.
//
// The hot path: a token used again from the address it was last looked at
// with costs one atomic load, a string compare and, once a minute, the
// queueing of its network's last seen. Another address is parsed (no
// allocation) and looked for among at most tokend.MaxTokenNetworks
// networks; the set is replaced (one small allocation) only when the
// network changes.

// networkTouch is how often a known network's last seen is queued, per
// network and instance, so that flushes stay small.
const networkTouch = time.Minute

// networkIdle is how long after a token's last valid use its state keeps
// the set of its networks. A set let go costs what a restart costs: the
// token's next use queues its network again, and the store, which keeps
// every network seen within tokend.NewNetworkWindow, raises nothing for a
// known one. A token used every minute or so keeps its set; the many that
// sit idle in a large cache hold none (about 150 bytes each).
const networkIdle = 2 * networkTouch

// maxPendingNetworks bounds the networks waiting for a flush (while storage
// is unavailable, or when tokens are used from very many networks); one
// more is dropped, and its network is queued again at its next touch.
var maxPendingNetworks = 10_000 // a var for tests

// maxNewNetworksPerHour bounds the networks a token's set takes in, per
// instance and hour: a token verified from ever new networks (a botnet, an
// IPv6 holder with a /32's 65,536 /48s, a caller that forwards made-up
// addresses) raises at most this many token.new_network an hour on each
// instance, with one warning in the log for the rest.
const maxNewNetworksPerHour = tokend.MaxTokenNetworks

// netSet is what a token state knows of its networks. It is immutable once
// stored; only the times in its seenNets move.
type netSet struct {
	ip   string     // the address of the network last taken in (a copy of the request's)
	last *seenNet   // that network
	nets []*seenNet // at most tokend.MaxTokenNetworks, the least recently queued first out
	// hour is when the current hour of the bound began (unix ns), added
	// how many networks the set took in since, warned whether the bound
	// was logged in it.
	hour   int64
	added  int
	warned bool
}

type seenNet struct {
	prefix netip.Prefix
	queued atomic.Int64 // when a use from it was last queued (unix ns), 0 for never
}

// noteNetwork notes a valid use of st from ip at now.
func (e *Engine) noteNetwork(st *tokenState, now int64, ip string) {
	s := st.nets.Load()
	if s != nil && s.ip == ip {
		e.touchNetwork(st, s.last, now, ip)
		return
	}
	if ip == "" {
		return
	}
	p, ok := tokend.NetworkOf(ip)
	if !ok {
		return
	}
	if s != nil {
		for _, n := range s.nets {
			if n.prefix == p {
				// A known network: nothing to remember, and
				// nothing allocated (the set keeps the address of
				// the last new network for the check above).
				e.touchNetwork(st, n, now, ip)
				return
			}
		}
	}
	next := &netSet{ip: strings.Clone(ip), hour: now}
	if s != nil && now-s.hour < int64(time.Hour) {
		next.hour, next.added, next.warned = s.hour, s.added, s.warned
	}
	if next.added >= maxNewNetworksPerHour {
		// Over the bound: the use passes, unrecorded.
		if !next.warned {
			next.ip, next.nets, next.last, next.warned = s.ip, s.nets, s.last, true
			if st.nets.CompareAndSwap(s, next) {
				e.log.Warn("verify: a token was used from more new networks this hour than are recorded; the rest of the hour's are not (token.new_network is not raised for them)",
					"token_id", st.id, "app_id", st.app.id, "limit", maxNewNetworksPerHour)
			}
		}
		return
	}
	next.added++
	n := &seenNet{prefix: p}
	var old []*seenNet
	if s != nil {
		old = s.nets
	}
	if len(old) >= tokend.MaxTokenNetworks {
		// Out goes the network queued longest ago.
		i := 0
		for j, x := range old {
			if x.queued.Load() < old[i].queued.Load() {
				i = j
			}
		}
		old = append(append(make([]*seenNet, 0, len(old)), old[:i]...), old[i+1:]...)
	}
	next.nets = append(append(make([]*seenNet, 0, len(old)+1), old...), n)
	next.last = n
	// A concurrent request may have replaced the set meanwhile: its
	// change or this one is lost, and the lost network is looked for again
	// at its next use.
	st.nets.CompareAndSwap(s, next)
	e.touchNetwork(st, n, now, ip)
}

// touchNetwork queues a use of st from n unless one was queued within
// networkTouch.
func (e *Engine) touchNetwork(st *tokenState, n *seenNet, now int64, ip string) {
	last := n.queued.Load()
	if last != 0 && now-last < int64(networkTouch) {
		return
	}
	if !n.queued.CompareAndSwap(last, now) {
		return // a concurrent request queues it
	}
	if !e.netQueue.add(st.id, n.prefix, storableIP(ip), now) {
		// Dropped: the network's next use queues it again, however
		// soon (else a new network used only within the minute would
		// never be written).
		n.queued.CompareAndSwap(now, last)
	}
}

// netKey is one token's network in the queue.
type netKey struct {
	id      string
	network netip.Prefix
}

// netQueue collects the uses a flush hands to the store, one per token and
// network: the first use's time and address, the last use's time.
type netQueue struct {
	mu      sync.Mutex
	pending map[netKey]tokend.NetworkUse
	// perToken counts each token's networks in pending: at most
	// tokend.MaxTokenNetworks per flush (all a token keeps), so that a
	// token verified from ever new networks (an address its caller makes
	// up) costs each flush a bounded number of rows and events.
	perToken map[string]int
	dropped  int // since the last flush, for its log
}

// add queues a use and reports whether it is in the queue (false: dropped
// for a bound).
func (q *netQueue) add(id string, p netip.Prefix, ip string, now int64) bool {
	at := time.Unix(0, now).UTC()
	q.mu.Lock()
	defer q.mu.Unlock()
	k := netKey{id: id, network: p}
	if u, ok := q.pending[k]; ok {
		if at.After(u.Last) {
			u.Last = at
			q.pending[k] = u
		}
		return true
	}
	if len(q.pending) >= maxPendingNetworks || q.perToken[id] >= tokend.MaxTokenNetworks {
		q.dropped++
		return false
	}
	if q.pending == nil {
		q.pending = make(map[netKey]tokend.NetworkUse)
		q.perToken = make(map[string]int)
	}
	q.pending[k] = tokend.NetworkUse{TokenID: id, Network: p.String(), IP: ip, First: at, Last: at}
	q.perToken[id]++
	return true
}

// take empties the queue.
func (q *netQueue) take() (map[netKey]tokend.NetworkUse, int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	m, d := q.pending, q.dropped
	q.pending, q.perToken, q.dropped = nil, nil, 0
	return m, d
}

// putBack returns what a flush could not write, merged with what was
// queued since, within the bound.
func (q *netQueue) putBack(m map[netKey]tokend.NetworkUse) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.pending == nil {
		q.pending = make(map[netKey]tokend.NetworkUse, len(m))
		q.perToken = make(map[string]int)
	}
	for k, u := range m {
		if cur, ok := q.pending[k]; ok {
			u.Last = maxTime(u.Last, cur.Last)
		} else if len(q.pending) >= maxPendingNetworks {
			q.dropped++
			continue
		} else {
			q.perToken[k.id]++
		}
		q.pending[k] = u
	}
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// writeNetworks hands the queued networks to the store. What storage could
// not take for want of storage (an outage) is kept for the next flush;
// anything else it refuses is dropped and logged (the networks are queued
// again at their next touch).
func (e *Engine) writeNetworks(ctx context.Context) error {
	e.sweepNetworks(e.now().UnixNano())
	m, dropped := e.netQueue.take()
	if dropped > 0 {
		e.log.Warn("verify: networks not queued (too many waiting, or more than a token keeps in one flush); each is queued again at its next use a minute on", "networks", dropped)
	}
	if len(m) == 0 {
		return nil
	}
	uses := make([]tokend.NetworkUse, 0, len(m))
	for _, u := range m {
		uses = append(uses, u)
	}
	err := e.store.RecordNetworks(ctx, uses, e.networkEvent)
	if err == nil {
		return nil
	}
	e.stats.flushErrors.Add(1)
	if ctx.Err() != nil || tokend.CodeOf(err) == tokend.ECodeUnavailable {
		e.netQueue.putBack(m)
		e.log.Error("verify: writing networks failed; they are kept for the next flush", "err", err, "networks", len(m))
		return err
	}
	e.log.Error("verify: storage refused networks; they are dropped", "err", err, "networks", len(m))
	return err
}

// networkStateSize is what a token's network set may hold at most, added
// to the estimated size of its cache entries while networks are tracked.
const networkStateSize = int64(unsafe.Sizeof(netSet{})) + 16 +
	tokend.MaxTokenNetworks*int64(unsafe.Sizeof(&seenNet{})+unsafe.Sizeof(seenNet{}))

// basicNetworkEvent is the token.new_network event of an engine without
// Options.NetworkEvent: the token's id, app and name as its data.
func basicNetworkEvent(n tokend.NewNetwork) tokend.Event {
	return n.Event(map[string]any{"id": n.Token.ID, "app_id": n.Token.AppID, "name": n.Token.Name})
}

// sweepNetworks lets go of the network sets of the tokens not validly used
// for networkIdle, once every networkTouch at most; flush-only (under the
// usage table's flushMu). A request that replaces a set meanwhile wins: the
// sweep only clears the set it looked at.
func (e *Engine) sweepNetworks(now int64) {
	if !e.trackNetworks || now-e.netSwept < int64(networkTouch) {
		return
	}
	e.netSwept = now
	for i := range e.tokens.shard {
		sh := &e.tokens.shard[i]
		sh.mu.RLock()
		for _, st := range sh.byID {
			if s := st.nets.Load(); s != nil && now-st.lastAt.Load() >= int64(networkIdle) {
				st.nets.CompareAndSwap(s, nil)
			}
		}
		sh.mu.RUnlock()
	}
}
