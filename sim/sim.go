// Package sim is an in-memory, deterministic network of real Pinecone
// routing state machines (overlay/router) for tests, benchmarks and the
// routing simulator.
//
// Place in the data path: sim stands in for everything around the Router
// in the daemon. Where the daemon's node gives each link a port, decodes
// the frames a link reader hands it and queues the frames the Router emits
// on link writers, a Network does the same with a virtual clock: frames are
// really encoded by the sender's Router and decoded with wire.Decode by the
// receiver, after the link's latency. Ticks come when each Router's
// NextTick arrives. Nothing runs concurrently and nothing reads the wall
// clock, so a run is a pure function of its inputs: the same topology,
// seed and calls give the same events in the same order.
//
// Events are kept in a heap ordered by time, ties broken by the order they
// were queued in. The number of queued frames is bounded; beyond the bound
// frames are dropped and counted, as a full link queue would.
//
// On top of the network, measure.go counts what each node sends by frame
// type and the links every Traffic frame crosses, and finds shortest paths;
// Experiment (experiment.go) is the routing simulator's standard run behind
// cmd/pineconesim: convergence from a cold start, stretch, routing state,
// control traffic and recovery from failures.
package sim

import (
	"container/heap"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/pineconed/pineconed/overlay/router"
	"github.com/pineconed/pineconed/overlay/wire"
)

// Config sets up a Network. The zero value is usable.
type Config struct {
	// Start is the virtual clock's starting time. Routers stamp bootstraps
	// and wakeups with it, so it should be a plausible Unix time; zero
	// means DefaultStart.
	Start time.Time
	// Latency is the default one-way latency of new links; zero means
	// DefaultLatency.
	Latency time.Duration
	// MaxQueued bounds the frames in flight in the whole network; zero
	// means DefaultMaxQueued.
	MaxQueued int
	// Router are the options every node's Router gets.
	Router router.Options
	// NodeOptions, if set, gives node i (its ID) its own options instead
	// of Router, e.g. to let only a sample of nodes originate wakeups.
	NodeOptions func(i int) router.Options
	// OnEvent, if set, sees every informational event of every Router.
	OnEvent func(n *Node, e router.Event)
	// SyncedClocks runs every Router's 1 s maintenance on the same grid,
	// without tick jitter. By default each node's first tick is delayed by
	// a phase in [0, 1 s) derived from its key, as if the nodes had started
	// at different moments: with synchronised clocks every node bootstraps
	// at the same instant and soft-state routes all expire in the same
	// milliseconds, which no real network does.
	SyncedClocks bool
	// TickJitter is the most each tick of a Router comes late, as a real
	// node's timer fires late by scheduling delays: every tick is delayed
	// by a pseudo-random amount in [0, TickJitter), so the nodes' grids
	// drift apart over a run instead of staying in lockstep. 0 means
	// DefaultTickJitter; negative means none.
	TickJitter time.Duration
	// JitterSeed seeds the tick jitter, with each node's key.
	JitterSeed uint64
}

// Defaults for Config.
const (
	DefaultLatency   = time.Millisecond
	DefaultMaxQueued = 1 << 22
	// DefaultTickJitter is of the order of a busy node's timer delays.
	DefaultTickJitter = 20 * time.Millisecond
)

// DefaultStart is the virtual clock's default starting time.
var DefaultStart = time.Unix(1_700_000_000, 0)

// Node is one simulated Pinecone node.
type Node struct {
	// ID is the node's index in the Network, in order of creation.
	ID int
	// Name labels the node (the graph file's name, or its ID).
	Name   string
	Key    wire.PublicKey
	Router *router.Router

	ends    [router.MaxPort + 1]*Link
	sent    [numSentTypes]SentCount
	tickAt  time.Time
	ticking bool
	ticked  bool
	phase   time.Duration
	// jitterKey is the node's part of the tick jitter's hash.
	jitterKey uint64
	removed   bool
}

// Removed reports whether the node was taken out of the network.
func (n *Node) Removed() bool { return n.removed }

