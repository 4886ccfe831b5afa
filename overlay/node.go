package overlay

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pineconed/pineconed/internal/bufpool"
	"github.com/pineconed/pineconed/overlay/router"
	"github.com/pineconed/pineconed/overlay/wire"
)

// Defaults for Config.
const (
	// DefaultDeliveryQueue is how many delivered payloads may wait for the
	// application before new ones are dropped.
	DefaultDeliveryQueue = 1024
	// DefaultDeliveryQueueBytes caps the buffer bytes (capacity) those
	// payloads hold, so that 1 024 large packets cannot hold 64 MiB.
	DefaultDeliveryQueueBytes = 8 << 20
)

// Errors returned by the node.
var (
	ErrClosed     = errors.New("overlay node closed")
	ErrNoFreePort = errors.New("no free switch ports")
	ErrTooLarge   = errors.New("payload does not fit in one Pinecone frame")
)

// Config tunes a Node. The zero value is usable. The node holds a peering
// on every free port (router.MaxPort of them); max_peers, the operator's
// bound, is overlay/peers' to enforce, where every peering is admitted.
type Config struct {
	// DeliveryQueue bounds payloads delivered to this node and not yet
	// released, in payloads; DeliveryQueueBytes in buffer bytes.
	DeliveryQueue      int
	DeliveryQueueBytes int
	// Router are the options of the routing state machine.
	Router router.Options
	// Logger receives peer and tree events; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. Tests replace it.
	Now func() time.Time
}

// Delivery is a Traffic payload routed to this node.
type Delivery struct {
	// Source is the key the frame claims to come from. The overlay does not
	// authenticate it; the session layer does.
	Source wire.PublicKey
	// Destination is the frame's destination key. It is not always ours:
	// SNEK hands a frame for a key that does not exist to that key's
	// successor, which address lookups rely on.
	Destination wire.PublicKey
	// Payload is owned by the receiver until it calls Release, which may
	// change it in place (decrypt it). It lies in an internal/bufpool
	// buffer: for a frame from a link, the very buffer the link read the
	// frame into, so a delivered payload is never copied.
	Payload []byte

	// buf is the pool buffer Payload lies in; nil means Payload itself.
	buf []byte
	// held is the node's count of delivery bytes not yet released.
	held *atomic.Int64
}

// Take hands the internal/bufpool buffer the payload lies in (from its
// start) to the caller instead of the pool: a receiver that passes the
// payload on without copying it (to a writer that gives the buffer to
// bufpool.Put once done) takes it. Its bytes leave the delivery queue's
// budget as with Release. Call exactly one of Take and Release.
func (d Delivery) Take() []byte {
	b := d.buf
	if b == nil {
		b = d.Payload
	}
	if d.held != nil {
		d.held.Add(-int64(cap(b)))
	}
	return b
}

// Release gives the payload's buffer back to the pool and its bytes back
// to the delivery queue's budget. The receiver calls it exactly once for
// every Delivery it took from Node.Deliveries, when it no longer uses the
// payload; until then the payload counts against DeliveryQueueBytes, so a
// receiver that holds on to payloads eventually sees new ones dropped.
func (d Delivery) Release() { bufpool.Put(d.Take()) }

// Node is a running Pinecone node. All methods are safe for concurrent use.
type Node struct {
	key    wire.PublicKey
	cfg    Config
	logger *slog.Logger
	now    func() time.Time

	// mu guards the state machine and port allocation. Forwarding traffic
	// never takes it.
	mu     sync.Mutex
	router *router.Router
	closed bool

	// snap is the routing snapshot traffic is forwarded with; ports holds
	// the link of each port. Both are read without mu.
	snap  atomic.Pointer[router.Snapshot]
	ports [router.MaxPort + 1]atomic.Pointer[peer]
	// portStats count each port's frames over all its peerings; the
	// node's frame totals are their sum.
	portStats [router.MaxPort + 1]portCounters

	deliveries chan Delivery
	// direct, when set, takes the payloads links bring to us on their own
	// goroutines (HandleDeliveries).
	direct atomic.Pointer[func(Delivery)]
	// deliveryBytes is the buffer capacity of the deliveries queued or
	// held by the receiver and not yet released.
	deliveryBytes atomic.Int64
	stats         nodeCounters
	// routes holds one signal while a routing change is unread; changes
	// that come before it is read merge into it.
	routes chan struct{}

	poke chan struct{}
	stop chan struct{}
	wg   sync.WaitGroup
}

