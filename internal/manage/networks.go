package manage

import (
	"context"

	"github.com/tokend/tokend"
)

// TokenWithNetworks is Token with the networks the token was recently used
// from (Token.Networks, most recently seen first): the answer of
// GET /v1/tokens/{id} and the dashboard's token page, never of a list.
func (s *Service) TokenWithNetworks(ctx context.Context, a tokend.Actor, id string) (tokend.Token, error) {
	t, err := s.Token(ctx, a, id)
	if err != nil {
		return tokend.Token{}, err
	}
	nets, err := s.store.TokenNetworks(ctx, t.ID)
	if err != nil {
		return tokend.Token{}, storeErr(err, "token")
	}
	t.Networks = nets
	return t, nil
}

// NewNetworkEvent is the token.new_network event of n (the verification
// engine's Options.NetworkEvent, called by the store in its flush's
// transaction): its data is the token as GET /v1/tokens/{id} shows it at the
// use, with the network, the address and the previous networks.
func NewNetworkEvent(n tokend.NewNetwork) tokend.Event {
	data, _ := publicData(presentAt(n.Token, n.Use.First)) // an error answers the least
	return n.Event(data)
}
