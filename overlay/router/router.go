package router

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/pineconed/pineconed/overlay/wire"
)

// peerInfo is what the Router knows about one peering. It is immutable once
// built: a new announcement replaces the whole value, so Snapshots can share
// it with the Router without copying or locking.
type peerInfo struct {
	port Port
	key  wire.PublicKey
	typ  PeerType
	// ann is the last accepted announcement; nil until the first one.
	ann *annInfo
}

// annInfo is a stored announcement with what routing derives from it.
type annInfo struct {
	ann  *wire.TreeAnnouncement
	root wire.Root
	// full are the ports of all hops: our coordinates if this peer is our
	// parent. coords are the sender's own coordinates (all hops but its
	// last), the peer's position for tree routing.
	full, coords wire.Coordinates
	// keys are the hop signers, root first: the peer's ancestry, which
	// SNEK searches for keys close to a destination.
	keys     []wire.PublicKey
	order    uint64
	received time.Time
}

func newAnnInfo(a *wire.TreeAnnouncement, now time.Time, order uint64) *annInfo {
	full := a.Coordinates()
	info := &annInfo{
		ann:      a,
		root:     a.Root,
		full:     full,
		coords:   full[: len(full)-1 : len(full)-1],
		keys:     make([]wire.PublicKey, len(a.Hops)),
		order:    order,
		received: now,
	}
	for i, h := range a.Hops {
		info.keys[i] = h.Key
	}
	return info
}

func (a *annInfo) hasKey(k wire.PublicKey) bool {
	for _, h := range a.keys {
		if h == k {
			return true
		}
	}
	return false
}

// snekEntry is one SNEK route (docs/protocol.md §5.2): the way back to a bootstrap's
// originator. Snapshots share the Router's entries: origin and source never
// change once the entry is made (a route through another port is a new
// entry), so the data plane reads them without the Router's lock; the
// fields the Router changes are only its own, and ver.
type snekEntry struct {
	origin   wire.PublicKey
	source   Port // where the bootstrap came from: towards the originator
	dest     Port // where it went on; NoPort or LocalPort if it ended here
	lastSeen time.Time
	root     wire.Root
	seq      uint64 // the bootstrap's sequence: the watermark is (origin, seq)
	// ver is seq and the expiry as the data plane reads them: snapshots
	// point at it, so that a bootstrap that only refreshes the route (the
	// same origin through the same port, a new sequence) reaches traffic
	// at once without a new snapshot. One atomic pointer to an immutable
	// value, so a reader sees a whole version, never half of one.
	ver atomic.Pointer[routeVersion]
	// held is a copy of the bootstrap that last set this route, kept for
	// handOff; nil with ReferenceTimers.
	held *heldBootstrap
}

// routeVersion is what a refresh changes in a SNEK route.
type routeVersion struct {
	seq     uint64
	expires time.Time
}

func (e *snekEntry) watermark() wire.Watermark { return wire.Watermark{Key: e.origin, Seq: e.seq} }

func (e *snekEntry) valid(now time.Time) bool { return now.Sub(e.lastSeen) < SNEKExpiry }

type seenWakeup struct {
	payload wire.SignedRoot
	at      time.Time
}