// peer is the node's record of one attached link.
type peer struct {
	port  router.Port
	info  PeerInfo
	link  Link
	since time.Time
	// detaching is set once the node has asked the link to close, so a
	// second protocol error does not close it again.
	detaching atomic.Bool
	// counters are the port's (see portCounters); base is their reading
	// when this peering was attached.
	counters *portCounters
	base     portBaseline
}

// New starts a node with the given identity. Close stops it.
func New(priv ed25519.PrivateKey, cfg Config) *Node {
	if cfg.DeliveryQueue <= 0 {
		cfg.DeliveryQueue = DefaultDeliveryQueue
	}
	if cfg.DeliveryQueueBytes <= 0 {
		cfg.DeliveryQueueBytes = DefaultDeliveryQueueBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	n := &Node{
		key:        wire.PublicKeyOf(priv),
		cfg:        cfg,
		logger:     logger,
		now:        cfg.Now,
		router:     router.New(priv, cfg.Router),
		deliveries: make(chan Delivery, cfg.DeliveryQueue),
		routes:     make(chan struct{}, 1),
		poke:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
	}
	n.mu.Lock()
	n.apply(n.router.Tick(n.now()))
	n.mu.Unlock()
	n.wg.Add(1)
	go n.tickLoop()
	return n
}

// PublicKey is the node's identity.
func (n *Node) PublicKey() wire.PublicKey { return n.key }

// Close detaches every link and stops the timer. Deliveries not yet read
// are discarded.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	close(n.stop)
	var links []*peer
	for i := range n.ports {
		if p := n.ports[i].Load(); p != nil {
			links = append(links, p)
		}
	}
	n.mu.Unlock()
	for _, p := range links {
		p.link.Close(ErrClosed)
	}
	n.wg.Wait()
	return nil
}

// Attach registers a peering whose handshake proved info.Key, on the lowest
// free port. The router's first frame for it (our root announcement signed
// for that port) is queued on l before Attach returns.
func (n *Node) Attach(info PeerInfo, l Link) (router.Port, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return 0, ErrClosed
	}
	free, others := router.Port(0), 0
	for port := router.Port(1); port <= router.MaxPort; port++ {
		p := n.ports[port].Load()
		switch {
		case p == nil && free == 0:
			free = port
		case p != nil && p.info.Key == info.Key:
			others++
		}
	}
	if free == 0 {
		return 0, fmt.Errorf("attach %s: %w (%d ports)", info.Key, ErrNoFreePort, router.MaxPort)
	}
	c := &n.portStats[free]
	p := &peer{port: free, info: info, link: l, since: n.now(), counters: c, base: c.load()}
	n.ports[free].Store(p)
	n.apply(n.router.PeerUp(n.now(), free, info.Key, info.Type))
	// overlay/peers logs the user-facing "peer connected" line; this one
	// is for following the node's port bookkeeping.
	n.logger.Debug("port attached", "port", uint8(free), "peer", info.Key.String(), "uri", info.URI,
		"transport", info.Transport, "inbound", info.Inbound, "origin", info.Origin, "iface", info.Interface)
	if others > 0 {
		// Two links to one key are legal (the router prefers one); the
		// operator may not have meant both.
		n.logger.Info("another link to this key is already up; keeping both", "peer", info.Key,
			"port", uint8(free), "links", others+1)
	}
	return free, nil
}

// Detach tells the node that the link on port has ended. Links call it
// exactly once per successful Attach.
func (n *Node) Detach(port router.Port, reason error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if port == 0 || port > router.MaxPort {
		return
	}
	p := n.ports[port].Load()
	if p == nil {
		return
	}
	n.ports[port].Store(nil)
	if !n.closed {
		n.apply(n.router.PeerDown(n.now(), port))
	}
	n.logger.Debug("port detached", "port", uint8(port), "peer", p.info.Key.String(), "uri", p.info.URI, "reason", errString(reason))
}

