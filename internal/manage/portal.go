package manage

import (
	"context"
	"errors"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tokend/tokend"
)

// The customer portal (tokend.PortalGrant): a product's backend, with an
// admin token holding tokens:write, mints a single-use link for one owner
// of one of its applications; the link opens a session whose every action
// goes through this service as PortalActor, an actor scoped to that owner
// and that application, so that the scope rules of scope.go, the
// permission checks and the audit log apply as for the API.

// MaxReturnURLLen bounds a portal link's return URL.
const MaxReturnURLLen = 2048

var (
	// errPortalLink answers a link that is unknown, used or expired: the
	// one answer, so that nothing tells them apart.
	errPortalLink = tokend.Errorf(tokend.ECodeNotFound, "this link is not valid: it was used already, it expired, or it never existed")
	errNoPortal   = tokend.Errorf(tokend.ECodeUnauthenticated, "not signed in, or the session has ended")
)

func (s *Service) portalStore() (tokend.PortalStore, error) {
	ps, ok := s.store.(tokend.PortalStore)
	if !ok {
		return nil, tokend.Internal(errors.New("manage: the store keeps no portal links"))
	}
	return ps, nil
}

// CreatePortalLink mints a portal link for in's owner and answers its
// secret (256 random bits, base64url, for the link's URL; the store keeps
// its SHA-256) and when it expires (PortalLinkTTL from now). A scoped
// actor mints links only for its own owner, in its applications.
func (s *Service) CreatePortalLink(ctx context.Context, a tokend.Actor, in tokend.PortalInput) (string, time.Time, error) {
	// The link hands its customer everything the page can do to their
	// tokens; an admin token that could not do it all itself must not be
	// able to pass it on (and PortalSession checks it again on every
	// request, so that a revoked or narrowed minter ends what it minted).
	for _, perm := range portalPermissions {
		if !a.Can(perm) {
			return "", time.Time{}, tokend.Errorf(tokend.ECodeForbidden,
				"minting a portal link requires %s: the page lets the customer read, create, edit, rotate and delete their tokens", strings.Join(portalPermissions, ", "))
		}
	}
	var p tokend.Problems
	if !tokend.ValidOwnerID(in.OwnerID) {
		p.Add("owner_id", "must be 1 to %d visible ASCII characters (letters, digits, punctuation; no spaces)", tokend.MaxOwnerIDLen)
	} else if err := ownerOutOfScope(a, in.AppID, in.OwnerID); err != nil {
		return "", time.Time{}, err
	}
	tokend.CheckOwnerName(&p, "owner_name", in.OwnerName)
	if !tokend.ValidOwnerID(in.User.ID) {
		p.Add("user.id", "must be 1 to %d visible ASCII characters", tokend.MaxOwnerIDLen)
	}
	tokend.CheckOwnerName(&p, "user.name", in.User.Name)
	if in.User.Email != "" {
		CheckEmail(&p, "user.email", in.User.Email)
	}
	CheckReturnURL(&p, "return_url", in.ReturnURL)
	var app tokend.App
	if in.AppID == "" {
		p.Add("app_id", "is required")
	} else {
		var err error
		if app, err = s.appFor(ctx, &p, in.AppID); err != nil {
			return "", time.Time{}, err
		}
		app = hideApp(a, &p, app, false)
		if app.System {
			p.Add("app_id", "must be a product application, not the system application")
		}
	}
	access, perms := dedupe(accessStrings(in.AllowedAccess)), dedupe(in.AllowedPermissions)
	for i, ac := range access {
		switch tokend.Access(ac) {
		case tokend.AccessReadOnly, tokend.AccessFull, tokend.AccessCustom:
		default:
			p.Add("allowed_access["+strconv.Itoa(i)+"]", "must be read_only, full_access or custom")
		}
	}
	if len(perms) > 0 && app.ID != "" {
		for i, perm := range perms {
			if !slices.Contains(app.Permissions, perm) {
				p.Add("allowed_permissions["+strconv.Itoa(i)+"]", "%q is not in the application's permission catalog", clip(perm, 80))
			}
		}
	}
	if err := p.Err(); err != nil {
		return "", time.Time{}, err
	}
	if len(access) == 0 {
		access = []string{string(tokend.AccessReadOnly), string(tokend.AccessFull)}
	}
	ps, err := s.portalStore()
	if err != nil {
		return "", time.Time{}, err
	}
	raw, err := randomToken()
	if err != nil {
		return "", time.Time{}, tokend.Internal(err)
	}
	now := s.Now()
	g := tokend.PortalGrant{
		AppID: app.ID, OwnerID: in.OwnerID, OwnerName: in.OwnerName, User: in.User, ReturnURL: in.ReturnURL,
		AllowedAccess: toAccess(access), AllowedPermissions: perms, CreatedBy: a.Ref(),
	}
	l := tokend.PortalLink{IDHash: sessionHash(raw), Grant: g, CreatedAt: now, ExpiresAt: now.Add(tokend.PortalLinkTTL)}
	if err := ps.CreatePortalLink(ctx, l); err != nil {
		return "", time.Time{}, storeErr(err, "portal link")
	}
	ev := s.event(a, tokend.ActionPortalLink, app.ID, "", map[string]any{
		"owner_id": g.OwnerID, "user_id": g.User.ID, "expires_at": fmtTime(&l.ExpiresAt),
	})
	if err := s.store.AppendEvent(ctx, ev); err != nil {
		return "", time.Time{}, storeErr(err, "event")
	}
	return raw, l.ExpiresAt, nil
}

