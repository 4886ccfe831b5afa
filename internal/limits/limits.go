// Package limits holds the peering bounds and defaults that config, the
// overlay node, the peer manager and the links must agree on. It is a leaf
// (standard library only) so that config can name them without importing
// the overlay runtime; each number has exactly one definition here.
package limits

import "time"

// MaxPeers is the most peerings a node can hold: Pinecone port numbers are
// a byte, port 0 is the router itself, and 254 and 255 are not used by
// stock nodes, leaving ports 1..253 (router.MaxPort is this value).
const MaxPeers = 253

// DefaultMaxPeers is max_peers when the configuration does not set it.
const DefaultMaxPeers = 64

// DefaultPeerTimeout is how long data we sent to a peer may stay
// unacknowledged before the kernel gives the TCP connection up
// (TCP_USER_TIMEOUT, RFC 5482), unless peers.peer_timeout says otherwise.
//
// 1.5 s is several retransmissions on any path with a round trip below
// ~300 ms (the minimum RTO is 200 ms). It is what lets a peering whose path
// died while traffic flowed end within the 2 s failover goal (issue 15),
// instead of after the 5 s read timeout; routing then moves the traffic to
// another path, which is what an overlay is for. The cost is a peering
// that flaps on a path with multi-second stalls (a congested uplink, a
// radio hop): there the operator raises peers.peer_timeout, trading that
// link's failover time for its stability.
const DefaultPeerTimeout = 1500 * time.Millisecond

// MinPeerTimeout and MaxPeerTimeout bound peers.peer_timeout. Below the
// kernel's minimum retransmission timeout (200 ms) a single lost segment
// would end a healthy peering; above two minutes the option no longer
// detects anything the 5 s read timeout does not detect sooner.
const (
	MinPeerTimeout = 200 * time.Millisecond
	MaxPeerTimeout = 2 * time.Minute
)