// Links lists the node's links that are up, by port.
func (n *Node) Links() []*Link {
	var out []*Link
	for _, l := range n.ends {
		if l != nil {
			out = append(out, l)
		}
	}
	return out
}

// LinkOn returns the link on one of the node's ports, or nil.
func (n *Node) LinkOn(p router.Port) *Link {
	if p > router.MaxPort {
		return nil
	}
	return n.ends[p]
}

func (n *Node) String() string { return n.Name }

// Link is a bidirectional peering between two nodes.
type Link struct {
	A, B         *Node
	PortA, PortB router.Port
	Latency      time.Duration
	up           bool
}

// Up reports whether the link still exists.
func (l *Link) Up() bool { return l.up }

// Far returns the other end of the link seen from n, and its port there.
func (l *Link) Far(n *Node) (*Node, router.Port) {
	if n == l.A {
		return l.B, l.PortB
	}
	return l.A, l.PortA
}

// Delivery is a Traffic payload a Router handed to its application.
type Delivery struct {
	At   time.Time
	Node *Node
	// Source and Destination are the frame's keys. Destination differs
	// from Node.Key when SNEK delivered to the successor of a key.
	Source, Destination wire.PublicKey
	Payload             []byte
	// Hops is the number of links the frame crossed (0 when a node sent
	// to itself).
	Hops int
}

// Stats counts what the Network did.
type Stats struct {
	// Events is the number of events processed.
	Events uint64
	// Frames is the number of frames put on links.
	Frames uint64
	// FramesLost counts frames that found their link gone on arrival.
	FramesLost uint64
	// QueueDrops counts frames dropped because MaxQueued was reached.
	QueueDrops uint64
	// DecodeErrors counts frames the receiver could not decode; each one
	// also closed its link, as a link reader does.
	DecodeErrors uint64
	// Disconnects counts links a Router closed for a protocol error.
	Disconnects uint64
	// LastDisconnect is the reason of the most recent one.
	LastDisconnect error
	// RootChanges counts EventRootChanged over all nodes.
	RootChanges uint64
	// Bootstraps counts the bootstrap frames put on links by which way
	// they went in the tree (measure.go).
	Bootstraps BootstrapHops
}

type eventKind uint8

const (
	evFrame eventKind = iota
	evTick
)

// event is one thing to do at a time. Events live by value in the heap's
// slice, so queueing one does not allocate.
type event struct {
	at    time.Duration // since Config.Start
	seq   uint64
	kind  eventKind
	port  router.Port
	hops  uint16 // links a Traffic frame has crossed, this one included
	node  *Node
	link  *Link
	frame []byte
}

// eventQueue is a container/heap of events by (at, seq). Push and Pop move
// the element through the in and out fields instead of the interface
// argument, because boxing an event into an interface would allocate.
type eventQueue struct {
	items   []event
	in, out event
	frames  int
}

func (q *eventQueue) Len() int { return len(q.items) }
func (q *eventQueue) Less(i, j int) bool {
	a, b := &q.items[i], &q.items[j]
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}
func (q *eventQueue) Swap(i, j int) { q.items[i], q.items[j] = q.items[j], q.items[i] }
func (q *eventQueue) Push(any)      { q.items = append(q.items, q.in) }
func (q *eventQueue) Pop() any {
	n := len(q.items) - 1
	q.out = q.items[n]
	q.items[n] = event{}
	q.items = q.items[:n]
	return nil
}

// Network is the simulated network. It is not safe for concurrent use.
type Network struct {
	cfg        Config
	now        time.Duration
	seq        uint64
	queue      eventQueue
	nodes      []*Node
	deliveries []Delivery
	stats      Stats
	// fates is the loss tracer's record of probe frames, nil while it is
	// off (trace.go).
	fates map[probeID]*probeFate
}

// New returns an empty network at the start of its clock.
func New(cfg Config) *Network {
	if cfg.Start.IsZero() {
		cfg.Start = DefaultStart
	}
	if cfg.Latency <= 0 {
		cfg.Latency = DefaultLatency
	}
	if cfg.MaxQueued <= 0 {
		cfg.MaxQueued = DefaultMaxQueued
	}
	if cfg.TickJitter == 0 {
		cfg.TickJitter = DefaultTickJitter
	}
	if cfg.SyncedClocks {
		cfg.TickJitter = -1
	}
	return &Network{cfg: cfg}
}

