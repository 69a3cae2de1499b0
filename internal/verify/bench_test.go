package verify

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/secret"
)

// benchHarness uses the real clock and HMAC, as production does.
func benchHarness(b *testing.B, edit ...func(o *Options)) *harness {
	h := newHarness(b, edit...)
	h.e.now = time.Now
	h.e.sum = h.hasher.Sum
	return h
}

// loop verifies r once (filling the cache), then on every iteration,
// failing on any answer but want.
func loop(b *testing.B, h *harness, r tokend.VerifyRequest, want tokend.Code) {
	ctx := context.Background()
	h.e.Verify(ctx, r)
	b.ReportAllocs()
	for b.Loop() {
		if res, _ := h.e.Verify(ctx, r); res.Code != want {
			b.Fatal(res.Code)
		}
	}
}

func BenchmarkVerifyCachedValid(b *testing.B) {
	h := benchHarness(b)
	sec := h.token(func(t *tokend.Token) { t.Access = tokend.AccessReadOnly })
	loop(b, h, tokend.VerifyRequest{Token: sec, IP: "192.0.2.1", Permissions: []string{"orders:read"}}, tokend.CodeValid)
}

// A well-formed secret that no token has, ruled out by the filter of known
// secrets holding a million others (2 MB, as at a million tokens): the
// checksum, the HMAC, a cache miss and the filter's bits, no storage. The
// secrets are distinct, as in a flood; compare with BenchmarkVerifyCachedValid.
func BenchmarkVerifyRuledOut(b *testing.B) {
	h := benchHarness(b)
	f := newBloom(1_000_000)
	for range 1_000_000 {
		d := randomDigest(b)
		f.add(&d)
	}
	h.e.filter.cur.Store(f)
	secs := make([]string, 4096)
	for i := range secs {
		secs[i] = unknownSecret(b)
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if res, _ := h.e.Verify(ctx, tokend.VerifyRequest{Token: secs[i%len(secs)], IP: "192.0.2.1"}); res.Code != tokend.CodeNotFound {
			b.Fatal(res.Code)
		}
		i++
	}
	if h.store.lookups.Load() > int64(i/100) {
		b.Errorf("%d storage reads for %d unknown secrets", h.store.lookups.Load(), i)
	}
}

func BenchmarkVerifyCachedValidParallel(b *testing.B) {
	h := benchHarness(b)
	var secs []string
	for range 64 {
		secs = append(secs, h.token(func(t *tokend.Token) { t.Access = tokend.AccessReadOnly }))
	}
	ctx := context.Background()
	for _, s := range secs {
		h.e.Verify(ctx, tokend.VerifyRequest{Token: s})
	}
	b.ReportAllocs()
	b.ResetTimer()
	perms := []string{"orders:read"}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			r := tokend.VerifyRequest{Token: secs[i%len(secs)], IP: "192.0.2.1", Permissions: perms}
			i++
			if res, _ := h.e.Verify(ctx, r); res.Code != tokend.CodeValid {
				b.Error(res.Code)
				return
			}
		}
	})
}

// One hot token from every core: the worst case for shared cache lines.
func BenchmarkVerifyCachedValidParallelOneToken(b *testing.B) {
	h := benchHarness(b)
	sec := h.token()
	ctx := context.Background()
	r := tokend.VerifyRequest{Token: sec, IP: "192.0.2.1"}
	h.e.Verify(ctx, r)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if res, _ := h.e.Verify(ctx, r); res.Code != tokend.CodeValid {
				b.Error(res.Code)
				return
			}
		}
	})
}

// Every check configured: IP range, plugin origin, custom permissions and
// a rate limit (whose state is the one allocation). max_uses is left out:
// it costs a storage write per verification (BenchmarkVerifyMaxUses).
func BenchmarkVerifyCachedValidAllChecks(b *testing.B) {
	h := benchHarness(b, func(o *Options) { o.FailureLimit = 100 })
	sec := h.token(func(t *tokend.Token) {
		t.Type = tokend.TypePlugin
		t.AllowedOrigins = []string{"https://app.example.com"}
		t.AllowedIPs = []string{"10.0.0.0/8", "2001:db8::/32"}
		t.Access, t.Permissions = tokend.AccessCustom, []string{"orders:*"}
		t.RateLimit = &tokend.RateLimit{Limit: 1_000_000_000, Window: tokend.Duration(time.Second)}
	})
	r := tokend.VerifyRequest{Token: sec, IP: "2001:db8::5", Origin: "https://app.example.com", Permissions: []string{"orders:write"},
		Peer: tokend.PeerKey(tokend.DoorVerify, "2001:db8::5")}
	loop(b, h, r, tokend.CodeValid)
}