// Router is one node's routing state machine. Create it with New; see the
// package documentation for how a node drives it.
type Router struct {
	priv ed25519.PrivateKey
	key  wire.PublicKey
	opts Options

	started bool

	peers  [MaxPort + 1]*peerInfo
	npeers int

	// Spanning tree (§4).
	parent       Port // NoPort when this node is root
	seq          uint64
	receiveOrder uint64
	waiting      bool
	waitUntil    time.Time
	lastRootAnn  time.Time

	// SNEK (§5).
	table map[wire.PublicKey]*snekEntry
	// routes are the table's entries sorted by originator key, kept in
	// order as routes come and go (refreshes, most bootstraps, change
	// neither): the bootstrap search and snapshot rebuilds read them in
	// order instead of sorting or walking the whole table.
	routes        []*snekEntry
	descending    wire.PublicKey
	hasDescending bool
	lastBootstrap time.Time
	// lastChange is when our parent, root or descending neighbour last
	// changed: bootstraps are fast for FastBootstrapWindow after it.
	lastChange time.Time

	// Wakeup broadcasts (§7).
	seen map[wire.PublicKey]seenWakeup
	// verified is, per originator, the last wakeup payload whose
	// signature verified: a flood brings the same payload several times.
	verified map[wire.PublicKey]seenWakeup
	// nextWakeup is when our periodic wakeup flood is due; zero for never.
	nextWakeup time.Time
	// seenExpiry is when the oldest record in seen or verified expires;
	// zero while both are empty.
	seenExpiry time.Time

	nextMaint time.Time
	lastSweep time.Time
	// clock is the time of the current call, for end.
	clock time.Time
	// rng draws the tuned timers' jitter. It is seeded from the key, so a
	// Router stays a deterministic function of its key and its inputs.
	rng *rand.Rand

	cache *CoordCache
	stats *counters

	snap *Snapshot
	// dirty means the peers or the tree changed since snap was built,
	// tableDirty that only the SNEK routes did.
	dirty, tableDirty bool
	// pubCredit is Publish's rebuild budget as of pubAt (refillPublish).
	pubCredit time.Duration
	pubAt     time.Time

	// What the last reported events said, to report changes once.
	evRoot   wire.Root
	evParent Port
	// routesChanged is set when this call gave us a new route, for
	// EventRoutesChanged.
	routesChanged bool
	// clones is, per port, the evidence of a clone of our key.
	clones [MaxPort + 1]cloneWatch
	// annOut is, per port, what we announced on it (tree.go, isEcho);
	// allocated on the first announcement, so an idle port costs a pointer.
	annOut [MaxPort + 1]*annOutState

	out []Action
}

// New returns the state machine of a node with the given private key. The
// node starts as the root of its own tree with sequence 1 (its start-up
// announcement, docs/protocol.md §4.3); its clock starts at the first call.
// priv must be a valid ed25519 private key.
func New(priv ed25519.PrivateKey, opts Options) *Router {
	if len(priv) != ed25519.PrivateKeySize {
		panic(fmt.Sprintf("router.New: private key of %d bytes", len(priv)))
	}
	opts = opts.withDefaults()
	r := &Router{
		priv:     priv,
		key:      wire.PublicKeyOf(priv),
		opts:     opts,
		parent:   NoPort,
		seq:      1,
		table:    make(map[wire.PublicKey]*snekEntry),
		seen:     make(map[wire.PublicKey]seenWakeup),
		verified: make(map[wire.PublicKey]seenWakeup),
		cache:    NewCoordCache(opts.CoordCacheSize),
		stats:    &counters{},
		dirty:    true,
		evParent: NoPort,
		out:      make([]Action, 0, defaultOutputActionHint),
	}
	r.evRoot = r.currentRoot()
	r.rng = rand.New(rand.NewPCG(binary.BigEndian.Uint64(r.key[:8]), binary.BigEndian.Uint64(r.key[8:16])))
	return r
}

// begin starts every entry point: it resets the output and, on the very
// first call, starts the clocks.
func (r *Router) begin(now time.Time) {
	r.out = r.out[:0]
	r.clock = now
	if !r.started {
		r.started = true
		r.lastRootAnn = now
		r.scheduleWakeup(now, true)
		r.lastSweep = now
		// Maintenance is due at once; until it sees a parent it only
		// expires state.
		r.nextMaint = now
	}
}

// end finishes every entry point: it reports tree changes (and wipes the
// coordinate cache when the root key changed) and returns the actions.
func (r *Router) end() []Action {
	root := r.currentRoot()
	if root.Key != r.evRoot.Key {
		// Coordinates learnt in another tree lead nowhere (§4.6).
		r.cache.Clear()
		r.event(Event{Kind: EventRootChanged, Root: root, Coords: r.coords()})
	}
	if r.parent != r.evParent {
		r.event(Event{Kind: EventParentChanged, Port: r.parent, Root: root, Coords: r.coords()})
	}
	if root.Key != r.evRoot.Key || r.parent != r.evParent {
		r.lastChange = r.clock
	}
	if r.routesChanged || root.Key != r.evRoot.Key || r.parent != r.evParent {
		r.event(Event{Kind: EventRoutesChanged})
	}
	r.evRoot, r.evParent, r.routesChanged = root, r.parent, false
	return r.out
}