// Now is the virtual time.
func (n *Network) Now() time.Time { return n.cfg.Start.Add(n.now) }

// Elapsed is the virtual time since the start.
func (n *Network) Elapsed() time.Duration { return n.now }

// Nodes lists every node ever added, removed ones included, by ID.
func (n *Network) Nodes() []*Node { return n.nodes }

// Stats returns the network's counters.
func (n *Network) Stats() Stats { return n.stats }

// Pending is the number of queued events.
func (n *Network) Pending() int { return n.queue.Len() }

// NodeKey derives the private key of node i of a network built with seed.
// Keys must be well spread over the key space, as real ones are, because
// SNEK routes by key order.
func NodeKey(seed uint64, i int) ed25519.PrivateKey {
	var b [len("pineconed/sim") + 16]byte
	copy(b[:], "pineconed/sim")
	binary.BigEndian.PutUint64(b[len(b)-16:], seed)
	binary.BigEndian.PutUint64(b[len(b)-8:], uint64(i))
	s := sha256.Sum256(b[:])
	return ed25519.NewKeyFromSeed(s[:])
}

// AddNode adds a node with the given key. It has no links yet.
func (n *Network) AddNode(name string, priv ed25519.PrivateKey) *Node {
	opts := n.cfg.Router
	if n.cfg.NodeOptions != nil {
		opts = n.cfg.NodeOptions(len(n.nodes))
	}
	node := &Node{ID: len(n.nodes), Name: name, Key: wire.PublicKeyOf(priv), Router: router.New(priv, opts)}
	if !n.cfg.SyncedClocks {
		node.phase = time.Duration(binary.BigEndian.Uint64(node.Key[:8]) % uint64(router.MaintenanceInterval))
	}
	node.jitterKey = binary.BigEndian.Uint64(node.Key[8:16]) ^ n.cfg.JitterSeed
	if node.Name == "" {
		node.Name = fmt.Sprint(node.ID)
	}
	n.nodes = append(n.nodes, node)
	return node
}

// ErrNoFreePort means a node already has MaxPort links.
var ErrNoFreePort = errors.New("no free switch ports")

// Connect links a and b with the given one-way latency (0 means the
// network's default). Each end takes its lowest free port, as the
// reference does, and both Routers are told at once (a first, then b), so
// their first frames, the tree announcements, are on the way.
func (n *Network) Connect(a, b *Node, latency time.Duration) (*Link, error) {
	switch {
	case a.removed || b.removed:
		return nil, fmt.Errorf("connect %s–%s: node removed", a, b)
	case a == b:
		return nil, fmt.Errorf("connect %s to itself: self-links are not simulated", a)
	}
	if latency <= 0 {
		latency = n.cfg.Latency
	}
	pa, pb := freePort(a), freePort(b)
	if pa == 0 || pb == 0 {
		return nil, fmt.Errorf("connect %s–%s: %w", a, b, ErrNoFreePort)
	}
	l := &Link{A: a, B: b, PortA: pa, PortB: pb, Latency: latency, up: true}
	a.ends[pa] = l
	b.ends[pb] = l
	n.apply(a, a.Router.PeerUp(n.Now(), pa, b.Key, router.PeerRemote), 0)
	n.apply(b, b.Router.PeerUp(n.Now(), pb, a.Key, router.PeerRemote), 0)
	return l, nil
}

// freePort is the node's lowest free port, or 0.
func freePort(n *Node) router.Port {
	for p := router.Port(1); p <= router.MaxPort; p++ {
		if n.ends[p] == nil {
			return p
		}
	}
	return 0
}

// Disconnect takes a link down: both Routers get PeerDown, and frames
// still in flight on it are lost.
func (n *Network) Disconnect(l *Link) {
	if !l.up {
		return
	}
	l.up = false
	l.A.ends[l.PortA] = nil
	l.B.ends[l.PortB] = nil
	n.apply(l.A, l.A.Router.PeerDown(n.Now(), l.PortA), 0)
	n.apply(l.B, l.B.Router.PeerDown(n.Now(), l.PortB), 0)
}

