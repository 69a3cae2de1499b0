package verify

import (
	"context"
	"maps"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/tokend/tokend"
)

// Decoy (honey) tokens: a decoy's secret is answered exactly as an unknown
// one (NOT_FOUND, from a negative cache entry that lives NegativeTTL after
// one storage read), and its presentation raises token.decoy_used through
// the event queue, off the hot path. Nothing else is recorded: no usage,
// last use or activity.
//
// A peer blocked by the failure throttle gets no storage read for a secret
// the cache does not hold, yet a decoy among the secrets it sprays must
// still be seen: the engine keeps the digests of every decoy's secrets,
// current and retired, in memory (decoys are few), and looks a blocked
// peer's secret up there, one map lookup. A hit raises token.decoy_used,
// within the bound below, and is answered as any secret a blocked peer
// presents. The set is read at the start of Run, again DecoyRefreshDelay
// after any invalidation the engine is told of (a new decoy, a rotation, a
// deletion), and every DecoyRefreshInterval, off the request path.
//
// Whoever holds a decoy can present it as often as they like; the events
// it raises are bounded so that they cannot flood the audit log, the
// webhooks or the owners' mail: at most one per decoy and peer address per
// DecoyPeerInterval, and at most DecoyEventsPerHour per decoy per hour.
// Presentations beyond the bound raise nothing, and a warning is logged at
// most once per decoy per DecoyPeerInterval, saying how many were left out.
const (
	DecoyPeerInterval  = 10 * time.Minute
	DecoyEventsPerHour = 20

	DecoyRefreshInterval = time.Minute
	DecoyRefreshDelay    = time.Second
)

// maxDecoyLogs bounds the decoys whose recent events are remembered; past
// it, those with nothing recent are forgotten.
const maxDecoyLogs = 10_000

// decoyInfo is what a decoy's cache entry keeps: the token's public data,
// for the event.
type decoyInfo struct {
	id, appID, ownerID, name, masked string
}

func newDecoyInfo(t tokend.Token) *decoyInfo {
	return &decoyInfo{id: t.ID, appID: t.AppID, ownerID: t.OwnerID, name: t.Name, masked: t.Masked}
}

// newDecoyEntry caches a decoy's secret as an unknown one (negative, for
// the negative TTL), with what its event needs.
func newDecoyEntry(t tokend.Token, now, ttl int64) *entry {
	ent := newNegativeEntry(now, ttl)
	ent.rare = &entryRare{decoy: newDecoyInfo(t)}
	ent.setSize(int64(ent.size) + int64(unsafe.Sizeof(decoyInfo{})) + int64(unsafe.Sizeof(entryRare{})) +
		int64(len(t.ID)+len(t.AppID)+len(t.OwnerID)+len(t.Name)+len(t.Masked)))
	return ent
}

// decoySet is the digests of every decoy's secrets, current and retired.
type decoySet map[[32]byte]*decoyInfo

// blockedDecoy answers the decoy whose secret has digest d, as a blocked
// peer's secret is looked up: from its negative cache entry ent (nil for
// none) or from the set of every decoy's secrets. No storage read.
func (e *Engine) blockedDecoy(ent *entry, d [32]byte) *decoyInfo {
	if d := ent.decoy(); d != nil {
		return d
	}
	if set := e.decoySecrets.Load(); set != nil {
		return (*set)[d]
	}
	return nil
}

// decoysChanged asks Run to read the decoys' secrets again, after
// DecoyRefreshDelay; it never waits.
func (e *Engine) decoysChanged() {
	select {
	case e.decoyNudge <- struct{}{}:
	default: // a refresh is asked for already
	}
}

// refreshDecoys reads the secrets of every decoy and replaces the set. On
// failure the set read last is kept, until the next try.
func (e *Engine) refreshDecoys(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, e.readTimeout)
	secs, err := e.store.DecoySecrets(rctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			e.log.Error("verify: reading the secrets of decoy tokens failed; the set read before is kept", "err", err)
		}
		return err
	}
	set := make(decoySet, len(secs))
	byID := make(map[string]*decoyInfo)
	for _, s := range secs {
		if len(s.Hash) != len([32]byte{}) {
			continue // not an HMAC-SHA256 of this engine: no secret has it
		}
		d := byID[s.Token.ID]
		if d == nil {
			d = newDecoyInfo(s.Token)
			byID[s.Token.ID] = d
		}
		set[[32]byte(s.Hash)] = d
	}
	e.decoySecrets.Store(&set)
	return nil
}