// PublicKey is this node's key.
func (r *Router) PublicKey() wire.PublicKey { return r.key }

// CoordCache is the cache the Router fills on local delivery; the node uses
// it (through Snapshot.NewTraffic) when it originates traffic.
func (r *Router) CoordCache() *CoordCache { return r.cache }

// Stats returns the counters.
func (r *Router) Stats() Stats { return r.stats.snapshot() }

// PeerUp attaches a new peering on port (1..MaxPort) with the key its
// handshake proved. The returned actions start with the frame every stock
// node sends first on a link: our current root announcement, signed for
// this port (§1.3). A port still in use is first treated as PeerDown.
//
// The returned slice is reused by the next call into the Router.
func (r *Router) PeerUp(now time.Time, port Port, key wire.PublicKey, typ PeerType) []Action {
	r.begin(now)
	if port == LocalPort || port > MaxPort {
		r.stats.disconnects[DisconnectInvalidPort].Add(1)
		r.out = append(r.out, Action{Kind: ActionDisconnect, Port: port,
			Reason: &ProtocolError{Port: port, Reason: DisconnectInvalidPort}})
		return r.end()
	}
	if r.peers[port] != nil {
		r.removePeer(now, port)
	}
	r.peers[port] = &peerInfo{port: port, key: key, typ: typ}
	r.npeers++
	r.dirty = true
	a := r.rootAnnouncement()
	r.sendAnnouncement(a, r.signAnnouncement(a), port)
	return r.end()
}

// PeerDown detaches the peering on port (§1.5): its announcement, the SNEK
// routes through it and, if it was the parent, the parent are forgotten.
// When the last peer goes the node starts afresh as its own root.
func (r *Router) PeerDown(now time.Time, port Port) []Action {
	r.begin(now)
	if port <= MaxPort && r.peers[port] != nil {
		r.removePeer(now, port)
	}
	return r.end()
}

// removePeer forgets a peering and repairs the tree and SNEK state.
func (r *Router) removePeer(now time.Time, port Port) {
	r.peers[port] = nil
	r.clones[port] = cloneWatch{}
	r.annOut[port] = nil
	r.npeers--
	r.dirty, r.tableDirty = true, true
	r.deleteRoutes(func(e *snekEntry) bool { return e.source == port || e.dest == port })
	if r.hasDescending && r.table[r.descending] == nil {
		r.hasDescending = false
		r.bootstrapSoon(now)
	}
	if r.npeers == 0 {
		r.reset(now)
		return
	}
	if r.parent == port {
		// The parent's announcement is gone, so selection starts from our
		// own root; the parent field still names the lost port, so
		// selection becomes root if nobody else offers a tree.
		if r.selectParent(now) {
			r.bootstrapSoon(now)
		}
	}
}

// reset returns to a fresh start after the last peer went (§4.8). The own
// sequence is not reset but moves on: copies of our old announcements may
// still be stored elsewhere and must not win against the new ones.
func (r *Router) reset(now time.Time) {
	r.parent = NoPort
	r.waiting = false
	r.seq++
	r.lastRootAnn = now
	clear(r.table)
	clear(r.routes)
	r.routes = r.routes[:0]
	r.hasDescending = false
	r.lastBootstrap = time.Time{}
	r.cache.Clear()
	r.dirty, r.tableDirty = true, true
}

