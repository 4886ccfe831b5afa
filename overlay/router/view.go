package router

import (
	"sort"
	"time"

	"github.com/pineconed/pineconed/overlay/wire"
)

// Read-only views for the admin API and tests. Each returns fresh copies
// that the caller may keep.

// Root is the root of the tree this node is in (itself when it has no
// parent).
func (r *Router) Root() wire.Root { return r.currentRoot() }

// Coords returns this node's coordinates.
func (r *Router) Coords() wire.Coordinates { return append(wire.Coordinates{}, r.coords()...) }

// Parent is the port of the tree parent, NoPort when this node is root.
func (r *Router) Parent() Port { return r.parent }

// PeerView describes one peering.
type PeerView struct {
	Port Port
	Key  wire.PublicKey
	Type PeerType
	// HasAnnouncement is false until the peer's first tree announcement;
	// the fields below are zero until then.
	HasAnnouncement bool
	// Root is the root of the peer's last announcement.
	Root wire.Root
	// Coords are the peer's coordinates in that announcement's tree.
	Coords wire.Coordinates
	// Ancestry are the announcement's signers, root first: for our parent,
	// our own ancestors.
	Ancestry   []wire.PublicKey
	ReceivedAt time.Time
	IsParent   bool
}

// Peers lists the peerings in port order.
func (r *Router) Peers() []PeerView {
	out := make([]PeerView, 0, r.npeers)
	for _, p := range r.peers {
		if p == nil {
			continue
		}
		v := PeerView{Port: p.port, Key: p.key, Type: p.typ, IsParent: p.port == r.parent}
		if p.ann != nil {
			v.HasAnnouncement = true
			v.Root = p.ann.root
			v.Coords = append(wire.Coordinates{}, p.ann.coords...)
			v.Ancestry = append([]wire.PublicKey{}, p.ann.keys...)
			v.ReceivedAt = p.ann.received
		}
		out = append(out, v)
	}
	return out
}

// SNEKEntryView describes one SNEK route.
type SNEKEntryView struct {
	// Originator is the node the route leads back to.
	Originator wire.PublicKey
	// Source is the port towards the originator; Destination is where its
	// bootstrap went on (NoPort or LocalPort if it ended here).
	Source, Destination Port
	// Root is the root the bootstrap was sent under.
	Root      wire.Root
	Watermark wire.Watermark
	LastSeen  time.Time
	Expires   time.Time
}

func (e *snekEntry) view() SNEKEntryView {
	return SNEKEntryView{Originator: e.origin, Source: e.source, Destination: e.dest, Root: e.root,
		Watermark: e.watermark(), LastSeen: e.lastSeen, Expires: e.lastSeen.Add(SNEKExpiry)}
}

// SNEKEntries lists the SNEK routes valid at now, by originator key.
func (r *Router) SNEKEntries(now time.Time) []SNEKEntryView {
	out := make([]SNEKEntryView, 0, len(r.table))
	for _, e := range r.table {
		if e.valid(now) {
			out = append(out, e.view())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Originator.Less(out[j].Originator) })
	return out
}

// Descending is the route to our nearest lower-keyed neighbour (§5.5), if
// one is known and valid at now.
func (r *Router) Descending(now time.Time) (SNEKEntryView, bool) {
	if !r.hasDescending {
		return SNEKEntryView{}, false
	}
	e := r.table[r.descending]
	if e == nil || !e.valid(now) {
		return SNEKEntryView{}, false
	}
	return e.view(), true
}

// Ascending is the key our bootstraps currently head for, our successor as
// far as this node knows, and the port they leave on. It is false for the
// root and when no peer leads anywhere.
func (r *Router) Ascending(now time.Time) (wire.PublicKey, Port, bool) {
	if r.parent == NoPort {
		return wire.PublicKey{}, NoPort, false
	}
	next, wm := r.bootstrapNextHop(now, r.key, wire.StartWatermark)
	if next == NoPort || next == LocalPort {
		return wire.PublicKey{}, NoPort, false
	}
	return wm.Key, next, true
}

// BootstrapInterval is the time between this node's bootstraps at now:
// FastBootstrapInterval within the fast window after a change of its
// parent, root or descending neighbour, else BootstrapInterval. The
// routing simulator waits for every node's to be back at
// BootstrapInterval before it measures the steady state.
func (r *Router) BootstrapInterval(now time.Time) time.Duration { return r.bootstrapInterval(now) }
