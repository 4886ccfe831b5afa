package sim

import "github.com/pineconed/pineconed/overlay/wire"

// SentCount counts the frames of one type a node put on its links and
// their bytes (whole frames, header included, as on the wire; the link
// adds nothing but TCP/WebSocket framing).
type SentCount struct {
	Frames, Bytes uint64
}

// numSentTypes is the frame types 0–4 and one bucket for anything else.
const numSentTypes = int(wire.TypeWakeupBroadcast) + 2

func sentIndex(t wire.FrameType) int {
	if int(t) < numSentTypes-1 {
		return int(t)
	}
	return numSentTypes - 1
}

// Sent returns what the node has put on its links so far, frames of type
// t that it originated or forwarded. Keepalives are the link's job, not the
// Router's (docs/protocol.md §1.4), so a simulated node never sends any; the daemon
// adds one per idle link and keepalive interval.
func (n *Node) Sent(t wire.FrameType) SentCount { return n.sent[sentIndex(t)] }

// ControlTypes are the frame types of the routing protocol's own traffic.
var ControlTypes = []wire.FrameType{wire.TypeTreeAnnouncement, wire.TypeBootstrap, wire.TypeWakeupBroadcast}

// Distances returns the hop count of the shortest path from one node to
// every node over the links that are up (breadth-first search), by node
// ID; -1 where there is no path.
func (n *Network) Distances(from *Node) []int {
	dist := make([]int, len(n.nodes))
	for i := range dist {
		dist[i] = -1
	}
	if from.removed {
		return dist
	}
	dist[from.ID] = 0
	queue := []*Node{from}
	for i := 0; i < len(queue); i++ {
		cur := queue[i]
		for _, l := range cur.ends {
			if l == nil {
				continue
			}
			if far, _ := l.Far(cur); dist[far.ID] < 0 {
				dist[far.ID] = dist[cur.ID] + 1
				queue = append(queue, far)
			}
		}
	}
	return dist
}

// SNEKEntryBytes is the state one SNEK route holds, by the protocol's
// fields (docs/protocol.md §5.2): the originator key (32 bytes), source and destination
// ports (1 each), last-seen time (8), the root key and sequence (32 + 8)
// and the bootstrap sequence (8). In-memory overhead (map slots, pointers)
// is implementation detail and comes on top.
const SNEKEntryBytes = 32 + 1 + 1 + 8 + 32 + 8 + 8
