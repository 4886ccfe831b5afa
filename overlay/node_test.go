package overlay

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pineconed/pineconed/internal/limits"
	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/overlay/router"
	"github.com/pineconed/pineconed/overlay/wire"
)

// memLink is an in-memory Link: frames sent on it are handed, in order, by
// its own goroutine to the remote node's Receive. Closing one end closes
// the other, as a TCP connection would. As the Link contract asks, Close
// does not call back into the node: the goroutine detaches once it stops.
type memLink struct {
	local, remote         *Node
	localPort, remotePort router.Port
	queue                 chan []byte
	peer                  *memLink
	once                  sync.Once
	done                  chan struct{}
	wg                    sync.WaitGroup
	reason                atomic.Value
}

func (l *memLink) Send(frame []byte, protocol bool) bool {
	select {
	case <-l.done:
		return false
	default:
	}
	select {
	case l.queue <- frame:
		return true
	default:
		return false
	}
}

func (l *memLink) Close(reason error) {
	first := false
	l.once.Do(func() {
		first = true
		if reason != nil {
			l.reason.Store(reason)
		}
		close(l.done)
	})
	if first && l.peer != nil {
		l.peer.Close(errors.New("remote closed"))
	}
}

func (l *memLink) run() {
	defer l.wg.Done()
	defer func() {
		reason, _ := l.reason.Load().(error)
		l.local.Detach(l.localPort, reason)
	}()
	for {
		select {
		case <-l.done:
			return
		case f := <-l.queue:
			if err := l.remote.Receive(l.remotePort, f); err != nil {
				l.peer.Close(err)
				return
			}
		}
	}
}

// connect peers a and b with in-memory links and returns a's end.
func connect(t *testing.T, a, b *Node) *memLink {
	t.Helper()
	ab := &memLink{local: a, remote: b, queue: make(chan []byte, 256), done: make(chan struct{})}
	ba := &memLink{local: b, remote: a, queue: make(chan []byte, 256), done: make(chan struct{}), peer: ab}
	ab.peer = ba
	var err error
	if ab.localPort, err = a.Attach(PeerInfo{Key: b.PublicKey(), URI: "mem", Transport: "mem"}, ab); err != nil {
		t.Fatal(err)
	}
	if ba.localPort, err = b.Attach(PeerInfo{Key: a.PublicKey(), URI: "mem", Transport: "mem", Inbound: true}, ba); err != nil {
		t.Fatal(err)
	}
	ab.remotePort, ba.remotePort = ba.localPort, ab.localPort
	ab.wg.Add(1)
	ba.wg.Add(1)
	go ab.run()
	go ba.run()
	t.Cleanup(func() {
		ab.Close(errors.New("test over"))
		ab.wg.Wait()
		ba.wg.Wait()
	})
	return ab
}

func newNode(t *testing.T, seed byte, cfg Config) *Node {
	t.Helper()
	n := New(testhelp.SeedKey(seed), cfg)
	t.Cleanup(func() { n.Close() })
	return n
}

// line builds the nodes of seeds 1, 2 and 3 and links them a–b–c.
func line(t *testing.T) (a, b, c *Node) {
	t.Helper()
	a, b, c = newNode(t, 1, Config{}), newNode(t, 2, Config{}), newNode(t, 3, Config{})
	connect(t, a, b)
	connect(t, b, c)
	return a, b, c
}

// waitDelivery sends payload from src to dst every 200 ms until it
// arrives, for at most limit, and returns how long that took.
func waitDelivery(t *testing.T, src, dst *Node, payload []byte, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	testhelp.WaitFor(t, fmt.Sprintf("%q from %s to %s", payload, src.PublicKey(), dst.PublicKey()), limit, func() bool {
		if err := src.SendBuffer(dst.PublicKey(), bytes.Clone(payload), 0); err != nil {
			t.Fatal(err)
		}
		resend := time.After(200 * time.Millisecond)
		for {
			select {
			case d := <-dst.Deliveries():
				got := d.Source == src.PublicKey() && bytes.Equal(d.Payload, payload)
				d.Release()
				if got {
					return true
				}
			case <-resend:
				return false
			}
		}
	})
	return time.Since(start)
}

func TestNodesRouteOverALine(t *testing.T) {
	a, b, c := line(t)
	d1 := waitDelivery(t, a, c, []byte("a to c"), 20*time.Second)
	d2 := waitDelivery(t, c, a, []byte("c to a"), 20*time.Second)
	t.Logf("first delivery a→c after %s, c→a after %s", d1, d2)
	if st := b.Stats(); st.FramesOut["traffic"].Frames == 0 {
		t.Errorf("b forwarded no traffic: %+v", st.FramesOut)
	}
}

