package peers

import (
	"bytes"
	"log/slog"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/overlay"
)

// heapLive is the heap the collector finds live, after two collections so
// that sync.Pool contents (kept for one collection) are gone too.
func heapLive() uint64 {
	runtime.GC()
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// A peering made and dropped over and over, with traffic across it, leaves
// nothing behind on three real nodes and their managers: the live heap
// after the churn is where it was before, give or take a small allowance
// per round (a dropped peering that kept its link, queues or router port
// holds several KiB of buffers a round). This is the in-process half of the
// soak's resource check (tests/netns TestSoak): it tells live state that
// grows with churn apart from memory the runtime merely keeps.
func TestChurnLeavesNoLiveHeap(t *testing.T) {
	testhelp.CheckNoLeak(t)
	const warmUp, rounds, perRound = 50, 100, 1 << 10
	// A discarding logger: a test log buffer would grow with every round.
	log := slog.New(slog.DiscardHandler)
	nodeA := overlay.New(privA, overlay.Config{Logger: log})
	nodeB := overlay.New(privB, overlay.Config{Logger: log})
	nodeC := overlay.New(privC, overlay.Config{Logger: log})
	for _, n := range []*overlay.Node{nodeA, nodeB, nodeC} {
		t.Cleanup(func() { n.Close() })
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case d := <-n.Deliveries():
					d.Release()
				case <-stop:
					return
				}
			}
		}()
		t.Cleanup(func() { close(stop); <-done })
	}
	ma := startManager(t, Config{PrivateKey: privA, Listen: mkURIs("tcp://127.0.0.1:0"), Logger: log}, nodeA)
	uri := ma.ListenAddrs()[0].String() + "?key=" + keyA.String()
	startManager(t, Config{PrivateKey: privC, Logger: log, Static: mkURIs(uri)}, nodeC)
	mb := startManager(t, Config{PrivateKey: privB, Logger: log}, nodeB)
	testhelp.WaitFor(t, "C peered with A", 10*time.Second, func() bool { return len(nodeA.Peerings()) == 1 })
	payload := make([]byte, 1000)
	round := func() {
		t.Helper()
		if err := mb.Add(mkURI(uri), overlay.OriginAdmin); err != nil {
			t.Fatal(err)
		}
		testhelp.WaitFor(t, "B peered with A", 10*time.Second, func() bool { return len(nodeB.Peerings()) == 1 })
		for range 10 {
			if err := nodeB.SendBuffer(nodeC.PublicKey(), bytes.Clone(payload), 0); err != nil {
				t.Fatal(err)
			}
			if err := nodeC.SendBuffer(nodeB.PublicKey(), bytes.Clone(payload[:100]), 0); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Millisecond)
		}
		if err := mb.Remove(mkURI(uri)); err != nil {
			t.Fatal(err)
		}
		testhelp.WaitFor(t, "B's peering gone", 10*time.Second, func() bool { return len(nodeB.Peerings()) == 0 && len(nodeA.Peerings()) == 1 })
	}
	for range warmUp {
		round()
	}
	before, goroutines := heapLive(), runtime.NumGoroutine()
	for range rounds {
		round()
	}
	after := heapLive()
	t.Logf("live heap %d → %d bytes over %d peerings made and dropped (%+.0f B a round); goroutines %d → %d",
		before, after, rounds, (float64(after)-float64(before))/rounds, goroutines, runtime.NumGoroutine())
	if after > before+rounds*perRound {
		t.Errorf("live heap grew by %d bytes over %d rounds, more than %d a round", after-before, rounds, perRound)
	}
}