// Receive handles one whole frame read from the link on port. It owns frame,
// an internal/bufpool buffer (the link.Receiver contract): a Traffic frame
// is delivered or forwarded in it, anything else goes back to the pool
// once handled. A non-nil error means the peer broke the protocol and the
// link must close with that reason.
func (n *Node) Receive(port router.Port, frame []byte) error {
	p := n.peerAt(port)
	if p == nil {
		bufpool.Put(frame)
		return fmt.Errorf("frame on %s, which has no peering", port)
	}
	m, err := wire.Decode(frame)
	if err != nil {
		bufpool.Put(frame)
		return fmt.Errorf("malformed frame from %s: %w", p.info.Key, err)
	}
	t := m.Type()
	p.counters.in.add(t, len(frame))
	if f, ok := m.(*wire.Traffic); ok {
		// The payload ends the frame; the header in front of it is the
		// room a forwarded frame's new header is written in.
		n.forward(f, port, frame[:len(frame)-len(f.Payload)])
		return nil
	}
	// The router copies what it keeps of a frame.
	defer bufpool.Put(frame)
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return ErrClosed
	}
	var own error
	for _, a := range n.router.HandleFrame(n.now(), port, m) {
		if a.Kind == router.ActionDisconnect && a.Port == port {
			own = a.Reason
			continue
		}
		n.do(a)
	}
	n.publish()
	n.mu.Unlock()
	n.pokeTimer()
	if own != nil {
		p.detaching.Store(true)
		return fmt.Errorf("peer %s on %s: %w", p.info.Key, port, own)
	}
	return nil
}

// KeepaliveSent counts a Keepalive that the link on port made and wrote
// itself: links send their keepalives without the node (see
// overlay/link), and the node's frames_out counters must include them.
func (n *Node) KeepaliveSent(port router.Port, size int) {
	if port != 0 && port <= router.MaxPort {
		n.portStats[port].out.add(wire.TypeKeepalive, size)
	}
}

// SendBuffer sends the payload at buf[off:] to the node with key dst, by
// tree coordinates when they are known and by SNEK otherwise. buf comes
// from internal/bufpool (or is the caller's to give away) and its off
// bytes in front of the payload are free: the frame header is written
// there, so the frame is built without copying the payload (when the
// header needs more room, or off is 0, the frame is built in a new
// buffer). SendBuffer owns buf from the call on, even when it returns an
// error; a caller that keeps its payload passes a copy. Like the reference
// it is best effort: a frame dropped for lack of a route or a full queue
// is counted, not reported. It reports only payloads too large for one
// frame.
func (n *Node) SendBuffer(dst wire.PublicKey, buf []byte, off int) error {
	s := n.snap.Load()
	f := s.NewTraffic(n.now(), dst, buf[off:])
	if len(f.Payload) > wire.MaxFrameSize-f.Overhead() {
		bufpool.Put(buf)
		return fmt.Errorf("%d bytes to %s: %w", len(f.Payload), dst, ErrTooLarge)
	}
	n.forward(&f, router.LocalPort, buf[:off])
	return nil
}

// MaxPayload is the largest payload SendBuffer accepts when neither side's
// coordinates need more than coordBytes bytes each.
func MaxPayload(coordBytes int) int { return wire.MaxTrafficPayload(coordBytes) }

