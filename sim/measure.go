package sim

import (
	"slices"

	"github.com/pineconed/pineconed/overlay/wire"
)

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

// BootstrapHops counts bootstrap frames by the way each went relative to
// the spanning tree: to the sender's parent (Up), to one of its children
// (Down) or across, to a peer that is neither. Originated counts the
// bootstraps their originators sent; every other bootstrap frame is a
// relayed one or a handoff copy. Frames sent over Originated is what one
// bootstrap costs, the figure a settled node pays once per interval.
type BootstrapHops struct {
	Up, Down, Across, Originated uint64
}

// Frames is the number of bootstrap frames counted.
func (h BootstrapHops) Frames() uint64 { return h.Up + h.Down + h.Across }

// Since is what was counted after the counts in before.
func (h BootstrapHops) Since(before BootstrapHops) BootstrapHops {
	return BootstrapHops{Up: h.Up - before.Up, Down: h.Down - before.Down,
		Across: h.Across - before.Across, Originated: h.Originated - before.Originated}
}

// count records a bootstrap frame that from puts on l.
func (h *BootstrapHops) count(from *Node, l *Link, frame []byte) {
	to, toPort := l.Far(from)
	_, fromPort := l.Far(to)
	switch {
	case fromPort == from.Router.Parent():
		h.Up++
	case toPort == to.Router.Parent():
		h.Down++
	default:
		h.Across++
	}
	// The Router's frames are well formed; one that is not is a bug that
	// the receiver's decode reports (Stats.DecodeErrors).
	if k, ok := wire.BootstrapOriginator(frame); ok && k == from.Key {
		h.Originated++
	}
}

// BootstrapPath is how long the bootstraps of a window were and which way
// they went: Hops is the bootstrap frames sent per bootstrap originated,
// Up, Down and Across are the shares of those frames by BootstrapHops'
// classes, and SuccessorShortest is the mean shortest path, over sampled
// nodes, from a node to its successor (the next higher key in the
// network), the path an ideal bootstrap would take.
type BootstrapPath struct {
	Hops              float64 `json:"hops"`
	Up                float64 `json:"up"`
	Down              float64 `json:"down"`
	Across            float64 `json:"across"`
	SuccessorShortest float64 `json:"successor_shortest"`
	SuccessorSamples  int     `json:"successor_samples"`
}

// bootstrapPath fills a BootstrapPath from a window's counts and the
// shortest paths of at most samples nodes of component, spread evenly over
// its key order, to their successors. The root, whose key is the highest,
// has none and sends no bootstrap.
func (n *Network) bootstrapPath(h BootstrapHops, component []*Node, samples int) BootstrapPath {
	var p BootstrapPath
	if f := float64(h.Frames()); f > 0 {
		p.Up, p.Down, p.Across = float64(h.Up)/f, float64(h.Down)/f, float64(h.Across)/f
		if h.Originated > 0 {
			p.Hops = f / float64(h.Originated)
		}
	}
	byKey := slices.Clone(component)
	byKey = slices.DeleteFunc(byKey, func(x *Node) bool { return x.removed })
	slices.SortFunc(byKey, func(a, b *Node) int { return a.Key.Compare(b.Key) })
	if len(byKey) < 2 || samples <= 0 {
		return p
	}
	step := max(1, (len(byKey)-1)/samples)
	var sum int
	for i := 0; i+1 < len(byKey) && p.SuccessorSamples < samples; i += step {
		if d := n.Distances(byKey[i])[byKey[i+1].ID]; d > 0 {
			sum += d
			p.SuccessorSamples++
		}
	}
	if p.SuccessorSamples > 0 {
		p.SuccessorShortest = float64(sum) / float64(p.SuccessorSamples)
	}
	return p
}