// LinkBetween returns a link that is up between a and b, or nil.
func (n *Network) LinkBetween(a, b *Node) *Link {
	for _, l := range a.ends {
		if l != nil {
			if far, _ := l.Far(a); far == b {
				return l
			}
		}
	}
	return nil
}

// RemoveNode takes every link of a node down and stops its clock.
func (n *Network) RemoveNode(node *Node) {
	for _, l := range node.ends {
		if l != nil {
			n.Disconnect(l)
		}
	}
	node.removed = true
}

// Send makes from's Router originate payload to the key to (its
// SendTraffic, the WriteTo of the reference).
func (n *Network) Send(from *Node, to wire.PublicKey, payload []byte) {
	if from.removed {
		return
	}
	if n.fates != nil {
		f := wire.Traffic{Destination: to, Payload: payload}
		if c, ok := from.Router.CoordCache().Get(to, n.Now()); ok {
			f.DestinationCoords = c
		}
		n.apply(from, n.traceTraffic(from, &f, 0, func() []router.Action {
			return from.Router.SendTraffic(n.Now(), to, payload)
		}), 0)
		return
	}
	n.apply(from, from.Router.SendTraffic(n.Now(), to, payload), 0)
}

// InjectFrame puts raw bytes on a link as if the node at one end had
// written them on its port p: the far end decodes them when they arrive.
// It is for tests of hostile or broken peers.
func (n *Network) InjectFrame(from *Node, p router.Port, raw []byte) error {
	l := from.LinkOn(p)
	if l == nil {
		return fmt.Errorf("%s has no link on %s", from, p)
	}
	t := wire.FrameType(255)
	if len(raw) > 5 {
		t = wire.FrameType(raw[5])
	}
	n.transmit(from, l, raw, t, 0)
	return nil
}

// Deliveries returns what was delivered since the last TakeDeliveries.
func (n *Network) Deliveries() []Delivery { return n.deliveries }

// TakeDeliveries returns what was delivered and forgets it.
func (n *Network) TakeDeliveries() []Delivery {
	d := n.deliveries
	n.deliveries = nil
	return d
}

// push queues an event at now+after.
func (n *Network) push(after time.Duration, e event) {
	e.at = n.now + after
	e.seq = n.seq
	n.seq++
	n.queue.in = e
	heap.Push(&n.queue, nil)
	n.queue.in = event{}
}

// transmit puts a frame of type t on a link from one of its ends; hops
// counts the links a Traffic frame will have crossed on arrival. The
// sender counts it (Node.Sent) even when the queue bound drops it, as a
// node counts what it writes.
func (n *Network) transmit(from *Node, l *Link, frame []byte, t wire.FrameType, hops uint16) {
	c := &from.sent[sentIndex(t)]
	c.Frames++
	c.Bytes += uint64(len(frame))
	if t == wire.TypeBootstrap {
		n.stats.Bootstraps.count(from, l, frame)
	}
	if n.queue.frames >= n.cfg.MaxQueued {
		n.stats.QueueDrops++
		return
	}
	to, port := l.Far(from)
	n.queue.frames++
	n.stats.Frames++
	n.push(l.Latency, event{kind: evFrame, node: to, port: port, link: l, frame: frame, hops: hops})
}

