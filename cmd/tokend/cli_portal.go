package main

import (
	"strings"

	"github.com/spf13/pflag"

	"github.com/tokend/tokend"
)

// portalFlags are app create's and app edit's flags for the customer
// portal's branding and embedding (tokend.AppPortal).
type portalFlags struct {
	name, logo, accent, support string
	frames                      []string
}

func (p *portalFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&p.name, "portal-name", "", "the product name the customer portal shows (default: the app's name)")
	fl.StringVar(&p.logo, "portal-logo", "", "an https URL of the logo the customer portal shows")
	fl.StringVar(&p.accent, "portal-accent", "", "the customer portal's accent colour, #rrggbb")
	fl.StringVar(&p.support, "portal-support", "", "an https URL of the support page the customer portal links to")
	fl.StringSliceVar(&p.frames, "portal-frame-ancestor", nil, "an https origin that may embed the customer portal in an iframe (repeatable)")
}

// changed reports whether any portal flag was given.
func (p *portalFlags) changed(fl *pflag.FlagSet) bool {
	for _, n := range []string{"portal-name", "portal-logo", "portal-accent", "portal-support", "portal-frame-ancestor"} {
		if fl.Changed(n) {
			return true
		}
	}
	return false
}

// apply answers base (nil: none) with the given flags' values set.
func (p *portalFlags) apply(fl *pflag.FlagSet, base *tokend.AppPortal) *tokend.AppPortal {
	var out tokend.AppPortal
	if base != nil {
		out = *base
	}
	if fl.Changed("portal-name") {
		out.ProductName = p.name
	}
	if fl.Changed("portal-logo") {
		out.LogoURL = p.logo
	}
	if fl.Changed("portal-accent") {
		out.AccentColor = p.accent
	}
	if fl.Changed("portal-support") {
		out.SupportURL = p.support
	}
	if fl.Changed("portal-frame-ancestor") {
		out.FrameAncestors = p.frames
	}
	return &out
}

// fmtPortal is the one line app get shows of the portal settings, when
// the app has some.
func fmtPortal(pt *tokend.AppPortal) string {
	var parts []string
	for _, kv := range [][2]string{{"name", pt.ProductName}, {"logo", pt.LogoURL}, {"accent", pt.AccentColor}, {"support", pt.SupportURL}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+" "+kv[1])
		}
	}
	if len(pt.FrameAncestors) > 0 {
		parts = append(parts, "embeddable by "+strings.Join(pt.FrameAncestors, ", "))
	} else {
		parts = append(parts, "not embeddable")
	}
	return strings.Join(parts, "; ")
}
