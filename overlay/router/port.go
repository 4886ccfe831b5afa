package router

import "fmt"

// Port is a local switch port. Port 0 is the local router (the application);
// ports 1..MaxPort are peerings. A port number is local to one node but goes
// on the wire inside the tree announcements it signs, so it becomes part of
// other nodes' coordinates.
type Port uint8

const (
	// LocalPort is the node itself: frames routed to it are delivered.
	LocalPort Port = 0
	// MaxPort is the highest peering port, as in the reference (253 peers).
	MaxPort Port = 253
)

func (p Port) String() string { return fmt.Sprintf("port %d", uint8(p)) }

// Number is the port as the admin API and the logs show a peering's port:
// 1 to MaxPort for a peering, 0 for none (NoPort, as the parent of a root
// node, and LocalPort). One vocabulary everywhere, so that a log line and
// getSelf never disagree about the same parent.
func (p Port) Number() uint64 {
	if p == NoPort || p == LocalPort {
		return 0
	}
	return uint64(p)
}

// PeerType is local metadata about how a peering was made. Lower values are
// preferred when two links lead to the same key. It never goes on the wire.
type PeerType uint8

// Peer types, with the reference's numbering.
const (
	PeerPipe      PeerType = 0
	PeerMulticast PeerType = 1
	PeerBonjour   PeerType = 2
	PeerRemote    PeerType = 3
	PeerBluetooth PeerType = 4
)
