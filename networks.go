package tokend

import "time"

// The networks a token is used from (issue 15, "first use from a new
// network"): the verification engine notes the network (NetworkOf) of each
// valid use in memory and hands the store a batch of NetworkUse at each
// usage flush; the store decides, in the flush's transaction, which are new
// (see Store.RecordNetworks) and raises token.new_network for them.

// ActionTokenNewNetwork is the audit action of token.new_network: a valid
// use of a token from a network it was not used from within
// NewNetworkWindow.
const ActionTokenNewNetwork = "token.new_network"

// NetworkUse is what a batch knows of a token's valid uses from one
// network: when the first and the last of them happened, and the address of
// the first.
type NetworkUse struct {
	TokenID string
	// Network is NetworkOf's prefix of the address, in CIDR form
	// ("203.0.113.0/24").
	Network string
	// IP is the address of the first use, as storage keeps addresses
	// (parsed, without a zone); "" when there is none to keep.
	IP          string
	First, Last time.Time
}

// NewNetwork is a token's first use from a network within
// NewNetworkWindow, as the store found it: the token as stored, the use,
// and the networks on record before it, most recently seen first.
type NewNetwork struct {
	Token    Token
	Use      NetworkUse
	Previous []TokenNetwork
}

// Event is the audit event of n, raising token.new_network with data: the
// token's public fields (tokenData, as the API shows them), the network,
// the address and the previous networks. It never holds a secret: neither
// tokenData nor anything here has one.
func (n NewNetwork) Event(tokenData map[string]any) Event {
	data := make(map[string]any, len(tokenData)+3)
	for k, v := range tokenData {
		data[k] = v
	}
	previous := make([]any, 0, len(n.Previous))
	names := make([]any, 0, len(n.Previous))
	for _, p := range n.Previous {
		previous = append(previous, map[string]any{
			"network":    p.Network,
			"first_seen": p.FirstSeen.UTC().Format(time.RFC3339Nano),
			"last_seen":  p.LastSeen.UTC().Format(time.RFC3339Nano),
		})
		names = append(names, p.Network)
	}
	data["network"] = n.Use.Network
	if n.Use.IP != "" {
		data["ip"] = n.Use.IP
	}
	data["previous_networks"] = previous
	return Event{
		Time:      n.Use.First,
		Actor:     "system",
		ActorName: "tokend verification",
		IP:        n.Use.IP,
		Action:    ActionTokenNewNetwork,
		AppID:     n.Token.AppID,
		TokenID:   n.Token.ID,
		Details:   map[string]any{"network": n.Use.Network, "previous_networks": names},
		Notices:   []Notice{{Type: EventTokenNewNetwork, Data: data}},
	}
}
