package router

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pineconed/pineconed/overlay/wire"
)

// The literal SNEK search (nextHopSNEK) walks every peer's ancestry and
// every route for each frame: O(Σ ancestry + routes), tens of microseconds
// at a well-connected node. Each of its steps keeps a candidate only if it
// is strictly closer above the destination (or the destination itself), so
// each step's outcome is "the first candidate, in the order the step walks
// them, with the smallest key at or above the destination". Sorting the
// candidates by key once per snapshot turns each step into a binary search.
// The order of the walk survives as the port recorded for each key.

// ancestor is a key found in some peer's ancestry and the port the literal
// walk takes for it: the parent if the key is in the parent's ancestry
// (walked first), else the lowest such port.
type ancestor struct {
	key  wire.PublicKey
	port Port
}

// peerIndex is a snapshot's index of its peers for the SNEK searches.
//
// It is built on the first search, not with the snapshot, because most
// peer snapshots are never searched: every announcement makes a new one,
// and at a cold start or after a hub's loss a well-connected node takes
// hundreds of announcements in a row, each replacing the last snapshot
// before any frame is routed with it. Building the index with every
// snapshot was a quarter of the skitter simulation's CPU time. Snapshots
// that differ only in their routes share one peerIndex.
type peerIndex struct {
	once sync.Once
	// ancestors are the keys of all peers' ancestries, sorted, each with
	// the port the literal walk takes for it.
	ancestors []ancestor
	// byKey are the peers with announcements, sorted by key, then port.
	byKey []*peerInfo
}

// searchIndex returns the snapshot's peer index, building it if no search has
// yet. It is safe for concurrent use.
func (s *Snapshot) searchIndex() *peerIndex {
	x := s.peerIdx
	x.once.Do(func() { x.build(s) })
	return x
}

// build fills x from s's peers and parent.
func (x *peerIndex) build(s *Snapshot) {
	n := 0
	for _, q := range s.peers {
		if q.ann != nil {
			n += len(q.ann.keys)
		}
	}
	// Most of the entries are the same few keys: every peer's ancestry
	// starts at the same root. The walk takes the first peer with a key in
	// its ancestry, the parent first and then by port, so keep only that
	// one of each key, in walk order (s.peers is in port order), and sort
	// what is left, which has no equal keys. A sort of every entry with
	// the walk's order as its tie-break gives the same index, but on hubs
	// with hundreds of peers it was most of a snapshot's rebuild.
	all := make([]ancestor, 0, n)
	seen := make(map[wire.PublicKey]struct{}, n)
	add := func(q *peerInfo) {
		for _, k := range q.ann.keys {
			if _, dup := seen[k]; !dup {
				seen[k] = struct{}{}
				all = append(all, ancestor{k, q.port})
			}
		}
	}
	if p := s.peer(s.parent); p != nil && p.ann != nil {
		add(p)
	}
	for _, q := range s.peers {
		if q.ann != nil && q.port != s.parent {
			add(q)
		}
	}
	slices.SortFunc(all, func(a, b ancestor) int { return a.key.Compare(b.key) })
	x.ancestors = all
	x.byKey = make([]*peerInfo, 0, len(s.peers))
	for _, q := range s.peers {
		if q.ann != nil {
			x.byKey = append(x.byKey, q)
		}
	}
	// Ports are unique, so this order is total.
	slices.SortFunc(x.byKey, func(a, b *peerInfo) int {
		if c := a.key.Compare(b.key); c != 0 {
			return c
		}
		return int(a.port) - int(b.port)
	})
}

// peersWithKey returns the peers with announcements whose key is k, in
// port order.
func (s *Snapshot) peersWithKey(k wire.PublicKey) []*peerInfo {
	byKey := s.searchIndex().byKey
	i, _ := slices.BinarySearchFunc(byKey, k, func(q *peerInfo, k wire.PublicKey) int { return q.key.Compare(k) })
	j := i
	for j < len(byKey) && byKey[j].key == k {
		j++
	}
	return byKey[i:j]
}