// decoyUsed raises token.decoy_used for a presentation of a decoy, within
// the bound above.
func (e *Engine) decoyUsed(d *decoyInfo, r *tokend.VerifyRequest, now int64) {
	peer := peerAddr(r.Peer)
	key := peer
	if key == "" {
		key = r.IP // in-process: the address the middleware saw
	}
	ok, warn, left := e.decoys.allow(d.id, key, now)
	if warn {
		e.log.Warn("verify: a decoy token keeps being presented; events about it are suppressed",
			"token_id", d.id, "app_id", d.appID, "suppressed", left, "peer", peer, "ip", r.IP)
	}
	if !ok {
		return
	}
	when := time.Unix(0, now).UTC()
	data := map[string]any{
		"token_id": d.id, "app_id": d.appID, "name": d.name, "masked": d.masked,
		"at": when.Format(time.RFC3339Nano), "endpoint": r.Endpoint,
	}
	put := func(k, v string) {
		if v != "" {
			data[k] = v
		}
	}
	put("owner_id", d.ownerID)
	put("ip", r.IP)
	put("peer", peer)
	put("user_agent", eventText(r.UserAgent))
	put("origin", eventText(r.Origin))
	ip := r.IP
	if ip == "" {
		ip = peer
	}
	queued := e.events.add(tokend.Event{
		Time:      when,
		Actor:     "system",
		ActorName: "tokend verification",
		IP:        ip,
		Action:    tokend.ActionTokenDecoyUsed,
		AppID:     d.appID,
		TokenID:   d.id,
		Details:   maps.Clone(data),
		Notices:   []tokend.Notice{{Type: tokend.EventTokenDecoyUsed, Data: data}},
	})
	if !queued {
		e.log.Error("verify: too many audit events waiting for storage; one was dropped",
			"action", tokend.ActionTokenDecoyUsed, "token_id", d.id)
	}
	e.log.Warn("verify: a decoy token was presented; whoever holds it found it where it was planted",
		"token_id", d.id, "app_id", d.appID, "ip", r.IP, "peer", peer, "endpoint", r.Endpoint)
}

// peerAddr is the address in a VerifyRequest.Peer (tokend.PeerKey), "" for
// none.
func peerAddr(key string) string {
	_, addr, _ := strings.Cut(key, "|")
	return addr
}

// decoyGate bounds the events of each decoy (see DecoyPeerInterval). It is
// asked only when a decoy is presented, never for another secret.
type decoyGate struct {
	mu   sync.Mutex
	logs map[string]*decoyLog // by token id
}

type decoyLog struct {
	hour       int64            // start of the current hour window (unix ns)
	n          int              // events raised in it
	peers      map[string]int64 // peer → when its last event was raised
	suppressed int              // presentations left out since the last warning
	warned     int64            // when the last warning was logged
}

// allow reports whether a presentation of decoy id from peer raises an
// event now; warn, whether to log that presentations were suppressed, and
// how many.
func (g *decoyGate) allow(id, peer string, now int64) (ok, warn bool, suppressed int) {
	const interval, hour = int64(DecoyPeerInterval), int64(time.Hour)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.logs == nil {
		g.logs = make(map[string]*decoyLog)
	}
	lg := g.logs[id]
	if lg == nil {
		if len(g.logs) >= maxDecoyLogs {
			g.forgetLocked(now)
		}
		lg = &decoyLog{hour: now, peers: make(map[string]int64)}
		g.logs[id] = lg
	}
	if now-lg.hour >= hour || now < lg.hour {
		lg.hour, lg.n = now, 0
	}
	for p, at := range lg.peers {
		if now-at >= interval || now < at {
			delete(lg.peers, p)
		}
	}
	if _, seen := lg.peers[peer]; !seen && lg.n < DecoyEventsPerHour {
		lg.peers[peer] = now
		lg.n++
		return true, false, 0
	}
	lg.suppressed++
	if lg.warned == 0 || now-lg.warned >= interval || now < lg.warned {
		n := lg.suppressed
		lg.suppressed, lg.warned = 0, now
		return false, true, n
	}
	return false, false, 0
}

// forgetLocked drops the logs of decoys with no event in the last hour.
func (g *decoyGate) forgetLocked(now int64) {
	for id, lg := range g.logs {
		if now-lg.hour >= int64(time.Hour) {
			delete(g.logs, id)
		}
	}
}