func TestProtocolViolationDropsOnlyThatPeer(t *testing.T) {
	a, b, c := line(t)
	waitDelivery(t, a, c, []byte("before"), 20*time.Second)

	// A frame with a forged signature, as if from b on a's port for b.
	port := findPort(t, a, b.PublicKey())
	forged := (&wire.TreeAnnouncement{Root: wire.Root{Key: c.PublicKey(), Seq: 99}}).Signed(testhelp.SeedKey(9), 1)
	forged.Hops[0].Key = c.PublicKey()
	frame, _ := forged.Append(nil)
	if err := a.Receive(port, frame); err == nil {
		t.Fatal("forged announcement accepted")
	}
	if err := a.Receive(port, []byte("pine\x00\x00\x00\x00\x00\x05")); err == nil {
		t.Fatal("malformed frame accepted")
	}
	// The peering with b is the link's to close; the node must not crash
	// and must keep routing once b reconnects.
	connect(t, a, b)
	waitDelivery(t, a, c, []byte("after"), 20*time.Second)
}

func findPort(t *testing.T, n *Node, key wire.PublicKey) router.Port {
	t.Helper()
	for _, p := range n.Peers() {
		if p.Info.Key == key {
			return p.Port
		}
	}
	t.Fatalf("%s has no peer %s", n.PublicKey(), key)
	return 0
}

// The node's only bound is its ports (max_peers is overlay/peers'): all
// 253 fill, the next Attach is refused, and a freed port is taken again.
func TestPortsRunOut(t *testing.T) {
	a := newNode(t, 1, Config{})
	for i := range int(router.MaxPort) {
		l := &memLink{queue: make(chan []byte, 8), done: make(chan struct{})}
		if _, err := a.Attach(PeerInfo{Key: wire.PublicKeyOf(testhelp.SeedKey(byte(2 + i%200)))}, l); err != nil {
			t.Fatalf("peer %d: %v", i+1, err)
		}
	}
	l := &memLink{done: make(chan struct{})}
	if _, err := a.Attach(PeerInfo{Key: wire.PublicKeyOf(testhelp.SeedKey(250))}, l); !errors.Is(err, ErrNoFreePort) {
		t.Fatalf("peer %d: %v, want ErrNoFreePort", router.MaxPort+1, err)
	}
	a.Detach(7, nil)
	if port, err := a.Attach(PeerInfo{Key: wire.PublicKeyOf(testhelp.SeedKey(250))}, &memLink{queue: make(chan []byte, 8), done: make(chan struct{})}); err != nil || port != 7 {
		t.Fatalf("after freeing port 7: port %d, %v", port, err)
	}
}

// One PeerStatus is one peering, even when its port is freed and taken
// again: the admin listing reads info, link and counters from it, where it
// once joined two registries by port and could pair a new peering with the
// old one's link. Duplicate is computed here, once.
func TestPeerStatusFollowsPortReuse(t *testing.T) {
	a := newNode(t, 1, Config{})
	keyB, keyC := wire.PublicKeyOf(testhelp.SeedKey(2)), wire.PublicKeyOf(testhelp.SeedKey(3))
	first := &memLink{queue: make(chan []byte, 8), done: make(chan struct{})}
	port, err := a.Attach(PeerInfo{Key: keyB, URI: "first", Origin: OriginStatic}, first)
	if err != nil {
		t.Fatal(err)
	}
	a.Detach(port, nil)
	second := &memLink{queue: make(chan []byte, 8), done: make(chan struct{})}
	if p2, err := a.Attach(PeerInfo{Key: keyC, URI: "second", Origin: OriginLAN, Interface: "lan0"}, second); err != nil || p2 != port {
		t.Fatalf("second peering on port %d (%v), want the freed port %d", p2, err, port)
	}
	third := &memLink{queue: make(chan []byte, 8), done: make(chan struct{})}
	if _, err := a.Attach(PeerInfo{Key: keyC, URI: "third", Origin: OriginListener, Inbound: true}, third); err != nil {
		t.Fatal(err)
	}
	ps := a.Peers()
	if len(ps) != 2 {
		t.Fatalf("%d peers, want 2", len(ps))
	}
	got := ps[0]
	if got.Port != port || got.Link != second || got.Info.URI != "second" || got.Info.Origin != OriginLAN ||
		got.Info.Interface != "lan0" || got.Info.Key != keyC {
		t.Fatalf("port %d reports %+v (link %p), want the second peering (link %p)", port, got.Info, got.Link, second)
	}
	if !ps[0].Duplicate || !ps[1].Duplicate || ps[1].Link != third {
		t.Fatalf("two links to one key not both marked duplicate: %+v", ps)
	}
	if pg := a.Peerings(); len(pg) != 2 || pg[0].Port != port || pg[0].Link != second || pg[0].Info != got.Info || pg[1].Link != third {
		t.Fatalf("Peerings %+v disagree with Peers", pg)
	}
}

