package overlay

import (
	"bytes"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/overlay/wire"
)

// frameTotals are one node's traffic counters as exposed: the node-wide
// totals and the sum over its peers.
type frameTotals struct{ nodeIn, nodeOut, peersIn, peersOut uint64 }

func trafficTotals(n *Node) frameTotals {
	st := n.Stats()
	v := frameTotals{nodeIn: st.FramesIn["traffic"].Frames, nodeOut: st.FramesOut["traffic"].Frames}
	for _, p := range n.Peers() {
		v.peersIn += p.In["traffic"].Frames
		v.peersOut += p.Out["traffic"].Frames
	}
	return v
}

// TestFramesCountedOnce sends N Traffic frames a→c over a line a–b–c and
// checks that every exposed counter moved by exactly N: a frame is counted
// once where it crosses a port, and the node totals are derived from the
// ports, not counted a second time beside them.
func TestFramesCountedOnce(t *testing.T) { synctest.Test(t, testFramesCountedOnce) }

// testFramesCountedOnce runs in a synctest bubble (the nodes and their
// links are goroutines, channels and timers), so that it can wait for the
// line to be quiet rather than sleep and hope it is.
func testFramesCountedOnce(t *testing.T) {
	a, b, c := line(t)
	waitDelivery(t, a, c, []byte("route up"), 20*time.Second)
	// Once every goroutine waits, nothing is in flight: stray resends of
	// the probe have arrived or been dropped, and nothing else sends
	// Traffic.
	synctest.Wait()
	for len(c.Deliveries()) > 0 {
		d := <-c.Deliveries()
		d.Release()
	}
	for _, N := range []int{1, 7, 100} {
		before := map[*Node]frameTotals{a: trafficTotals(a), b: trafficTotals(b), c: trafficTotals(c)}
		for i := range N {
			if err := a.SendBuffer(c.PublicKey(), []byte(fmt.Sprintf("%d/%d", N, i)), 0); err != nil {
				t.Fatal(err)
			}
			d := <-c.Deliveries()
			if !bytes.Equal(d.Payload, []byte(fmt.Sprintf("%d/%d", N, i))) {
				t.Fatalf("delivery %q, want %d/%d", d.Payload, N, i)
			}
			d.Release()
		}
		// b counts a frame it forwards just after handing it to the link,
		// so c may hold the frame first: wait for every count to land.
		synctest.Wait()
		n := uint64(N)
		for _, tc := range []struct {
			name string
			node *Node
			want frameTotals // deltas
		}{
			{"source a", a, frameTotals{nodeOut: n, peersOut: n}},
			{"forwarder b", b, frameTotals{nodeIn: n, nodeOut: n, peersIn: n, peersOut: n}},
			{"destination c", c, frameTotals{nodeIn: n, peersIn: n}},
		} {
			now, was := trafficTotals(tc.node), before[tc.node]
			got := frameTotals{now.nodeIn - was.nodeIn, now.nodeOut - was.nodeOut, now.peersIn - was.peersIn, now.peersOut - was.peersOut}
			if got != tc.want {
				t.Errorf("N=%d, %s: counters moved by %+v, want %+v", N, tc.name, got, tc.want)
			}
		}
	}
}

// TestTotalsSurviveDetach: the node totals keep a departed peering's
// frames, and a new peering on the same port starts from zero.
func TestTotalsSurviveDetach(t *testing.T) { synctest.Test(t, testTotalsSurviveDetach) }

// testTotalsSurviveDetach runs in a synctest bubble, to wait for b's
// counts to land as testFramesCountedOnce does.
func testTotalsSurviveDetach(t *testing.T) {
	a, b, c := line(t)
	waitDelivery(t, a, c, []byte("route up"), 20*time.Second)
	synctest.Wait()
	st := b.Stats()
	in, out := st.FramesIn["traffic"].Frames, st.FramesOut["traffic"].Frames
	if in == 0 || out == 0 {
		t.Fatalf("b forwarded nothing: in %d out %d", in, out)
	}
	port := findPort(t, b, a.PublicKey())
	b.Detach(port, nil)
	st = b.Stats()
	if st.FramesIn["traffic"].Frames < in || st.FramesOut["traffic"].Frames < out {
		t.Fatalf("totals went back after detach: in %d→%d out %d→%d", in, st.FramesIn["traffic"].Frames, out, st.FramesOut["traffic"].Frames)
	}
	other := newNode(t, 4, Config{})
	connect(t, b, other)
	for _, p := range b.Peers() {
		if p.Info.Key == other.PublicKey() && p.In["traffic"].Frames != 0 {
			t.Fatalf("new peering on port %d inherits %d traffic frames", p.Port, p.In["traffic"].Frames)
		}
	}
}

// TestLinkQueueDropsCountedOnce: a frame the link refuses is counted once,
// on its port; the node's link_queue_full is their sum, also after the
// peering has gone.
func TestLinkQueueDropsCountedOnce(t *testing.T) {
	a := newNode(t, 1, Config{})
	// No room and no reader: every frame the node queues is refused.
	full := &memLink{queue: make(chan []byte), done: make(chan struct{})}
	port, err := a.Attach(PeerInfo{Key: wire.PublicKeyOf(testhelp.SeedKey(2)), URI: "full"}, full)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		a.SendBuffer(wire.PublicKeyOf(testhelp.SeedKey(2)), []byte{byte(i)}, 0)
	}
	ps := a.Peers()
	if len(ps) != 1 || ps[0].QueueDrops == 0 {
		t.Fatalf("peers %+v: the refused frames were not counted on the port", ps)
	}
	refused := ps[0].QueueDrops
	if got := a.Stats().Drops["link_queue_full"]; got != refused {
		t.Fatalf("link_queue_full %d, want the port's %d", got, refused)
	}
	a.Detach(port, nil)
	if got := a.Stats().Drops["link_queue_full"]; got != refused {
		t.Fatalf("link_queue_full %d after detach, want %d", got, refused)
	}
}