// forward routes a Traffic frame with the current snapshot, from the
// calling goroutine. room, when not nil, is the free part of a bufpool
// buffer that f.Payload directly follows; forward owns that buffer, and
// delivers or forwards the payload in it.
func (n *Node) forward(f *wire.Traffic, from router.Port, room []byte) {
	v := n.snap.Load().Route(n.now(), f, from)
	switch v.Kind {
	case router.VerdictDeliver:
		if from == router.LocalPort {
			// A send to ourselves: queued as a copy in the smallest
			// buffer that holds it (a sender's large buffer would
			// count 64 KiB against the queue for a lookup), never
			// handed to the direct receiver, so that the sender is
			// not called back while it sends.
			n.deliver(f.Source, f.Destination, f.Payload, nil, false)
			break
		}
		// From a link: the payload goes on in the buffer the link read
		// it into, on the link's goroutine if a direct receiver waits.
		n.deliver(f.Source, f.Destination, f.Payload, room[:len(room)+len(f.Payload)], true)
		return
	case router.VerdictForward:
		p := n.peerAt(v.Port)
		if p == nil {
			n.stats.drop(dropNoLink)
			break
		}
		var frame []byte
		var err error
		if h := f.Overhead(); room != nil && h <= len(room) {
			// The header goes in place, just in front of the payload,
			// which reaches to the end of room's capacity.
			frame = room[len(room)-h : len(room)+len(f.Payload)]
			var hdr []byte
			if hdr, err = f.AppendHeader(frame[:0]); err == nil && len(hdr) != h {
				err = fmt.Errorf("traffic header of %d bytes, expected %d", len(hdr), h)
			}
		} else {
			// f.Payload lives in room's buffer until Append has copied
			// it. That buffer is not given back: its headroom is too
			// small for this flow's header, and dropping it lets the
			// pool make buffers with the full headroom again.
			frame, err = f.Append(bufpool.Alloc(f.Overhead() + len(f.Payload))[:0])
		}
		if err != nil {
			bufpool.Put(frame)
			n.stats.drop(dropEncode)
			return
		}
		n.send(p, wire.TypeTraffic, frame, false)
		return
	}
	bufpool.Put(room)
}

// deliver hands payload to the application. buf, when not nil, is the
// bufpool buffer payload lies in, which deliver owns, and the payload goes
// on in it; otherwise payload is only read during the call and is copied
// into the smallest bufpool buffer that holds it. With direct set and a
// receiver registered by HandleDeliveries, the receiver takes it on this
// goroutine; otherwise it is queued on Deliveries if the queue's bounds in
// payloads and in buffer bytes allow.
func (n *Node) deliver(src, dst wire.PublicKey, payload, buf []byte, direct bool) {
	if buf == nil {
		buf = bufpool.Alloc(len(payload))
		copy(buf, payload)
		payload = buf
	}
	d := Delivery{Source: src, Destination: dst, Payload: payload, buf: buf}
	if direct {
		if f := n.direct.Load(); f != nil {
			(*f)(d)
			return
		}
	}
	d.held = &n.deliveryBytes
	size := int64(cap(buf))
	if n.deliveryBytes.Add(size) <= int64(n.cfg.DeliveryQueueBytes) {
		select {
		case n.deliveries <- d:
			return
		default:
		}
	}
	d.Release()
	n.stats.drop(dropDeliveryQueueFull)
}

// DeliveryBytes is the buffer capacity of the deliveries queued or held by
// the receiver and not yet released: what counts against
// Config.DeliveryQueueBytes.
func (n *Node) DeliveryBytes() int64 { return n.deliveryBytes.Load() }

// Deliveries is the queue of payloads routed to this node. It is never
// closed; select on it together with your own stop signal. Release every
// Delivery taken from it.
func (n *Node) Deliveries() <-chan Delivery { return n.deliveries }

// HandleDeliveries makes f the receiver of the payloads that links bring
// to this node: from the call on, each is handed to f on the goroutine of
// the link that read it instead of waiting in the Deliveries queue for
// another goroutine, which saves a goroutine hand-off per packet. f owns
// each Delivery (it calls Release, or Take) and should
// not block: the link reads nothing more until it returns. It may run on
// several links' goroutines at once. Payloads the node delivers from
// elsewhere (a send to our own key, the router's own deliveries) still go
// to Deliveries, so its reader keeps reading it. nil queues everything
// again; a call of the old f may still be running when this returns.
func (n *Node) HandleDeliveries(f func(Delivery)) {
	if f == nil {
		n.direct.Store(nil)
		return
	}
	n.direct.Store(&f)
}

// RoutesChanged signals that the node has gained a route since the last
// receive: a tree parent, a peer's first announcement, a new SNEK route or
// neighbour (router.EventRoutesChanged). Signals merge while unread, so a
// burst of changes wakes the reader once. The address resolver retries
// its pending lookups on it instead of waiting for their timers. It is
// never closed.
func (n *Node) RoutesChanged() <-chan struct{} { return n.routes }

// send queues frame on the peer's link and counts it.
func (n *Node) send(p *peer, t wire.FrameType, frame []byte, protocol bool) {
	if !p.link.Send(frame, protocol) {
		p.counters.queueDrops.Add(1)
		return
	}
	p.counters.out.add(t, len(frame))
}