// HandleFrame processes one decoded frame received on port from. Traffic
// goes through Snapshot.Route, exactly as the node's data plane does.
// Protocol errors come back as an ActionDisconnect for from.
//
// The returned slice is reused by the next call into the Router. m may be
// modified (a forwarded frame's watermark, hop limit, coordinates); Deliver
// actions carry a copy of the payload, so the frame's buffer may be reused
// once this returns.
func (r *Router) HandleFrame(now time.Time, from Port, m wire.Message) []Action {
	r.begin(now)
	if from == LocalPort || from > MaxPort || r.peers[from] == nil {
		r.stats.drop(DropUnknownPort)
		return r.end()
	}
	p := r.peers[from]
	if f, ok := m.(*wire.Traffic); ok {
		r.applyVerdict(f, r.Publish(now).Route(now, f, from))
		return r.end()
	}
	switch m := m.(type) {
	case *wire.TreeAnnouncement:
		r.handleAnnouncement(now, p, m)
	case *wire.Bootstrap:
		r.handleBootstrap(now, p, m)
	case *wire.WakeupBroadcast:
		r.handleWakeup(now, p, m)
	case *wire.Keepalive:
		// Link-local liveness (the node counted it on its port): nothing to route. It is
		// the protocol working, so it is not a drop.
	default:
		r.stats.drop(DropUnknownType)
	}
	return r.end()
}

// SendTraffic originates a Traffic frame to dst, as the reference's WriteTo
// does (§6.2, §9.1): hop limit 10, destination coordinates from the cache
// if fresh, our coordinates as source, the start watermark. Like WriteTo it
// reports nothing when the frame is dropped; Stats count it.
func (r *Router) SendTraffic(now time.Time, dst wire.PublicKey, payload []byte) []Action {
	r.begin(now)
	s := r.Publish(now)
	f := s.NewTraffic(now, dst, payload)
	r.applyVerdict(&f, s.Route(now, &f, LocalPort))
	return r.end()
}

func (r *Router) applyVerdict(f *wire.Traffic, v Verdict) {
	switch v.Kind {
	case VerdictForward:
		// Sized once: appending to nil grew the frame three times, and
		// forwarded Traffic was most of what the routing simulator
		// allocated.
		frame, err := f.Append(make([]byte, 0, f.Overhead()+len(f.Payload)))
		if err != nil {
			r.stats.drop(DropEncode)
			return
		}
		r.out = append(r.out, Action{Kind: ActionSend, Port: v.Port, Frame: frame, Type: wire.TypeTraffic})
	case VerdictDeliver:
		r.out = append(r.out, Action{Kind: ActionDeliver, Source: f.Source, Destination: f.Destination,
			Payload: append([]byte(nil), f.Payload...)})
	}
}

// Tick runs the timers that are due at now: the end of a reparent wait and
// the 1 s maintenance (bootstraps, expiry of SNEK routes and wakeup
// records, root refresh, periodic wakeups). Calling it early does nothing;
// calling it late is harmless.
func (r *Router) Tick(now time.Time) []Action {
	r.begin(now)
	if r.waiting && !now.Before(r.waitUntil) {
		r.waiting = false
		if r.selectParent(now) {
			r.bootstrapSoon(now)
		}
	}
	if !now.Before(r.nextMaint) {
		r.maintain(now)
		r.nextMaint = now.Add(MaintenanceInterval)
	}
	r.reportClones(now)
	return r.end()
}

// NextTick is when Tick must next be called. Before the first call into
// the Router it is the zero time.
func (r *Router) NextTick() time.Time {
	next := r.nextMaint
	if r.waiting && r.waitUntil.Before(next) {
		next = r.waitUntil
	}
	if due, ok := r.publishDue(); ok && due.Before(next) {
		next = due
	}
	return next
}