// A token in use, verified for a peer that the failure throttle blocks: the
// answer still comes from the cache, at the cost of the HMAC.
func BenchmarkVerifyCachedValidBlockedPeer(b *testing.B) {
	h := benchHarness(b, func(o *Options) { o.FailureLimit = 1 })
	peer := tokend.PeerKey(tokend.DoorVerify, "192.0.2.1")
	sec := h.token(func(t *tokend.Token) { t.Access = tokend.AccessReadOnly })
	r := tokend.VerifyRequest{Token: sec, IP: "192.0.2.1", Permissions: []string{"orders:read"}, Peer: peer}
	h.e.Verify(context.Background(), r)
	h.e.Verify(context.Background(), tokend.VerifyRequest{Token: "x", Peer: peer})
	loop(b, h, r, tokend.CodeValid)
}

// A blocked peer sending unknown secrets: refused after the HMAC and a
// cache lookup, without storage.
func BenchmarkVerifyBlockedPeerUnknown(b *testing.B) {
	h := benchHarness(b, func(o *Options) { o.FailureLimit = 1 })
	peer := tokend.PeerKey(tokend.DoorVerify, "192.0.2.1")
	h.e.Verify(context.Background(), tokend.VerifyRequest{Token: "x", Peer: peer})
	unknown, _ := secret.Generate("tkd")
	loop(b, h, tokend.VerifyRequest{Token: unknown.Reveal(), Peer: peer}, tokend.CodeRateLimited)
}

func BenchmarkVerifyMalformed(b *testing.B) {
	h := benchHarness(b)
	sec, _ := secret.Generate("tkd")
	bad := []byte(sec.Reveal())
	bad[12] ^= 1
	loop(b, h, tokend.VerifyRequest{Token: string(bad)}, tokend.CodeMalformed)
}

// Every verification misses the cache and asks the (in-memory) store: the
// cost of the engine around a storage read.
func BenchmarkVerifyCacheMiss(b *testing.B) {
	h := benchHarness(b)
	sec := h.token()
	r := tokend.VerifyRequest{Token: sec}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		h.e.TokenChanged("tok_none") // bumps the epoch: nothing stays cached
		d := h.hasher.Sum(sec)
		h.e.cache.shardOf(keyOf(&d)).drop()
		if res, _ := h.e.Verify(ctx, r); res.Code != tokend.CodeValid {
			b.Fatal(res.Code)
		}
	}
}

func (sh *cacheShard) drop() {
	sh.mu.Lock()
	clear(sh.m)
	sh.bytes = 0
	sh.mu.Unlock()
}

// The cached valid token with new-network tracking off and on, in one run
// so that their ratio compares like with like (docs/performance.md), from
// each of ips in turn.
func benchNetworks(b *testing.B, ips []string) {
	for _, track := range []bool{false, true} {
		name := "off"
		if track {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			h := benchHarness(b, func(o *Options) { o.TrackNetworks = track })
			sec := h.token(func(t *tokend.Token) { t.Access = tokend.AccessReadOnly })
			ctx := context.Background()
			reqs := make([]tokend.VerifyRequest, len(ips))
			for i, ip := range ips {
				reqs[i] = tokend.VerifyRequest{Token: sec, IP: ip, Permissions: []string{"orders:read"}}
				h.e.Verify(ctx, reqs[i])
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if res, _ := h.e.Verify(ctx, reqs[i%len(reqs)]); res.Code != tokend.CodeValid {
					b.Fatal(res.Code)
				}
				i++
			}
		})
	}
}

// From one address: tracking costs a pointer load, a string compare and a
// time compare.
func BenchmarkVerifyCachedValidNetworks(b *testing.B) { benchNetworks(b, []string{"192.0.2.1"}) }

// The token used by many clients, from 16 addresses in 4 networks it
// knows, in turn: each verification parses the address and looks its
// network up.
func BenchmarkVerifyCachedValidNetworksManyClients(b *testing.B) {
	var ips []string
	for n := range 4 {
		for a := range 4 {
			ips = append(ips, fmt.Sprintf("198.51.%d.%d", 100+n, 10+a))
		}
	}
	benchNetworks(b, ips)
}
