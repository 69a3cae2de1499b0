package tokend

import (
	"context"
	"time"
)

// SharedLimiter keeps the per-token rate limits and the per-address counts
// of failed verifications in one place for every instance, so that a limit
// of 1000 an hour means 1000 an hour whichever instance answers (the
// redislimit package keeps them on Redis).
//
// The verification engine asks it only about tokens that have a rate limit,
// and about an address only when a verification from it fails. An error
// means the shared state could not be reached: the engine then counts on
// its own, per instance, and the implementation is expected to fail fast
// (not to wait out a timeout on every call) while the shared state is down.
//
// The limit shared by the tokens of one owner of an app is kept under the
// tokenID OwnerRateKey(app, owner).
type SharedLimiter interface {
	// TakeRate spends one verification of the token's limit if one is left
	// and reports the limit's state after it.
	TakeRate(ctx context.Context, tokenID string, rl RateLimit) (RateLimitState, bool, error)
	// PeekRate reports the state of the token's limit without spending it.
	PeekRate(ctx context.Context, tokenID string, rl RateLimit) (RateLimitState, error)
	// RefundRate gives back one verification spent by TakeRate, for a
	// request refused after all, and reports the state after it.
	RefundRate(ctx context.Context, tokenID string, rl RateLimit) (RateLimitState, error)
	// Failed counts one failed verification from a client address in a
	// window that starts with the address's first failure, and answers how
	// long the address is to be refused once it has failed limit times in
	// the window (0 while it has not).
	Failed(ctx context.Context, client string, limit int, window time.Duration) (time.Duration, error)
}