func accessStrings(in []tokend.Access) []string {
	out := make([]string, len(in))
	for i, a := range in {
		out[i] = string(a)
	}
	return out
}

func toAccess(in []string) []tokend.Access {
	out := make([]tokend.Access, len(in))
	for i, a := range in {
		out[i] = tokend.Access(a)
	}
	return out
}

// CheckReturnURL checks where a portal session ends: an absolute https URL
// (http only for localhost and loopback addresses), without user
// information, at most MaxReturnURLLen bytes of printable text.
func CheckReturnURL(p *tokend.Problems, field, raw string) {
	switch {
	case raw == "":
		p.Add(field, "is required")
		return
	case len(raw) > MaxReturnURLLen:
		p.Add(field, "must be at most %d characters", MaxReturnURLLen)
		return
	}
	if msg := tokend.TextProblem(raw, tokend.LineText); msg != "" {
		p.Add(field, "%s", msg)
		return
	}
	if !ValidHTTPSURL(raw, true) {
		p.Add(field, "must be an absolute https URL such as https://app.example.com/settings (http only for localhost)")
	}
}

// ValidHTTPSURL reports whether raw is an absolute https URL with a host and
// no user information or spaces; with localHTTP, http is taken for
// localhost and loopback addresses.
func ValidHTTPSURL(raw string, localHTTP bool) bool {
	if strings.ContainsAny(raw, " \\") {
		return false
	}
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Opaque != "" || !hostRE.MatchString(u.Host) {
		return false
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return false
		}
	}
	switch u.Scheme {
	case "https":
		return true
	case "http":
		return localHTTP && isLoopbackHost(u.Hostname())
	}
	return false
}