func TestOriginNames(t *testing.T) {
	testhelp.CheckNames(t, numOrigins)
	for o := range numOrigins {
		if o.String() == "unknown" {
			t.Errorf("origin %d is named unknown, the out-of-table name", o)
		}
	}
	if got := Origin(200).String(); got != "unknown" {
		t.Fatalf("out-of-table origin named %q", got)
	}
	for o, want := range map[Origin]bool{OriginStatic: true, OriginAdmin: true, OriginCard: true, OriginListener: false, OriginLAN: false} {
		if o.Chosen() != want {
			t.Errorf("%s.Chosen() = %v", o, !want)
		}
	}
}

func TestSendBufferRefusesOversizePayload(t *testing.T) {
	a := newNode(t, 1, Config{})
	if err := a.SendBuffer(wire.PublicKeyOf(testhelp.SeedKey(2)), make([]byte, 65535), 0); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize payload: %v", err)
	}
	if err := a.SendBuffer(wire.PublicKeyOf(testhelp.SeedKey(2)), make([]byte, MaxPayload(64)), 0); err != nil {
		t.Fatalf("MaxPayload-sized payload: %v", err)
	}
}

func TestDeliveryQueueIsBounded(t *testing.T) {
	a := newNode(t, 1, Config{DeliveryQueue: 4})
	for i := 0; i < 10; i++ {
		a.SendBuffer(a.PublicKey(), []byte{byte(i)}, 0)
	}
	if got := len(a.Deliveries()); got != 4 {
		t.Fatalf("%d deliveries queued, want 4", got)
	}
	if st := a.Stats(); st.Drops["delivery_queue_full"] != 6 {
		t.Fatalf("drops %v, want 6 delivery_queue_full", st.Drops)
	}
}

// The delivery queue counts the buffer capacity its payloads hold, and
// small payloads hold small buffers: 1-byte payloads fit 248-byte buffers
// (bufpool.Classes[0]), 60 KiB ones a 64 KiB buffer each.
func TestDeliveryQueueCountsBufferBytes(t *testing.T) {
	a := newNode(t, 1, Config{DeliveryQueue: 1000, DeliveryQueueBytes: 256 << 10})
	for range 500 {
		a.SendBuffer(a.PublicKey(), []byte{1}, 0)
	}
	if got := len(a.Deliveries()); got != 500 {
		t.Fatalf("%d small deliveries queued, want all 500 (248 bytes each)", got)
	}
	for range 500 {
		(<-a.Deliveries()).Release()
	}
	big := make([]byte, 60<<10)
	for range 10 {
		a.SendBuffer(a.PublicKey(), bytes.Clone(big), 0)
	}
	// 256 KiB holds three 64 KiB buffers, not four.
	if got := len(a.Deliveries()); got != 3 {
		t.Fatalf("%d large deliveries queued under a 256 KiB budget, want 3", got)
	}
	if st := a.Stats(); st.Drops["delivery_queue_full"] != 7 {
		t.Fatalf("drops %v, want 7 delivery_queue_full", st.Drops)
	}
	// A payload the receiver holds still counts; a released one does not.
	held := <-a.Deliveries()
	a.SendBuffer(a.PublicKey(), bytes.Clone(big), 0)
	if got := len(a.Deliveries()); got != 2 {
		t.Fatalf("%d queued while one is held, want 2", got)
	}
	held.Release()
	a.SendBuffer(a.PublicKey(), bytes.Clone(big), 0)
	if got := len(a.Deliveries()); got != 3 {
		t.Fatalf("%d queued after Release, want 3", got)
	}
}

func TestConcurrentSendAndChurn(t *testing.T) {
	a, _, c := line(t)
	waitDelivery(t, a, c, []byte("warm"), 20*time.Second)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				a.SendBuffer(c.PublicKey(), []byte(fmt.Sprintf("%d/%d", i, j)), 0)
				if j%64 == 0 {
					runtime.Gosched()
				}
			}
		}(i)
	}
	for i := 0; i < 5; i++ {
		l := connect(t, a, c)
		time.Sleep(50 * time.Millisecond)
		l.Close(errors.New("churn"))
	}
	close(stop)
	wg.Wait()
	waitDelivery(t, a, c, []byte("after churn"), 20*time.Second)
}