func (n *Node) peerAt(port router.Port) *peer {
	if port == 0 || port > router.MaxPort {
		return nil
	}
	return n.ports[port].Load()
}

// apply carries out the router's actions and publishes the new snapshot.
// Called with mu held, so frames reach each link in the router's order.
func (n *Node) apply(actions []router.Action) {
	for _, a := range actions {
		n.do(a)
	}
	n.publish()
}

// publish stores the snapshot the router's rebuild policy gives for now
// (router.Publish): at once after a tree or peer change, at a bounded rate
// after SNEK route changes. Snapshots are immutable, so forwarding sees
// either the old state or the new one, never a mixture.
func (n *Node) publish() { n.snap.Store(n.router.Publish(n.now())) }

// do carries out one action with mu held.
func (n *Node) do(a router.Action) {
	switch a.Kind {
	case router.ActionSend:
		if p := n.peerAt(a.Port); p != nil {
			n.send(p, a.Type, a.Frame, a.Protocol)
		}
	case router.ActionDeliver:
		n.deliver(a.Source, a.Destination, a.Payload, nil, false)
	case router.ActionDisconnect:
		if p := n.peerAt(a.Port); p != nil && !p.detaching.Swap(true) {
			n.logger.Warn("dropping peer for a protocol error", "port", uint8(a.Port), "peer", p.info.Key.String(), "reason", errString(a.Reason))
			// Safe with mu held: Close never calls back into the node
			// (the Link contract).
			p.link.Close(a.Reason)
		}
	case router.ActionEvent:
		n.logEvent(a.Event)
	}
}

// logEvent logs and counts a router event, and passes route changes on to
// RoutesChanged.
func (n *Node) logEvent(e router.Event) {
	switch e.Kind {
	case router.EventRootChanged:
		n.stats.rootChanges.Add(1)
		n.logger.Info("tree root changed", "root", e.Root.Key.String(), "root_seq", e.Root.Seq, "coords", e.Coords.String())
	case router.EventRoutesChanged:
		select {
		case n.routes <- struct{}{}:
		default:
		}
	case router.EventParentChanged:
		// As getSelf says it: port 0 and no parent key for a root.
		parent := "none"
		if p := n.peerAt(e.Port); p != nil {
			parent = p.info.Key.String()
		}
		n.logger.Info("tree parent changed", "port", e.Port.Number(), "parent", parent, "coords", e.Coords.String())
	case router.EventKeyClone:
		// The router reports this once per peering; no rate limit is
		// needed here. The peer is not dropped: it only passes the
		// clone's announcements on, and the protocol treats them as
		// loops.
		attrs := []any{"port", e.Port.Number(), "peer", e.Key.String(), "root", e.Root.Key.String(), "root_seq", e.Root.Seq}
		if p := n.peerAt(e.Port); p != nil {
			attrs = append(attrs, "uri", p.info.URI, "transport", p.info.Transport, "origin", p.info.Origin, "iface", p.info.Interface, "inbound", p.info.Inbound)
		}
		n.logger.Error("another node uses our public key: a copy of our key file runs elsewhere; its tree announcements arrive on this link", attrs...)
	default:
		n.logger.Debug("router event", "event", e.String())
	}
}

// tickLoop drives the router's maintenance: bootstraps, expiry, root
// refresh, wakeups.
func (n *Node) tickLoop() {
	defer n.wg.Done()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-n.poke:
		case <-timer.C:
			n.mu.Lock()
			if !n.closed {
				n.apply(n.router.Tick(n.now()))
			}
			n.mu.Unlock()
		}
		n.mu.Lock()
		wait := n.router.NextTick().Sub(n.now())
		n.mu.Unlock()
		timer.Reset(min(max(wait, time.Millisecond), router.MaintenanceInterval))
	}
}

// pokeTimer makes the tick loop look at NextTick again: a control frame may
// have made maintenance due sooner (a reparent wait, a bootstrap soon).
func (n *Node) pokeTimer() {
	select {
	case n.poke <- struct{}{}:
	default:
	}
}

func errString(err error) string {
	if err == nil {
		return "closed"
	}
	return err.Error()
}
