package verify

import (
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/redislimit"
	"github.com/tokend/tokend/internal/redislimit/redistest"
)

// A cached token with a rate limit, limited by this instance alone and
// through Redis (one round trip to the test server per verification).
func BenchmarkVerifyCachedRateLimited(b *testing.B) {
	for _, where := range []string{"local", "redis"} {
		b.Run(where, func(b *testing.B) {
			var shared tokend.SharedLimiter
			if where == "redis" {
				l, err := redislimit.Open(redistest.URL(b), redislimit.Options{Prefix: redistest.Prefix(b), Timeout: time.Second})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { l.Close() })
				shared = l
			}
			h := benchHarness(b, func(o *Options) { o.Shared = shared })
			sec := h.token(func(t *tokend.Token) {
				t.RateLimit = &tokend.RateLimit{Limit: 1_000_000_000, Window: tokend.Duration(time.Second)}
			})
			loop(b, h, tokend.VerifyRequest{Token: sec, IP: "192.0.2.1"}, tokend.CodeValid)
		})
	}
}
