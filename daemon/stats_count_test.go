package daemon

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pineconed/pineconed/internal/testhelp"
)

// frameReading is what a node exposes about the frames it received:
// getStats' Traffic count and its count over every type, the sum of
// getPeers' frames_in over its peers (every type) and the Prometheus
// Traffic series.
type frameReading struct {
	traffic, all, peers uint64
	metric              string
}

// readFramesIn reads n's exposed receive counters, one request after the
// other.
func readFramesIn(t *testing.T, ctx context.Context, n *testNode) frameReading {
	t.Helper()
	var r frameReading
	st, err := n.client.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r.traffic = st.Frames["traffic"].FramesIn
	for _, c := range st.Frames {
		r.all += c.FramesIn
	}
	ps, err := n.client.Peers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		r.peers += p.FramesIn
	}
	for _, l := range strings.Split(scrapeMetrics(t, n.d), "\n") {
		if strings.HasPrefix(l, `pineconed_frames_total{direction="in",type="traffic"} `) {
			r.metric = strings.Fields(l)[1]
		}
	}
	return r
}

// settledFramesIn waits until b has received every Traffic frame a has
// queued to it (the two counters meet: nothing is in flight) and returns
// b's counters read while no frame arrived (getStats' total the same before
// and after the reading), so that readings compare exactly.
func settledFramesIn(t *testing.T, ctx context.Context, a, b *testNode) frameReading {
	t.Helper()
	var r frameReading
	sent := func() uint64 { return a.d.node.Stats().FramesOut["traffic"].Frames }
	testhelp.WaitFor(t, "b to have read every Traffic frame a sent, with no frame arriving meanwhile", 20*time.Second, func() bool {
		r = readFramesIn(t, ctx, b)
		again := readFramesIn(t, ctx, b)
		return r.all == again.all && r.traffic == sent()
	}, func() string { return fmt.Sprintf("a sent %d Traffic frames, b read %+v", sent(), r) })
	return r
}

// N Traffic frames sent from a to its peer b move each of b's exposed
// counters by N, not by a multiple of N: each frame is counted once in the
// overlay and the daemon only reads those counts. The readings are taken
// once nothing is in flight, so they compare exactly; a frame counted
// twice at b keeps b's count from ever meeting a's, and the wait fails.
func TestTrafficFramesCountedOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := startNode(t, "")
	b := startNode(t, fmt.Sprintf("static = [%q]", "tcp://"+a.d.ListenAddrs()[0]))
	// Payloads b's data path cannot parse: delivered, counted, dropped.
	send := func() {
		if err := a.d.node.SendBuffer(b.d.PublicKey(), []byte{0xff, 0xff}, 0); err != nil {
			t.Fatal(err)
		}
	}
	testhelp.WaitFor(t, "a route from a to b", 20*time.Second, func() bool {
		send()
		return readFramesIn(t, ctx, b).traffic > 0
	})
	// Only Traffic is compared exactly: nothing else sends Traffic
	// between two idle daemons.
	for _, N := range []uint64{1, 10, 50} {
		r0 := settledFramesIn(t, ctx, a, b)
		for range N {
			send()
		}
		r1 := settledFramesIn(t, ctx, a, b)
		if d := r1.traffic - r0.traffic; d != N {
			t.Errorf("N=%d: getStats traffic in moved by %d", N, d)
		}
		// getPeers counts every type, as getStats' total does: the N
		// frames and whatever else arrived meanwhile, once each.
		if dp, da := r1.peers-r0.peers, r1.all-r0.all; dp != da {
			t.Errorf("N=%d: getPeers frames_in moved by %d, getStats' frames in of every type by %d", N, dp, da)
		}
		if r0.metric == "" || r1.metric != fmt.Sprint(r1.traffic) {
			t.Errorf("N=%d: metric says %q (was %q), getStats %d", N, r1.metric, r0.metric, r1.traffic)
		}
	}
}
