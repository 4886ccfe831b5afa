package router

import (
	"slices"
	"time"

	"github.com/pineconed/pineconed/overlay/wire"
)

// Snapshot is an immutable copy of the routing state that forwarding needs:
// our key, root and coordinates, the peers with their announcements, and
// the SNEK routes. The node forwards Traffic from many goroutines with it
// while control frames change the Router under a mutex; the Router hands
// out a new Snapshot after a change (Router.Publish, at a bounded rate for
// SNEK route changes), never per Traffic frame.
//
// A Snapshot shares its CoordCache and counters with its Router; both are
// safe for concurrent use. Everything else in it is read-only.
type Snapshot struct {
	key         wire.PublicKey
	root        wire.Root
	coords      wire.Coordinates
	parent      Port
	hopLimiting bool
	// peers are the connected peers in ascending port order, which is the
	// order every search below walks them in (the reference walks its port
	// array the same way).
	peers []*peerInfo
	// index maps a port to 1 + its position in peers; 0 means no peer.
	index [MaxPort + 1]uint8
	// peerIdx indexes the peers' ancestries and keys for the SNEK
	// searches (snekindex.go). It is built by the first search that needs
	// it, not with the snapshot.
	peerIdx *peerIndex
	// entries are the SNEK routes, sorted by originator key: a copy of
	// Router.routes. They are the Router's own entries; a snapshot reads
	// only their origin and source, which never change, and their
	// version, which a refresh replaces atomically (see snekEntry.ver).
	entries []*snekEntry
	cache   *CoordCache
	stats   *counters
}

// Snapshot returns the routing snapshot for the current state. It is built
// again only after the state changed, so the node can publish it after
// every control call and compare pointers to see whether anything did.
// When only SNEK routes changed (every bootstrap changes one), the peer
// part and its search index are shared with the previous snapshot; when
// only the peers or the tree did, the sorted routes are. Snapshot always
// reflects the latest state; the data plane uses Publish, which bounds
// how often route changes alone cost a rebuild.
func (r *Router) Snapshot() *Snapshot {
	if r.snap != nil && !r.dirty && !r.tableDirty {
		return r.snap
	}
	s := &Snapshot{cache: r.cache, stats: r.stats, hopLimiting: r.opts.HopLimiting}
	if prev := r.snap; prev != nil && !r.dirty {
		s.key, s.root, s.coords, s.parent = prev.key, prev.root, prev.coords, prev.parent
		s.peers, s.index, s.peerIdx = prev.peers, prev.index, prev.peerIdx
	} else {
		s.key, s.root, s.coords, s.parent = r.key, r.currentRoot(), r.coords(), r.parent
		s.peers = make([]*peerInfo, 0, r.npeers)
		for port := Port(1); port <= MaxPort; port++ {
			if p := r.peers[port]; p != nil {
				s.peers = append(s.peers, p)
				s.index[port] = uint8(len(s.peers))
			}
		}
		s.peerIdx = new(peerIndex)
	}
	if prev := r.snap; prev != nil && !r.tableDirty {
		// Only the tree or the peers changed: the sorted routes are the
		// same, and copying and sorting them again is the expensive part.
		s.entries = prev.entries
	} else {
		// Routes whose source peer is gone were deleted with the peer, so
		// every entry here has a live source port. Copying the pointers
		// and not the entries' fields makes this an eighth of the copy.
		s.entries = slices.Clone(r.routes)
	}
	r.snap, r.dirty, r.tableDirty = s, false, false
	return s
}

// Publish returns the snapshot the data plane should forward with at now;
// call it after every call into the Router, with the same now, and publish
// the result (the node swaps an atomic pointer). The cost it bounds is the
// copy of the SNEK table's route pointers that a new snapshot makes:
//
//   - A bootstrap that only refreshes a route (most relayed bootstraps)
//     costs no snapshot: the published one reads the route's new version
//     in place (snekEntry.ver).
//   - A change of the peers or the tree is published at once.
//   - Other route changes (a new originator, a route through another
//     port, expiry) are published at once while the rebuild budget lasts:
//     SnapshotBurst rebuilds, refilled at one per Options.SnapshotInterval.
//     Beyond it, as under a flood of bootstraps from new keys, Publish
//     returns the previous snapshot, a complete and consistent older
//     state, and NextTick falls due when the budget allows the rebuild,
//     so the change is published even if no other call comes.
//
// Rebuilds thus follow changes of the network, at a bounded rate, not the
// number of control frames.
func (r *Router) Publish(now time.Time) *Snapshot {
	if r.snap == nil || r.dirty || !r.tableDirty || r.opts.SnapshotInterval < 0 {
		return r.Snapshot()
	}
	r.refillPublish(now)
	if r.pubCredit < r.opts.SnapshotInterval {
		return r.snap
	}
	r.pubCredit -= r.opts.SnapshotInterval
	return r.Snapshot()
}

