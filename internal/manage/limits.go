package manage

import (
	"math/big"
	"net/netip"
	"time"

	"github.com/tokend/tokend"
)

// Which of an admin token's restrictions a bounds check considers.
const (
	boundExpiry = 1 << iota
	boundIPs
	boundRate
	boundAll = boundExpiry | boundIPs | boundRate
)

// checkWithinLimits adds a problem for each restriction of the admin token
// t that is looser than the acting admin token's own (Actor.Limits): a child
// admin token never outlives, out-reaches or out-paces its creator. Users,
// the system actor and unrestricted admin tokens are not bounded.
func checkWithinLimits(p *tokend.Problems, a tokend.Actor, t tokend.Token, which int, expiryField string) {
	if a.Kind != "token" || a.Limits == nil {
		return
	}
	l := a.Limits
	if which&boundExpiry != 0 && l.ExpiresAt != nil && (t.ExpiresAt == nil || t.ExpiresAt.After(*l.ExpiresAt)) {
		p.Add(expiryField, "must be no later than %s, when the admin token making this request expires", l.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if which&boundIPs != 0 && len(l.AllowedIPs) > 0 && !ipsWithin(t.AllowedIPs, l.AllowedIPs) {
		p.Add("allowed_ips", "must be given, each range within one of the admin token's making this request (%v)", l.AllowedIPs)
	}
	if which&boundRate != 0 && l.RateLimit != nil && !rateWithin(t.RateLimit, *l.RateLimit) {
		p.Add("rate_limit", "must be given and allow no more than the admin token's making this request (%d per %s)", l.RateLimit.Limit, l.RateLimit.Window)
	}
}

// ipsWithin reports whether child is not empty and each of its ranges lies
// within one of parent's. A range that does not parse is within nothing.
func ipsWithin(child, parent []string) bool {
	if len(child) == 0 {
		return false
	}
	var ps []netip.Prefix
	for _, s := range parent {
		if pp, err := tokend.ParsePrefix(s); err == nil {
			ps = append(ps, tokend.UnmapPrefix(pp))
		}
	}
	for _, s := range child {
		c, err := tokend.ParsePrefix(s)
		if err != nil {
			return false
		}
		c = tokend.UnmapPrefix(c)
		if !containedIn(c, ps) {
			return false
		}
	}
	return true
}

func containedIn(c netip.Prefix, ps []netip.Prefix) bool {
	for _, pp := range ps {
		if pp.Addr().Is4() == c.Addr().Is4() && pp.Bits() <= c.Bits() && pp.Contains(c.Addr()) {
			return true
		}
	}
	return false
}

// rateWithin reports whether child is set and its rate (limit per window)
// is not higher than parent's.
func rateWithin(child *tokend.RateLimit, parent tokend.RateLimit) bool {
	if child == nil {
		return false
	}
	if child.Window <= 0 || parent.Window <= 0 {
		return child.Limit <= parent.Limit && child.Window >= parent.Window
	}
	// child.Limit/child.Window <= parent.Limit/parent.Window, exactly.
	l := new(big.Int).Mul(big.NewInt(int64(child.Limit)), big.NewInt(int64(parent.Window)))
	r := new(big.Int).Mul(big.NewInt(int64(parent.Limit)), big.NewInt(int64(child.Window)))
	return l.Cmp(r) <= 0
}

// patchWithinLimits checks, of an admin token t as a patch left it, the
// restrictions the patch touched against the acting admin token's own.
func patchWithinLimits(a tokend.Actor, t tokend.Token, patch tokend.TokenPatch) error {
	which, expiryField := 0, "expires_at"
	if patch.ExpiresIn != nil {
		which, expiryField = boundExpiry, "expires_in"
	} else if patch.ExpiresAt != nil || patch.IsNull("expires_at") {
		which = boundExpiry
	}
	if patch.AllowedIPs != nil || patch.IsNull("allowed_ips") {
		which |= boundIPs
	}
	if patch.RateLimit != nil || patch.IsNull("rate_limit") {
		which |= boundRate
	}
	var p tokend.Problems
	checkWithinLimits(&p, a, t, which, expiryField)
	return p.Err()
}