func (r *Router) maintain(now time.Time) {
	r.expireRoutes(now)
	if r.hasDescending {
		if e := r.table[r.descending]; e == nil || e.root != r.currentRoot() {
			r.hasDescending = false
			r.bootstrapSoon(now)
		}
	}
	if p := r.parentInfo(); p != nil && now.Sub(p.ann.received) >= AnnouncementTimeout {
		// Parent selection ignores announcements this old (§4.6); without
		// this check a parent whose root went silent would be kept until
		// some other event ran selection.
		if r.selectParent(now) {
			r.bootstrapSoon(now)
		}
	}
	if r.parent == NoPort && now.Sub(r.lastRootAnn) >= AnnouncementInterval {
		r.seq++
		r.lastRootAnn = now
		r.dirty = true
		r.sendAnnouncementToAll()
	}
	if r.parent != NoPort && now.Sub(r.lastBootstrap) >= r.bootstrapInterval(now) {
		r.sendBootstrap(now)
	}
	if !r.opts.DisableWakeups && !r.nextWakeup.IsZero() && !now.Before(r.nextWakeup) {
		r.scheduleWakeup(now, false)
		r.originateWakeup(now, r.allPorts())
	}
	if !r.seenExpiry.IsZero() && !now.Before(r.seenExpiry) {
		r.expireSeen(now)
	}
	if now.Sub(r.lastSweep) >= CoordCacheLifetime {
		r.cache.Sweep(now)
		r.lastSweep = now
	}
}

// expireSeen forgets the wakeup records older than WakeupSeenExpiry and
// notes when the oldest one left will be due. Walking the sets only then,
// not on every 1 s tick, removes the same records at the same ticks: new
// records are never older than the ones already there.
func (r *Router) expireSeen(now time.Time) {
	var oldest time.Time
	for _, m := range []map[wire.PublicKey]seenWakeup{r.seen, r.verified} {
		for k, s := range m {
			if now.Sub(s.at) >= WakeupSeenExpiry {
				delete(m, k)
			} else if oldest.IsZero() || s.at.Before(oldest) {
				oldest = s.at
			}
		}
	}
	r.seenExpiry = time.Time{}
	if !oldest.IsZero() {
		r.seenExpiry = oldest.Add(WakeupSeenExpiry)
	}
}

// noteSeen keeps seenExpiry set while any wakeup record exists; a record
// added at now expires no earlier than those before it.
func (r *Router) noteSeen(now time.Time) {
	if r.seenExpiry.IsZero() {
		r.seenExpiry = now.Add(WakeupSeenExpiry)
	}
}

// event queues an informational action.
func (r *Router) event(e Event) {
	r.out = append(r.out, Action{Kind: ActionEvent, Port: e.Port, Event: e})
}

// send encodes m and queues it on port.
func (r *Router) send(port Port, m wire.Message) {
	frame, err := m.Append(nil)
	if err != nil {
		r.stats.drop(DropEncode)
		return
	}
	r.queue(port, m.Type(), frame)
}

// sendMany encodes m once and queues a copy on each port.
func (r *Router) sendMany(ports []Port, m wire.Message) {
	if len(ports) == 0 {
		return
	}
	frame, err := m.Append(nil)
	if err != nil {
		r.stats.drop(DropEncode)
		return
	}
	for i, port := range ports {
		f := frame
		if i < len(ports)-1 {
			f = append([]byte(nil), frame...)
		}
		r.queue(port, m.Type(), f)
	}
}

func (r *Router) queue(port Port, t wire.FrameType, frame []byte) {
	r.out = append(r.out, Action{Kind: ActionSend, Port: port, Frame: frame, Type: t, Protocol: t.IsProtocol()})
}

// disconnect reports a protocol error by the peer on port and forgets the
// peer at once: nothing more is routed through it, and frames still coming
// from it count as DropUnknownPort while the link closes.
func (r *Router) disconnect(now time.Time, perr *ProtocolError) {
	r.stats.disconnects[perr.Reason].Add(1)
	r.out = append(r.out, Action{Kind: ActionDisconnect, Port: perr.Port, Reason: perr})
	r.removePeer(now, perr.Port)
}

// allPorts lists the connected ports in ascending order.
func (r *Router) allPorts() []Port {
	ports := make([]Port, 0, r.npeers)
	for port := Port(1); port <= MaxPort; port++ {
		if r.peers[port] != nil {
			ports = append(ports, port)
		}
	}
	return ports
}
