package overlay

import (
	"time"

	"github.com/pineconed/pineconed/overlay/router"
	"github.com/pineconed/pineconed/overlay/wire"
)

// Self describes this node's place in the tree.
type Self struct {
	Key    wire.PublicKey
	Root   wire.Root
	Coords wire.Coordinates
	// Parent is the port of the tree parent, router.NoPort for the root.
	Parent    router.Port
	ParentKey wire.PublicKey
	Peers     int
}

// PeerStatus describes one attached peering. It is the one registry's
// record: everything the admin API shows of a peering comes from one
// PeerStatus, taken under one lock, so a port that is reused between two
// reads cannot mix two peerings.
type PeerStatus struct {
	Port  router.Port
	Info  PeerInfo
	Since time.Time
	// Link is the peering's link, for what only the link knows (its
	// transport's remote address, its own drop counters).
	Link Link
	// Router is what the routing state machine knows of the peer: its
	// announcement, coordinates and whether it is our parent.
	Router router.PeerView
	// In and Out count frames and bytes by frame type name.
	In, Out map[string]FrameCount
	// QueueDrops counts frames the link refused because its queue was full.
	QueueDrops uint64
	// Duplicate is true when another peering leads to the same key.
	Duplicate bool
}

// Snake describes the SNEK neighbourhood and routing table.
type Snake struct {
	Ascending     wire.PublicKey
	AscendingPort router.Port
	HasAscending  bool
	Descending    router.SNEKEntryView
	HasDescending bool
	Entries       []router.SNEKEntryView
}

// Stats are node-wide counters; counters only ever grow.
type Stats struct {
	// FramesIn and FramesOut count frames and bytes by frame type name, as
	// they crossed the node's links.
	FramesIn, FramesOut map[string]FrameCount
	// Drops merges the router's and the node's drop reasons.
	Drops       map[string]uint64
	RootChanges uint64
	// Depth is the length of our coordinates; IsRoot is true without a
	// parent.
	Depth       int
	IsRoot      bool
	SNEKEntries int
	Router      router.Stats
}

// Self returns this node's key, root, coordinates and parent.
func (n *Node) Self() Self {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := Self{Key: n.key, Root: n.router.Root(), Coords: n.router.Coords(), Parent: n.router.Parent()}
	if p := n.peerAt(s.Parent); p != nil && s.Parent != router.NoPort {
		s.ParentKey = p.info.Key
	}
	for i := range n.ports {
		if n.ports[i].Load() != nil {
			s.Peers++
		}
	}
	return s
}

// Peering is one attached peering as the registry holds it, without the
// counters and router view that Peers adds: what overlay/peers' policy
// reads (on every LAN beacon, so it is kept cheap).
type Peering struct {
	Port router.Port
	Info PeerInfo
	Link Link
}

// Peerings lists the attached peerings in port order.
func (n *Node) Peerings() []Peering {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []Peering
	for port := router.Port(1); port <= router.MaxPort; port++ {
		if p := n.ports[port].Load(); p != nil {
			out = append(out, Peering{Port: port, Info: p.info, Link: p.link})
		}
	}
	return out
}

// Peers lists the attached peerings in port order.
func (n *Node) Peers() []PeerStatus {
	// The router's views and the port table are read under one hold of
	// mu (Attach and Detach take it), so each entry is one peering.
	n.mu.Lock()
	defer n.mu.Unlock()
	views := n.router.Peers()
	byKey := map[wire.PublicKey]int{}
	out := make([]PeerStatus, 0, len(views))
	for _, v := range views {
		p := n.peerAt(v.Port)
		if p == nil {
			continue
		}
		byKey[p.info.Key]++
		out = append(out, PeerStatus{
			Port: v.Port, Info: p.info, Since: p.since, Link: p.link, Router: v,
			In: p.counters.in.load().since(p.base.in), Out: p.counters.out.load().since(p.base.out),
			QueueDrops: p.counters.queueDrops.Load() - p.base.queueDrops,
		})
	}
	for i := range out {
		out[i].Duplicate = byKey[out[i].Info.Key] > 1
	}
	return out
}

// Snake returns the SNEK neighbours and table as of now.
func (n *Node) Snake() Snake {
	now := n.now()
	n.mu.Lock()
	defer n.mu.Unlock()
	var s Snake
	s.Ascending, s.AscendingPort, s.HasAscending = n.router.Ascending(now)
	s.Descending, s.HasDescending = n.router.Descending(now)
	s.Entries = n.router.SNEKEntries(now)
	return s
}

// Stats returns the node-wide counters.
func (n *Node) Stats() Stats {
	n.mu.Lock()
	coords := n.router.Coords()
	isRoot := n.router.Parent() == router.NoPort
	entries := len(n.router.SNEKEntries(n.now()))
	rs := n.router.Stats()
	n.mu.Unlock()
	// The totals are summed from the ports, where each frame was counted.
	var in, out typeCounts
	var queueDrops uint64
	for i := range n.portStats {
		in.add(n.portStats[i].in.load())
		out.add(n.portStats[i].out.load())
		queueDrops += n.portStats[i].queueDrops.Load()
	}
	st := Stats{
		FramesIn: in.since(typeCounts{}), FramesOut: out.since(typeCounts{}),
		Drops: map[string]uint64{}, RootChanges: n.stats.rootChanges.Load(),
		Depth: len(coords), IsRoot: isRoot, SNEKEntries: entries,
		Router: rs,
	}
	for k, v := range rs.Drops {
		st.Drops[k] += v
	}
	// Every reason, zeros too (see router.Stats.Drops).
	for i, name := range nodeDropNames {
		st.Drops[name] += n.stats.drops[i].Load()
	}
	// A refused Send is counted once, on its port.
	st.Drops[nodeDropNames[dropLinkQueueFull]] += queueDrops
	return st
}
