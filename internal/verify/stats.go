package verify

import (
	"context"
	"sync/atomic"

	"github.com/tokend/tokend"
)

// Verify answers whether r.Token is good for the request. An error means
// storage could not be asked about a secret that is not in the cache; the
// caller must answer 503, never treat it as valid.
func (e *Engine) Verify(ctx context.Context, r tokend.VerifyRequest) (tokend.VerifyResult, error) {
	res, err := e.screen(ctx, r)
	e.stats.count(&r, res, err)
	return res, err
}

// statStripes is the number of copies of the outcome counters. Requests
// for different tokens mostly add to different copies, so that counting
// does not make every core write to one cache line.
const statStripes = 16

// stats counts what the engine answered, for monitoring. It costs each
// verification one atomic add and never allocates.
type stats struct {
	stripe [statStripes]statStripe
	// Storage failures: reads on the verification path, usage flushes.
	readErrors atomic.Uint64
	// reads counts the tokens read by secret (cache misses the filter
	// did not rule out).
	reads       atomic.Uint64
	flushErrors atomic.Uint64
	// admin counts the checks of admin tokens (the management API's
	// bearer, the dashboard's sign-in) apart from verifications, by code:
	// few, so not striped.
	admin [maxCodes]atomic.Uint64
}

type statStripe struct {
	codes     [maxCodes]atomic.Uint64
	throttled atomic.Uint64
	_         [56]byte // the next stripe starts on a cache line of its own
}

func (s *stats) count(r *tokend.VerifyRequest, res tokend.VerifyResult, err error) {
	if err != nil {
		s.readErrors.Add(1)
		return
	}
	if isAdmin(r.Endpoint) {
		s.admin[codeSlot(res.Code)].Add(1)
		return
	}
	secret := r.Token
	// The secret's last character (of a checksum, for a well-formed one)
	// spreads tokens over the stripes; it is not kept.
	sp := &s.stripe[0]
	if n := len(secret); n > 0 {
		sp = &s.stripe[int(secret[n-1])%statStripes]
	}
	if res.Reason == ReasonClientThrottled {
		sp.throttled.Add(1)
	}
	sp.codes[codeSlot(res.Code)].Add(1)
}

// Verifications answers how many verifications ended with the code since
// the engine started (a client refused by the failure throttle counts as
// RATE_LIMITED, and also in Throttled).
func (e *Engine) Verifications(c tokend.Code) uint64 {
	i := codeSlot(c)
	var n uint64
	for s := range e.stats.stripe {
		n += e.stats.stripe[s].codes[i].Load()
	}
	return n
}

// AdminAuthentications answers how many checks of admin tokens (at the
// management API and the dashboard's sign-in) ended with the code since the
// engine started. They are not counted in Verifications, nor in Throttled.
func (e *Engine) AdminAuthentications(c tokend.Code) uint64 {
	return e.stats.admin[codeSlot(c)].Load()
}

// isAdmin reports whether a secret presented at this endpoint is checked
// as an admin token, not verified for a product.
func isAdmin(endpoint string) bool {
	return endpoint == tokend.EndpointAdmin || endpoint == tokend.EndpointDashboard
}

// Throttled answers how many verifications the failure throttle refused
// before looking at the secret.
func (e *Engine) Throttled() uint64 {
	var n uint64
	for s := range e.stats.stripe {
		n += e.stats.stripe[s].throttled.Load()
	}
	return n
}

// StorageErrors answers how many verifications could not be answered
// because storage failed (the caller answered 503).
func (e *Engine) StorageErrors() uint64 { return e.stats.readErrors.Load() }

// FlushErrors answers how many usage flushes storage refused, plus how many
// usage rows it refused on their own (and that were dropped, see Flush).
func (e *Engine) FlushErrors() uint64 { return e.stats.flushErrors.Load() }

// CacheSize answers how many entries (positive and negative) the cache
// holds and their estimated bytes.
func (e *Engine) CacheSize() (entries int, bytes int64) {
	for i := range e.cache.shard {
		sh := &e.cache.shard[i]
		sh.mu.RLock()
		entries += len(sh.m)
		bytes += sh.bytes
		sh.mu.RUnlock()
	}
	return entries, bytes
}