func TestCloseStopsEverything(t *testing.T) {
	testhelp.CheckNoLeak(t)
	a := New(testhelp.SeedKey(1), Config{})
	b := New(testhelp.SeedKey(2), Config{})
	ab := &memLink{local: a, remote: b, queue: make(chan []byte, 16), done: make(chan struct{})}
	ba := &memLink{local: b, remote: a, queue: make(chan []byte, 16), done: make(chan struct{}), peer: ab}
	ab.peer = ba
	ab.localPort, _ = a.Attach(PeerInfo{Key: b.PublicKey()}, ab)
	ba.localPort, _ = b.Attach(PeerInfo{Key: a.PublicKey()}, ba)
	ab.remotePort, ba.remotePort = ba.localPort, ab.localPort
	ab.wg.Add(1)
	ba.wg.Add(1)
	go ab.run()
	go ba.run()
	a.Close()
	b.Close()
	ab.wg.Wait()
	ba.wg.Wait()
	if _, err := a.Attach(PeerInfo{Key: b.PublicKey()}, ab); !errors.Is(err, ErrClosed) {
		t.Fatalf("attach after close: %v", err)
	}
}

// TestDisconnectClosesInline: a disconnect action closes the link at once,
// from the goroutine that holds the node's lock, with no goroutine of its
// own (the Link contract lets Close run under that lock); the link's own
// goroutine detaches the port afterwards.
func TestDisconnectClosesInline(t *testing.T) {
	testhelp.CheckNoLeak(t)
	a, b := newNode(t, 1, Config{}), newNode(t, 2, Config{})
	l := connect(t, a, b)
	reason := errors.New("protocol error made by the test")
	a.mu.Lock()
	a.do(router.Action{Kind: router.ActionDisconnect, Port: l.localPort, Reason: reason})
	closed := false
	select {
	case <-l.done:
		closed = true
	default:
	}
	a.mu.Unlock()
	if !closed {
		t.Fatal("the link was not closed by the time the disconnect action returned")
	}
	if got, _ := l.reason.Load().(error); got != reason {
		t.Fatalf("link closed with %v, want %v", got, reason)
	}
	testhelp.WaitFor(t, "the link to detach its port", 10*time.Second, func() bool {
		return a.peerAt(l.localPort) == nil
	})
}

// The log names the tree parent as getSelf does: its port and key, and port
// 0 with no parent once the node is the root again (issue 10: the log said
// port=255).
func TestParentChangeLogVocabulary(t *testing.T) {
	la, bufA := testhelp.NewLogger(t)
	lb, bufB := testhelp.NewLogger(t)
	a, b := newNode(t, 1, Config{Logger: la}), newNode(t, 2, Config{Logger: lb})
	l := connect(t, a, b)
	// The node with the lower key becomes the other's child.
	child, parent, buf := a, b, bufA
	if b.PublicKey().Less(a.PublicKey()) {
		child, parent, buf = b, a, bufB
	}
	testhelp.WaitFor(t, "a parent", 10*time.Second, func() bool { return child.Self().Parent != router.NoPort })
	port := child.Self().Parent
	l.Close(errors.New("test: parent gone"))
	testhelp.WaitFor(t, "root again", 10*time.Second, func() bool { return child.Self().Parent == router.NoPort })
	testhelp.WaitFor(t, "both parent changes logged", 5*time.Second, func() bool { return len(buf.Lines("tree parent changed")) == 2 })
	lines := buf.Lines("tree parent changed")
	if want := fmt.Sprintf("port=%d parent=%s ", port.Number(), parent.PublicKey()); !strings.Contains(lines[0], want) {
		t.Errorf("on getting a parent the log says\n%s\nwant %q in it", lines[0], want)
	}
	if want := "port=0 parent=none "; !strings.Contains(lines[1], want) {
		t.Errorf("on becoming root the log says\n%s\nwant %q in it", lines[1], want)
	}
}

// RoutesChanged wakes its reader when the node gains routes (here: a peer
// announces and becomes our parent or child), and not before.
func TestRoutesChangedSignal(t *testing.T) {
	a, b := newNode(t, 1, Config{}), newNode(t, 2, Config{})
	select {
	case <-a.RoutesChanged():
		t.Fatal("a lone node signalled a route change")
	default:
	}
	connect(t, a, b)
	select {
	case <-a.RoutesChanged():
	case <-time.After(5 * time.Second):
		t.Fatal("no route change signalled after a peer announced")
	}
}

// internal/limits restates the port count for config, which must not
// import the router; the two must agree.
func TestLimitsMatchRouter(t *testing.T) {
	if limits.MaxPeers != int(router.MaxPort) {
		t.Fatalf("limits.MaxPeers %d, router.MaxPort %d", limits.MaxPeers, router.MaxPort)
	}
}
