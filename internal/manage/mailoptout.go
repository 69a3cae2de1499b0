package manage

import (
	"context"
	"errors"
	"slices"
	"strconv"

	"github.com/tokend/tokend"
)

// SetMailOptOut sets the mailed event types (tokend.MailedEventTypes) the
// user does not want mailed; an empty list mails them all. Users set only
// their own (no permission is needed for that, and none allows changing
// another's); the change is audited as user.update. Types are kept once
// each, in the order of MailedEventTypes.
func (s *Service) SetMailOptOut(ctx context.Context, a tokend.Actor, userID string, types []string) (tokend.User, error) {
	if err := refuseScoped(a, "manage users"); err != nil {
		return tokend.User{}, err
	}
	if err := checkID(userID, "user"); err != nil {
		return tokend.User{}, err
	}
	if !isSelf(a, userID) {
		return tokend.User{}, tokend.Errorf(tokend.ECodeForbidden, "users choose which mails they receive only for themselves")
	}
	var p tokend.Problems
	for i, t := range types {
		if !slices.Contains(tokend.MailedEventTypes, t) {
			p.Add("mail_optout["+strconv.Itoa(i)+"]", "is not a mailed event type (one of %v)", tokend.MailedEventTypes)
		}
	}
	if err := p.Err(); err != nil {
		return tokend.User{}, err
	}
	var optout []string
	for _, t := range tokend.MailedEventTypes {
		if slices.Contains(types, t) {
			optout = append(optout, t)
		}
	}
	st, err := s.userStore()
	if err != nil {
		return tokend.User{}, err
	}
	now := s.Now()
	u, err := st.UpdateUser(ctx, userID, func(u *tokend.User, _ []tokend.User) (tokend.Event, error) {
		if slices.Equal(u.MailOptOut, optout) {
			return tokend.Event{}, errNothing
		}
		d := map[string]any{"user_id": u.ID, "email": u.Email}
		change(d, "mail_optout", orEmpty(u.MailOptOut), orEmpty(optout))
		u.MailOptOut = optout
		u.UpdatedAt = now
		return s.event(a, tokend.ActionUserUpdate, "", "", d), nil
	})
	if errors.Is(err, errNothing) {
		return s.User(ctx, a, userID)
	}
	if err != nil {
		return tokend.User{}, storeErr(err, "user")
	}
	return presentUser(u), nil
}