// hostRE is a URL's host (and port) as it may go into a CSP source: a name
// or an IPv4 address, or an IPv6 one in brackets.
var hostRE = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$`)

// URLOrigin answers the origin (scheme://host[:port]) of a URL that
// ValidHTTPSURL took, "" for any other.
func URLOrigin(raw string) string {
	if !ValidHTTPSURL(raw, true) {
		return ""
	}
	u, _ := url.Parse(raw)
	return u.Scheme + "://" + u.Host
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// OpenPortalLink consumes a link (once, whichever instance asks first) and
// starts the session it grants: it answers the session id for the cookie
// (the store keeps its SHA-256) and the session.
func (s *Service) OpenPortalLink(ctx context.Context, rawLink, ip string) (string, tokend.PortalSession, error) {
	ps, err := s.portalStore()
	if err != nil {
		return "", tokend.PortalSession{}, err
	}
	if rawLink == "" || len(rawLink) > 128 {
		return "", tokend.PortalSession{}, errPortalLink
	}
	now := s.Now()
	l, err := ps.ConsumePortalLink(ctx, sessionHash(rawLink), now)
	if errors.Is(err, tokend.ErrNotFound) {
		return "", tokend.PortalSession{}, errPortalLink
	}
	if err != nil {
		return "", tokend.PortalSession{}, storeErr(err, "portal link")
	}
	if err := s.minterLive(ctx, l.Grant); err != nil {
		if errors.Is(err, errNoPortal) {
			err = errPortalLink // as for a link that never existed
		}
		return "", tokend.PortalSession{}, err
	}
	raw, err := randomToken()
	if err != nil {
		return "", tokend.PortalSession{}, tokend.Internal(err)
	}
	csrf, err := randomToken()
	if err != nil {
		return "", tokend.PortalSession{}, tokend.Internal(err)
	}
	sess := tokend.PortalSession{
		IDHash: sessionHash(raw), Grant: l.Grant, CSRF: csrf,
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(tokend.PortalAbsolute),
	}
	if err := ps.CreatePortalSession(ctx, sess); err != nil {
		return "", tokend.PortalSession{}, storeErr(err, "portal session")
	}
	ev := s.event(PortalActor(l.Grant, ip), tokend.ActionPortalOpen, l.Grant.AppID, "", nil)
	if err := s.store.AppendEvent(ctx, ev); err != nil {
		return "", tokend.PortalSession{}, storeErr(err, "event")
	}
	return raw, sess, nil
}

// PortalSession answers the session of a cookie's id while it is good:
// before its ExpiresAt and used within tokend.PortalIdle. A session that
// fails is ended. Activity is recorded at most once a minute.
func (s *Service) PortalSession(ctx context.Context, rawID string) (tokend.PortalSession, error) {
	ps, err := s.portalStore()
	if err != nil {
		return tokend.PortalSession{}, err
	}
	if rawID == "" || len(rawID) > 128 {
		return tokend.PortalSession{}, errNoPortal
	}
	hash := sessionHash(rawID)
	sess, err := ps.PortalSession(ctx, hash)
	if errors.Is(err, tokend.ErrNotFound) {
		return tokend.PortalSession{}, errNoPortal
	}
	if err != nil {
		return tokend.PortalSession{}, storeErr(err, "portal session")
	}
	now := s.Now()
	if !now.Before(sess.ExpiresAt) || !now.Before(sess.LastSeenAt.Add(tokend.PortalIdle)) {
		if err := ps.DeletePortalSession(ctx, hash); err != nil {
			s.log.WarnContext(ctx, "ending an expired portal session", "err", err)
		}
		return tokend.PortalSession{}, errNoPortal
	}
	if err := s.minterLive(ctx, sess.Grant); err != nil {
		if errors.Is(err, errNoPortal) {
			if err := ps.DeletePortalSession(ctx, hash); err != nil {
				s.log.WarnContext(ctx, "ending a portal session whose admin token is gone", "err", err)
			}
		}
		return tokend.PortalSession{}, err
	}
	if now.Sub(sess.LastSeenAt) >= time.Minute {
		if err := ps.TouchPortalSession(ctx, hash, now); err != nil && !errors.Is(err, tokend.ErrNotFound) {
			return tokend.PortalSession{}, storeErr(err, "portal session")
		}
		sess.LastSeenAt = now
	}
	return sess, nil
}

// EndPortalSession signs the customer out; ending an unknown session is
// not an error.
func (s *Service) EndPortalSession(ctx context.Context, rawID, ip string) error {
	ps, err := s.portalStore()
	if err != nil {
		return err
	}
	if rawID == "" || len(rawID) > 128 {
		return nil
	}
	hash := sessionHash(rawID)
	sess, err := ps.PortalSession(ctx, hash)
	if errors.Is(err, tokend.ErrNotFound) {
		return nil
	}
	if err != nil {
		return storeErr(err, "portal session")
	}
	if err := ps.DeletePortalSession(ctx, hash); err != nil {
		return storeErr(err, "portal session")
	}
	ev := s.event(PortalActor(sess.Grant, ip), tokend.ActionPortalLogout, sess.Grant.AppID, "", nil)
	return storeErr(s.store.AppendEvent(ctx, ev), "event")
}

// SweepPortal deletes expired links and ended sessions.
func (s *Service) SweepPortal(ctx context.Context) (int, error) {
	ps, err := s.portalStore()
	if err != nil {
		return 0, err
	}
	n, err := ps.DeleteExpiredPortal(ctx, s.Now(), tokend.PortalIdle)
	return n, storeErr(err, "portal session")
}

// portalPermissions are what a portal session may do to its customer's
// tokens, and so what the admin token that mints its link must hold.
var portalPermissions = []string{tokend.PermAppsRead, tokend.PermTokensRead, tokend.PermTokensWrite, tokend.PermTokensRotate, tokend.PermTokensDelete}

// minterLive answers nil while the admin token that minted a grant's link
// is still active and still holds portalPermissions, and otherwise
// errNoPortal, what an unknown session gets (an unknown link, once
// OpenPortalLink has said so): links
// and sessions live no longer than the authority that made them, so
// revoking a leaked backend token ends them too. One storage read a
// portal request; the page is not on verification's path.
func (s *Service) minterLive(ctx context.Context, g tokend.PortalGrant) error {
	id, ok := strings.CutPrefix(g.CreatedBy, "token:")
	if !ok {
		return nil // minted by tokend itself (system) or a dashboard user
	}
	t, err := s.store.Token(ctx, id)
	if errors.Is(err, tokend.ErrNotFound) {
		return errNoPortal
	}
	if err != nil {
		return storeErr(err, "portal session")
	}
	if t.StatusAt(s.Now()) != tokend.StatusActive {
		return errNoPortal
	}
	held := effective(t.Access, t.Permissions)
	for _, perm := range portalPermissions {
		if !slices.Contains(held, perm) {
			return errNoPortal
		}
	}
	return nil
}

// portalKind is the Actor.Kind of a customer on the portal.
const portalKind = "owner"

// PortalActor is the customer of a portal session as the actor of service
// calls: owner:<owner_id>, scoped to that owner in that one application,
// able to read the application and read, write, rotate and delete tokens, with the
// product's user in the details of every audit event.
func PortalActor(g tokend.PortalGrant, ip string) tokend.Actor {
	name := g.OwnerName
	if name == "" {
		name = g.OwnerID
	}
	return tokend.Actor{
		Kind: portalKind, ID: g.OwnerID, Name: name, IP: ip,
		Permissions: slices.Clone(portalPermissions),
		Scope:       &tokend.AdminScope{OwnerID: g.OwnerID, AppIDs: []string{g.AppID}},
		Details:     map[string]any{"user": "user:" + g.User.ID, "user_name": g.User.Name, "via": "portal"},
	}
}

// GrantAllows answers a problem when a portal session may not give a token
// this access and these permissions: the access must be one the link
// allows and, with custom access, every permission one it allows (the
// whole catalog when it names none; the service checks the catalog).
func GrantAllows(g tokend.PortalGrant, access tokend.Access, perms []string) error {
	var p tokend.Problems
	if !slices.Contains(g.AllowedAccess, access) {
		p.Add("access", "is not one this page offers")
	}
	if access == tokend.AccessCustom && len(g.AllowedPermissions) > 0 {
		for _, perm := range perms {
			if !slices.Contains(g.AllowedPermissions, perm) {
				p.Add("permissions", "%q is not one this page offers", clip(perm, 80))
			}
		}
	}
	return p.Err()
}

// accentRE is a colour the portal's stylesheet takes as is.
var accentRE = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// ValidAccent reports whether c is a #rrggbb colour.
func ValidAccent(c string) bool { return accentRE.MatchString(c) }

// checkAppPortal checks an application's portal settings and puts its
// frame ancestors in canonical form (origins once each); settings with
// nothing set become nil.
func checkAppPortal(p *tokend.Problems, a *tokend.App) {
	if a.Portal == nil {
		return
	}
	c := *a.Portal
	pt := &c
	a.Portal = pt
	if n := len([]rune(pt.ProductName)); n > tokend.MaxNameLen {
		p.Add("portal.product_name", "must be at most %d characters (it has %d)", tokend.MaxNameLen, n)
	} else {
		tokend.CheckText(p, "portal.product_name", pt.ProductName, tokend.LineText)
	}
	for field, u := range map[string]string{"portal.logo_url": pt.LogoURL, "portal.support_url": pt.SupportURL} {
		if u != "" && (len(u) > MaxReturnURLLen || tokend.TextProblem(u, tokend.LineText) != "" || !ValidHTTPSURL(u, false)) {
			p.Add(field, "must be an absolute https URL of at most %d characters", MaxReturnURLLen)
		}
	}
	if pt.AccentColor != "" && !accentRE.MatchString(pt.AccentColor) {
		p.Add("portal.accent_color", "must be a colour such as #2557d6")
	}
	if len(pt.FrameAncestors) > tokend.MaxFrameAncestors {
		p.Add("portal.frame_ancestors", "may name at most %d origins", tokend.MaxFrameAncestors)
		return
	}
	for i, o := range pt.FrameAncestors {
		if !ValidHTTPSURL(o, false) || URLOrigin(o) != o {
			p.Add("portal.frame_ancestors["+strconv.Itoa(i)+"]", "must be an https origin such as https://app.example.com (no path)")
		}
	}
	pt.FrameAncestors = dedupe(pt.FrameAncestors)
	if pt.ProductName == "" && pt.LogoURL == "" && pt.AccentColor == "" && pt.SupportURL == "" && len(pt.FrameAncestors) == 0 {
		a.Portal = nil
	}
}