// apply carries out a Router's actions for node. Links a Router
// disconnects are taken down after the other actions, as the node would
// close the link and then tell the Router. hops is how many links the
// Traffic frame being handled has crossed (0 for anything else): a Router
// forwards or delivers at most one Traffic frame per call, so a Traffic
// send or a delivery among acts is that frame.
func (n *Network) apply(node *Node, acts []router.Action, hops uint16) {
	var closing []router.Port
	for i := range acts {
		a := &acts[i]
		switch a.Kind {
		case router.ActionSend:
			if l := node.LinkOn(a.Port); l != nil {
				h := uint16(0)
				if a.Type == wire.TypeTraffic && hops < math.MaxUint16 {
					h = hops + 1
				}
				n.transmit(node, l, a.Frame, a.Type, h)
			}
		case router.ActionDeliver:
			n.deliveries = append(n.deliveries, Delivery{At: n.Now(), Node: node, Source: a.Source, Destination: a.Destination, Payload: a.Payload, Hops: int(hops)})
		case router.ActionDisconnect:
			n.stats.Disconnects++
			n.stats.LastDisconnect = a.Reason
			closing = append(closing, a.Port)
		case router.ActionEvent:
			if a.Event.Kind == router.EventRootChanged {
				n.stats.RootChanges++
			}
			if n.cfg.OnEvent != nil {
				n.cfg.OnEvent(node, a.Event)
			}
		}
	}
	// Publish as overlay.Node does after every call into its Router, so
	// the simulator pays (and measures) the same snapshot rebuilds.
	node.Router.Publish(n.Now())
	n.schedule(node)
	for _, p := range closing {
		if l := node.LinkOn(p); l != nil {
			n.Disconnect(l)
		}
	}
}

// schedule makes sure the node's next tick is queued. A tick queued for a
// later time becomes stale and is skipped when it comes up.
func (n *Network) schedule(node *Node) {
	if node.removed {
		return
	}
	t := node.Router.NextTick()
	if t.IsZero() {
		return
	}
	if !node.ticked {
		// A Router's maintenance grid starts at its first tick.
		t = t.Add(node.phase)
	}
	t = t.Add(n.tickDelay(node, t))
	if now := n.Now(); t.Before(now) {
		t = now
	}
	if node.ticking && !t.Before(node.tickAt) {
		return
	}
	node.tickAt, node.ticking = t, true
	n.push(t.Sub(n.Now()), event{kind: evTick, node: node})
}

// tickDelay is how late the node's tick due at t comes. It is a hash of
// the node and t, not a draw from a stream: schedule runs after every call
// into a Router and must find the same time for the same due tick.
func (n *Network) tickDelay(node *Node, t time.Time) time.Duration {
	if n.cfg.TickJitter <= 0 {
		return 0
	}
	return time.Duration(splitmix64(node.jitterKey^uint64(t.UnixNano())) % uint64(n.cfg.TickJitter))
}

// splitmix64 is the finaliser of the SplitMix64 generator: a cheap,
// well-mixed hash of one word.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// Step processes the next event. It returns false when none is queued.
func (n *Network) Step() bool {
	if n.queue.Len() == 0 {
		return false
	}
	heap.Pop(&n.queue)
	e := n.queue.out
	n.queue.out = event{}
	n.now = e.at
	n.stats.Events++
	node := e.node
	switch e.kind {
	case evTick:
		if node.removed || !node.ticking || !node.tickAt.Equal(n.Now()) {
			return true
		}
		node.ticking, node.ticked = false, true
		n.apply(node, node.Router.Tick(n.Now()), 0)
	case evFrame:
		n.queue.frames--
		if !e.link.up {
			n.stats.FramesLost++
			return true
		}
		m, err := wire.Decode(e.frame)
		if err != nil {
			// A link reader that cannot parse a frame drops the peer.
			n.stats.DecodeErrors++
			n.Disconnect(e.link)
			return true
		}
		if f, ok := m.(*wire.Traffic); ok && n.fates != nil {
			// The tracer looks at the frame as it arrived: the Router
			// updates it in place.
			in := *f
			n.apply(node, n.traceTraffic(node, &in, e.hops, func() []router.Action {
				return node.Router.HandleFrame(n.Now(), e.port, m)
			}), e.hops)
			return true
		}
		n.apply(node, node.Router.HandleFrame(n.Now(), e.port, m), e.hops)
	}
	return true
}

// RunUntil processes every event up to and including time t, then sets the
// clock to t.
func (n *Network) RunUntil(t time.Time) {
	end := t.Sub(n.cfg.Start)
	for n.queue.Len() > 0 && n.queue.items[0].at <= end {
		n.Step()
	}
	if end > n.now {
		n.now = end
	}
}

// RunFor runs the network for d of virtual time.
func (n *Network) RunFor(d time.Duration) { n.RunUntil(n.Now().Add(d)) }
