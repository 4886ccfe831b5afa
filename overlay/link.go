package overlay

import (
	"github.com/pineconed/pineconed/internal/enum"
	"github.com/pineconed/pineconed/overlay/router"
	"github.com/pineconed/pineconed/overlay/wire"
)

// Link is one authenticated peering as the node sees it: a place to queue
// encoded frames and a way to end the peering. overlay/link implements it over
// TCP and WebSocket streams; tests use in-memory links.
type Link interface {
	// Send queues one whole encoded frame; the link owns frame afterwards
	// and gives it to internal/bufpool's Put once written or dropped
	// (Put keeps only pool-sized buffers, such as the node's Traffic
	// frames).
	// Protocol frames (every type but Traffic) go on a queue the writer
	// drains before traffic. Send never blocks: false means the frame was
	// dropped because its queue was full, and the link counts the drop.
	Send(frame []byte, protocol bool) bool
	// Close ends the peering; reason is logged. It is safe to call more than
	// once and from any goroutine. Close does not call back into the node
	// and does not wait for the link to wind down, so the node may call it
	// with its own lock held (it does on a protocol error). The link
	// reports its end later, from its own goroutine, with exactly one
	// Node.Detach for its port.
	Close(reason error)
}

// PeerInfo describes a peering when it is attached to the node.
type PeerInfo struct {
	// Key is the remote key proven by the handshake.
	Key wire.PublicKey
	// URI is the static peer URI as configured, or for inbound and
	// discovered peers the remote address as a URI ("tcp://[fe80::1%eth0]:1234").
	URI string
	// Transport is "tcp", "ws" or "wss".
	Transport string
	// Origin says what made the peering.
	Origin Origin
	// Interface is the network interface a LAN discovery peering runs
	// over; "" for the other origins, whose packets follow the routing
	// table.
	Interface string
	// Ifindex is the index of the interface the peering's packets leave
	// by, 0 when it cannot be told; the peering is dropped at once when
	// that interface goes down.
	Ifindex int
	// Inbound is true when the remote side dialled us.
	Inbound bool
	// Type is the peer type the router uses to prefer one of two links to
	// the same key.
	Type router.PeerType
}

// Origin is what made a peering: the operator's configuration, a listener,
// LAN discovery, the admin API or a peer card. It decides which policy
// applies (allowed_keys filters only peerings the operator did not choose)
// and is shown by the admin API.
type Origin uint8

// The origins. A new one needs its name in originNames.
const (
	// OriginStatic: dialled for a [peers] static entry.
	OriginStatic Origin = iota
	// OriginListener: accepted on a [peers] listen listener.
	OriginListener
	// OriginLAN: made by LAN discovery, in either direction.
	OriginLAN
	// OriginAdmin: dialled for a peer added with the admin API
	// (pineconectl peer add).
	OriginAdmin
	// OriginCard: dialled for an imported peer card.
	OriginCard
	numOrigins
)

// originNames are the origins' names in logs, metrics and the admin API.
var originNames = [numOrigins]string{"static", "listener", "lan", "admin", "card"}

// String returns the origin's name, "unknown" for a value outside the
// table (so a bad value can be logged, never panic).
func (o Origin) String() string {
	return enum.NameOr(originNames[:], o, "unknown")
}

// MarshalText writes the origin's name, so that a log line or JSON carries
// "lan", not a number.
func (o Origin) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// Chosen reports whether the operator named this peer (a static entry, an
// admin command or a card): such peerings are ours by choice and are not
// filtered by allowed_keys.
func (o Origin) Chosen() bool {
	return o == OriginStatic || o == OriginAdmin || o == OriginCard
}