// refillPublish adds the rebuild budget earned since the last call. The
// budget is kept as time (one rebuild costs SnapshotInterval), in integer
// nanoseconds, so that the moment publishDue names is exactly the moment
// the budget allows the rebuild: a fractional budget could fall short by
// rounding and make a tick at that moment find nothing to do, again.
func (r *Router) refillPublish(now time.Time) {
	limit := SnapshotBurst * r.opts.SnapshotInterval
	if r.pubAt.IsZero() {
		r.pubCredit = limit
	} else if d := now.Sub(r.pubAt); d > 0 {
		r.pubCredit = min(limit, r.pubCredit+d)
	}
	r.pubAt = now
}

// publishDue is when Publish will rebuild for route changes that it held
// back; false when none are pending.
func (r *Router) publishDue() (time.Time, bool) {
	if r.snap == nil || r.dirty || !r.tableDirty || r.opts.SnapshotInterval < 0 || r.pubCredit >= r.opts.SnapshotInterval {
		return time.Time{}, false
	}
	return r.pubAt.Add(r.opts.SnapshotInterval - r.pubCredit), true
}

// peer returns the peer on port, or nil.
func (s *Snapshot) peer(port Port) *peerInfo {
	if port > MaxPort || s.index[port] == 0 {
		return nil
	}
	return s.peers[s.index[port]-1]
}

// PublicKey is the node's key.
func (s *Snapshot) PublicKey() wire.PublicKey { return s.key }

// Root is the root of the tree the node was in when the snapshot was made.
func (s *Snapshot) Root() wire.Root { return s.root }

// Coords are the node's coordinates; the slice must not be modified.
func (s *Snapshot) Coords() wire.Coordinates { return s.coords }

// snekSearch is the running best of the SNEK next-hop algorithm (§5.3).
type snekSearch struct {
	dest      wire.PublicKey
	bootstrap bool
	bestKey   wire.PublicKey
	bestSeq   uint64
	bestPeer  Port
}

func (b *snekSearch) take(k wire.PublicKey, seq uint64, q Port) {
	b.bestKey, b.bestSeq, b.bestPeer = k, seq, q
}

// consider takes k if it is the destination itself (an exact hit, not for
// bootstraps) or strictly between the destination and the best so far.
func (b *snekSearch) consider(k wire.PublicKey, seq uint64, q Port) {
	if !b.bootstrap && k == b.dest && b.bestKey != b.dest {
		b.take(k, seq, q)
	} else if wire.DHTOrdered(b.dest, k, b.bestKey) {
		b.take(k, seq, q)
	}
}

// nextHopSNEK is the reference's SNEK next-hop algorithm (§5.3), step for
// step: it moves towards the smallest known key at or above dest. For a
// bootstrap it returns NoPort when no peer leads anywhere better; for
// traffic it returns LocalPort when this node is the end of the line. The
// returned watermark is always (bestKey, bestSeq).
//
// Neither path uses it as it is: traffic uses nextHopTraffic and
// bootstraps nextHopBootstrap, indexed equivalents that
// TestTrafficSearchMatchesLiteral and TestBootstrapSearchMatchesLiteral
// check against this one, which stays as their reference.
func (s *Snapshot) nextHopSNEK(now time.Time, dest wire.PublicKey, bootstrap bool, w wire.Watermark) (Port, wire.Watermark) {
	if !bootstrap && dest == s.key {
		return LocalPort, w
	}
	b := snekSearch{dest: dest, bootstrap: bootstrap, bestKey: s.key, bestPeer: LocalPort}
	if bootstrap {
		b.bestPeer = NoPort
	}
	if p := s.peer(s.parent); p != nil && p.ann != nil {
		// Climb towards the root when nothing below it can be closer.
		if (bootstrap && b.bestKey == dest) || wire.DHTOrdered(b.bestKey, dest, s.root.Key) {
			b.take(s.root.Key, 0, s.parent)
		}
		for _, k := range p.ann.keys {
			b.consider(k, 0, s.parent)
		}
	}
	// The ancestries of all peers.
	for _, q := range s.peers {
		if q.ann == nil {
			continue
		}
		for _, k := range q.ann.keys {
			b.consider(k, 0, q.port)
		}
	}
	// If the best key is a peer's own, go to it directly.
	for _, q := range s.peers {
		if q.ann != nil && q.key == b.bestKey {
			b.take(b.bestKey, 0, q.port)
		}
	}
	// Descend along bootstrap paths.
	for i := range s.entries {
		e := s.entries[i]
		v := e.ver.Load()
		if !now.Before(v.expires) {
			continue
		}
		if (wire.Watermark{Key: e.origin, Seq: v.seq}).WorseThan(w) {
			continue
		}
		b.consider(e.origin, v.seq, e.source)
	}
	// Of several links to the best key, prefer the better link type, then
	// the one whose announcement arrived first.
	if bp := s.peer(b.bestPeer); bp != nil && bp.ann != nil {
		for _, q := range s.peers {
			if q.ann == nil || q.key != b.bestKey {
				continue
			}
			if q.typ < bp.typ || (q.typ == bp.typ && q.ann.root == bp.ann.root && q.ann.order < bp.ann.order) {
				b.take(b.bestKey, b.bestSeq, q.port)
				bp = q
			}
		}
	}
	return b.bestPeer, wire.Watermark{Key: b.bestKey, Seq: b.bestSeq}
}