// nextHopTraffic is nextHopSNEK for traffic (not bootstrap mode), step by
// step on the sorted indexes.
func (s *Snapshot) nextHopTraffic(now time.Time, dest wire.PublicKey, w wire.Watermark) (Port, wire.Watermark) {
	if dest == s.key {
		return LocalPort, w
	}
	b := snekSearch{dest: dest, bestKey: s.key, bestPeer: LocalPort}
	// Climb towards the root.
	if p := s.peer(s.parent); p != nil && p.ann != nil && wire.DHTOrdered(b.bestKey, dest, s.root.Key) {
		b.take(s.root.Key, 0, s.parent)
	}
	// Ancestries: the destination itself, or else the smallest key above
	// it, if that is below the best so far.
	ancestors := s.searchIndex().ancestors
	i, _ := slices.BinarySearchFunc(ancestors, dest, func(a ancestor, k wire.PublicKey) int { return a.key.Compare(k) })
	if i < len(ancestors) {
		a := ancestors[i]
		if a.key == dest || a.key.Less(b.bestKey) {
			b.take(a.key, 0, a.port)
		}
	}
	// The direct link: the last peer, in port order, with the best key.
	if qs := s.peersWithKey(b.bestKey); len(qs) > 0 {
		b.take(b.bestKey, 0, qs[len(qs)-1].port)
	}
	// Routes: the first usable one at or above the destination decides.
	if b.bestKey != dest {
		j, _ := slices.BinarySearchFunc(s.entries, dest, compareOrigin)
		for ; j < len(s.entries); j++ {
			e := s.entries[j]
			if !e.origin.Less(b.bestKey) && e.origin != dest {
				break
			}
			if v, ok := usableRoute(&e.ver, e.origin, now, w); ok {
				b.take(e.origin, v.seq, e.source)
				break
			}
		}
	}
	return s.preferLink(&b)
}

// nextHopBootstrap is nextHopSNEK in bootstrap mode, step by step on the
// peer indexes and on routes, the Router's SNEK routes sorted by origin
// (Router.routes, which may be newer than the snapshot's entries). In
// bootstrap mode every step takes only keys strictly between the
// destination and the best so far, so each step's outcome is its smallest
// usable key above the destination.
func (s *Snapshot) nextHopBootstrap(now time.Time, dest wire.PublicKey, w wire.Watermark, routes []*snekEntry) (Port, wire.Watermark) {
	b := snekSearch{dest: dest, bootstrap: true, bestKey: s.key, bestPeer: NoPort}
	// Climb towards the root when nothing below it can be closer.
	if p := s.peer(s.parent); p != nil && p.ann != nil && (b.bestKey == dest || wire.DHTOrdered(b.bestKey, dest, s.root.Key)) {
		b.take(s.root.Key, 0, s.parent)
	}
	// Ancestries: the smallest key above the destination, if that is
	// below the best so far.
	ancestors := s.searchIndex().ancestors
	i, found := slices.BinarySearchFunc(ancestors, dest, func(a ancestor, k wire.PublicKey) int { return a.key.Compare(k) })
	if found {
		i++
	}
	if i < len(ancestors) && ancestors[i].key.Less(b.bestKey) {
		b.take(ancestors[i].key, 0, ancestors[i].port)
	}
	// The direct link: the last peer, in port order, with the best key.
	if qs := s.peersWithKey(b.bestKey); len(qs) > 0 {
		b.take(b.bestKey, 0, qs[len(qs)-1].port)
	}
	// Routes: the first usable one above the destination and below the
	// best so far.
	j, found := slices.BinarySearchFunc(routes, dest, compareOrigin)
	if found {
		j++
	}
	for ; j < len(routes) && routes[j].origin.Less(b.bestKey); j++ {
		e := routes[j]
		if v, ok := usableRoute(&e.ver, e.origin, now, w); ok {
			b.take(e.origin, v.seq, e.source)
			break
		}
	}
	return s.preferLink(&b)
}

// usableRoute is a SNEK route's current version, and whether the route
// may carry a frame with watermark w at now: not expired, and its own
// watermark no worse than the frame's (docs/protocol.md §6.3).
func usableRoute(ver *atomic.Pointer[routeVersion], origin wire.PublicKey, now time.Time, w wire.Watermark) (*routeVersion, bool) {
	v := ver.Load()
	if !now.Before(v.expires) || (wire.Watermark{Key: origin, Seq: v.seq}).WorseThan(w) {
		return nil, false
	}
	return v, true
}

// preferLink ends the indexed searches: of several links to the best key,
// it takes the better link type, then the announcement that arrived first.
func (s *Snapshot) preferLink(b *snekSearch) (Port, wire.Watermark) {
	if bp := s.peer(b.bestPeer); bp != nil && bp.ann != nil {
		for _, q := range s.peersWithKey(b.bestKey) {
			if q.typ < bp.typ || (q.typ == bp.typ && q.ann.root == bp.ann.root && q.ann.order < bp.ann.order) {
				b.take(b.bestKey, b.bestSeq, q.port)
				bp = q
			}
		}
	}
	return b.bestPeer, wire.Watermark{Key: b.bestKey, Seq: b.bestSeq}
}
