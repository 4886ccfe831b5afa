package daemon

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pineconed/pineconed/internal/testhelp"
)

// trafficIn is what b exposes about Traffic frames received: getStats'
// per-type count, the sum of getPeers' frames_in over its peers (all
// types) and the Prometheus series.
func trafficIn(t *testing.T, ctx context.Context, n *testNode) (stats, peers uint64, metric string) {
	t.Helper()
	st, err := n.client.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := n.client.Peers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		peers += p.FramesIn
	}
	for _, l := range strings.Split(scrapeMetrics(t, n.d), "\n") {
		if strings.HasPrefix(l, `pineconed_frames_total{direction="in",type="traffic"} `) {
			metric = strings.Fields(l)[1]
		}
	}
	return st.Frames["traffic"].FramesIn, peers, metric
}

// N Traffic frames sent from a to its peer b move each of b's exposed
// counters by N, not by a multiple of N: each frame is counted once in the
// overlay and the daemon only reads those counts.
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
		s, _, _ := trafficIn(t, ctx, b)
		return s > 0
	})
	// Let the last probes land. Only Traffic is compared exactly: nothing
	// else sends Traffic between two idle daemons.
	time.Sleep(300 * time.Millisecond)
	for _, N := range []uint64{1, 10, 50} {
		s0, p0, m0 := trafficIn(t, ctx, b)
		for range N {
			send()
		}
		testhelp.WaitFor(t, "N frames at b", 10*time.Second, func() bool {
			s, _, _ := trafficIn(t, ctx, b)
			return s >= s0+N
		})
		time.Sleep(100 * time.Millisecond)
		s1, p1, m1 := trafficIn(t, ctx, b)
		if s1-s0 != N {
			t.Errorf("N=%d: getStats traffic in moved by %d", N, s1-s0)
		}
		// getPeers counts every type; nothing but the N frames and
		// perhaps a keepalive or two arrived meanwhile.
		if d := p1 - p0; d < N || d > N+4 {
			t.Errorf("N=%d: getPeers frames_in moved by %d", N, d)
		}
		if m0 == "" || m1 != fmt.Sprint(s1) {
			t.Errorf("N=%d: metric says %q (was %q), getStats %d", N, m1, m0, s1)
		}
	}
}