// nextHopTree is greedy tree routing (§4.9), excluding the ingress port.
// It returns LocalPort when dest is our position and NoPort when no peer is
// closer to dest than we are. Among equally close peers it takes the better
// link type, then the announcement that arrived first, then the lower port:
// the tie-break the reference intends (its own picks at random).
func (s *Snapshot) nextHopTree(from Port, dest wire.Coordinates) Port {
	ourDist := s.coords.DistanceTo(dest)
	if ourDist == 0 {
		return LocalPort
	}
	var best *peerInfo
	bestDist := ourDist
	for _, q := range s.peers {
		if q.port == from || q.ann == nil || q.ann.root != s.root {
			continue
		}
		d := q.ann.coords.DistanceTo(dest)
		if d < bestDist || (d == bestDist && best != nil && betterLink(q, best)) {
			best, bestDist = q, d
		}
	}
	if best == nil {
		return NoPort
	}
	return best.port
}

// betterLink orders two peers with announcements by link preference.
func betterLink(q, than *peerInfo) bool {
	if q.typ != than.typ {
		return q.typ < than.typ
	}
	return q.ann.order < than.ann.order
}

// VerdictKind is what Route decided.
type VerdictKind uint8

// The outcomes of Route.
const (
	// VerdictDrop: the frame goes nowhere; Verdict.Reason says why.
	VerdictDrop VerdictKind = iota
	// VerdictForward: encode the frame and queue it on Verdict.Port.
	VerdictForward
	// VerdictDeliver: hand the payload to the application.
	VerdictDeliver
)

// Verdict is the result of Route.
type Verdict struct {
	Kind   VerdictKind
	Port   Port
	Reason DropReason
}

// NewTraffic builds the frame the node originates for payload to dst, as
// the reference's WriteTo does (§6.2, §9.1): hop limit 10, destination
// coordinates from the cache when they are fresh, our coordinates as the
// source, the start watermark. Route it with from = LocalPort. The frame
// refers to payload and to shared coordinate slices; encode it before
// reusing payload.
func (s *Snapshot) NewTraffic(now time.Time, dst wire.PublicKey, payload []byte) wire.Traffic {
	f := wire.Traffic{
		HopLimit:     wire.MaxHopLimit,
		SourceCoords: s.coords,
		Destination:  dst,
		Source:       s.key,
		Watermark:    wire.StartWatermark,
		Payload:      payload,
	}
	if c, ok := s.cache.Get(dst, now); ok {
		f.DestinationCoords = c
	}
	return f
}

// Route decides where a Traffic frame goes (§6.1). from is the port it came
// in on, LocalPort for a frame this node originates. Route updates f as the
// next hop must see it: destination coordinates cleared when the tree
// leads nowhere, the watermark, and the hop limit when hop limiting is on.
// A frame for our key fills the coordinate cache with its source
// coordinates. Route counts the frame in Stats; its only other side effect
// is the cache. It is safe to call from any goroutine.
//
// A Deliver verdict can come for a frame whose destination key is not ours:
// SNEK ends at the successor of a key that does not exist, and tree routing
// ends wherever the coordinates point.
func (s *Snapshot) Route(now time.Time, f *wire.Traffic, from Port) Verdict {
	st := s.stats
	if from == LocalPort {
		st.originated.Add(1)
	}
	if f.Destination == s.key {
		if len(f.SourceCoords) > 0 {
			s.cache.Put(f.Source, f.SourceCoords, now)
		}
		st.delivered.Add(1)
		return Verdict{Kind: VerdictDeliver, Port: LocalPort}
	}
	next, wm := NoPort, f.Watermark
	if len(f.DestinationCoords) > 0 {
		if next = s.nextHopTree(from, f.DestinationCoords); next == NoPort {
			// A dead end on the tree: carry on by key.
			f.DestinationCoords = nil
			st.treeFallbacks.Add(1)
		} else {
			st.routedTree.Add(1)
		}
	}
	if next == NoPort {
		next, wm = s.nextHopTraffic(now, f.Destination, f.Watermark)
		st.routedSNEK.Add(1)
	}
	if s.hopLimiting {
		if f.HopLimit <= 1 {
			return s.dropped(DropHopLimit)
		}
		f.HopLimit--
	}
	if next == from {
		if from == LocalPort {
			// Our own frame's best next hop is ourselves: we know no
			// route towards its destination, which is not ingress.
			return s.dropped(DropTrafficNoRoute)
		}
		return s.dropped(DropIngress)
	}
	if wm.WorseThan(f.Watermark) {
		return s.dropped(DropWatermark)
	}
	f.Watermark = wm
	if next == LocalPort {
		st.delivered.Add(1)
		return Verdict{Kind: VerdictDeliver, Port: LocalPort}
	}
	return Verdict{Kind: VerdictForward, Port: next}
}

func (s *Snapshot) dropped(d DropReason) Verdict {
	s.stats.drop(d)
	return Verdict{Kind: VerdictDrop, Reason: d}
}
