package verify

import (
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/redislimit"
	"github.com/tokend/tokend/internal/redislimit/redistest"
	"github.com/tokend/tokend/secret"
)

// ownedToken stores a token of owner in app_1, whose app has the owner
// rate limit rl, and answers its secret.
func (h *harness) ownedToken(owner string, rl *tokend.RateLimit, edit ...func(t *tokend.Token)) string {
	h.t.Helper()
	sec, err := secret.Generate("tkd")
	if err != nil {
		h.t.Fatal(err)
	}
	tok := tokend.Token{
		ID: "tok_o" + owner + "_" + sec.String()[len(sec.String())-4:], AppID: "app_1", OwnerID: owner, Name: "owned",
		Type: tokend.TypeStandard, Access: tokend.AccessFull, Status: tokend.StatusActive,
	}
	for _, f := range edit {
		f(&tok)
	}
	h.store.put(h.hasher, sec.Reveal(), tokend.Credential{Token: tok, Catalog: testCatalog, OwnerRateLimit: rl})
	return sec.Reveal()
}

// ownerLimitSetups are the limiter kinds the owner rate limit must hold
// on: one instance alone, two sharing a limiter in memory, and two
// sharing Redis (TOKEND_TEST_REDIS).
var ownerLimitSetups = []struct {
	name   string
	engine func(t *testing.T) (*harness, []*Engine)
}{
	{"local", func(t *testing.T) (*harness, []*Engine) {
		h := newHarness(t)
		return h, []*Engine{h.e}
	}},
	{"shared", func(t *testing.T) (*harness, []*Engine) {
		h, _, es := instances(t, 2)
		return h, es
	}},
	{"redis", func(t *testing.T) (*harness, []*Engine) {
		h := newHarness(t)
		l, err := redislimit.Open(redistest.URL(t), redislimit.Options{Prefix: redistest.Prefix(t), Timeout: time.Second, Now: h.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		var es []*Engine
		for range 2 {
			es = append(es, New(Options{Store: h.store, Hasher: h.hasher, Now: h.clock.Now, Shared: l}))
		}
		return h, es
	}},
}

func TestOwnerRateLimitIsSharedByTheOwnersTokens(t *testing.T) {
	for _, setup := range ownerLimitSetups {
		t.Run(setup.name, func(t *testing.T) {
			h, es := setup.engine(t)
			rl := &tokend.RateLimit{Limit: 3, Window: tokend.Duration(time.Hour)}
			a1, a2 := h.ownedToken("acct_a", rl), h.ownedToken("acct_a", rl)
			b1 := h.ownedToken("acct_b", rl)
			none := h.ownedToken("", rl) // no owner: no owner limit

			for i, sec := range []string{a1, a2, a1} {
				res := verifyOn(t, es[i%len(es)], tokend.VerifyRequest{Token: sec})
				if !res.Valid || res.RateLimit == nil || res.RateLimit.Remaining != 2-i || res.RateLimit.Limit != 3 {
					t.Fatalf("use %d of the owner: %s %+v, want VALID with %d left of 3", i+1, res.Code, res.RateLimit, 2-i)
				}
			}
			for i, sec := range []string{a2, a1} {
				res := verifyOn(t, es[i%len(es)], tokend.VerifyRequest{Token: sec})
				if res.Code != tokend.CodeRateLimited || res.Reason != ReasonOwnerRateLimited {
					t.Fatalf("over the owner's limit: %s %q, want RATE_LIMITED %s", res.Code, res.Reason, ReasonOwnerRateLimited)
				}
				if rl := res.RateLimit; rl == nil || rl.Remaining != 0 || rl.RetryAfter < 1 {
					t.Errorf("over the owner's limit: rate limit %+v, want none left and a retry", rl)
				}
			}
			// Another owner has a limit of its own; a token without an
			// owner has none.
			for i := range 3 {
				if res := verifyOn(t, es[i%len(es)], tokend.VerifyRequest{Token: b1}); !res.Valid {
					t.Fatalf("another owner's use %d: %s", i+1, res.Code)
				}
			}
			for i := range 5 {
				if res := verifyOn(t, es[i%len(es)], tokend.VerifyRequest{Token: none}); !res.Valid || res.RateLimit != nil {
					t.Fatalf("a token without owner, use %d: %s %+v", i+1, res.Code, res.RateLimit)
				}
			}
		})
	}
}

func TestOwnerRateLimitAfterTheTokensOwn(t *testing.T) {
	for _, setup := range ownerLimitSetups {
		t.Run(setup.name, func(t *testing.T) {
			h, es := setup.engine(t)
			owner := &tokend.RateLimit{Limit: 3, Window: tokend.Duration(time.Hour)}
			tight := h.ownedToken("acct_a", owner, func(t *tokend.Token) {
				t.RateLimit = &tokend.RateLimit{Limit: 2, Window: tokend.Duration(time.Hour)}
			})
			loose := h.ownedToken("acct_a", owner)
			e := es[len(es)-1]

			// The answer is the tighter of the two: the token's 2.
			for i := range 2 {
				res := verifyOn(t, e, tokend.VerifyRequest{Token: tight})
				if !res.Valid || res.RateLimit.Limit != 2 || res.RateLimit.Remaining != 1-i {
					t.Fatalf("use %d: %s %+v, want the token's limit with %d left", i+1, res.Code, res.RateLimit, 1-i)
				}
			}
			// The token's own limit refuses first, without spending the
			// owner's.
			res := verifyOn(t, e, tokend.VerifyRequest{Token: tight})
			if res.Code != tokend.CodeRateLimited || res.Reason != "" {
				t.Fatalf("over the token's own limit: %s %q, want RATE_LIMITED without a reason", res.Code, res.Reason)
			}
			res = verifyOn(t, es[0], tokend.VerifyRequest{Token: loose})
			if !res.Valid || res.RateLimit.Limit != 3 || res.RateLimit.Remaining != 0 {
				t.Fatalf("the owner's third: %s %+v, want VALID, none left of 3", res.Code, res.RateLimit)
			}
			// A refusal for another reason reports the tighter state unspent.
			res = verifyOn(t, e, tokend.VerifyRequest{Token: loose, Origin: "https://browser.example"})
			if res.Code != tokend.CodeOriginNotAllowed || res.RateLimit == nil || res.RateLimit.Remaining != 0 {
				t.Fatalf("refused for its origin: %s %+v", res.Code, res.RateLimit)
			}
			// The window passes: the owner's limit is whole again.
			h.clock.Advance(time.Hour)
			if res := verifyOn(t, e, tokend.VerifyRequest{Token: loose}); !res.Valid || res.RateLimit.Remaining != 2 {
				t.Fatalf("after the window: %s %+v", res.Code, res.RateLimit)
			}
		})
	}
}

// TestOwnerTableDropsIdleLimitersFirst fills a shard and checks that a
// limiter in use survives while idle ones make room.
func TestOwnerTableDropsIdleLimitersFirst(t *testing.T) {
	var tab ownerTable
	tab.init()
	tab.per = 4
	spec := newLimitSpec(tokend.RateLimit{Limit: 1, Window: tokend.Duration(time.Hour)})
	busy := tab.get("owner|app_1|busy", 0)
	if _, ok := busy.take(spec, 0); !ok {
		t.Fatal("first take refused")
	}
	for i := range 200 {
		tab.get(tokend.OwnerRateKey("app_1", string(rune('a'+i%26))+string(rune('a'+i/26))), 0)
	}
	if got := tab.get("owner|app_1|busy", 0); got != busy {
		t.Error("a busy owner's limiter was dropped while idle ones could make room")
	}
}

// A cached token of an owner whose app has an owner rate limit, besides the
// token's own: two limiters per verification, one of them found by key.
func BenchmarkVerifyCachedOwnerRateLimited(b *testing.B) {
	h := benchHarness(b)
	rl := &tokend.RateLimit{Limit: 1_000_000_000, Window: tokend.Duration(time.Second)}
	sec := h.ownedToken("acct_bench", rl, func(t *tokend.Token) { t.RateLimit = rl })
	loop(b, h, tokend.VerifyRequest{Token: sec, IP: "192.0.2.1"}, tokend.CodeValid)
}
