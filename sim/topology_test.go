package sim

import (
	"testing"
	"time"
)

// TestTopologiesConverge builds each topology at time zero, waits for the
// tree to converge, then probes until every request (first packet, by
// SNEK) and every reply (by tree, the requester's coordinates now cached)
// arrives, and reports the virtual times.
func TestTopologiesConverge(t *testing.T) {
	cases := []struct {
		name  string
		graph Graph
		pairs int // 0 = all ordered pairs
	}{
		{"line20", Line(20), 0},
		{"ring30", Ring(30), 0},
		{"grid8x8", Grid(8, 8), 0},
		{"scalefree500", ScaleFree(500, 2, 42), 3000},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if testing.Short() && c.graph.N() > 100 {
				t.Skip("large topology skipped in -short mode")
			}
			// Every node signs and verifies as real nodes do, the large
			// graph included (about 10 s of the suite's CPU; the subtests
			// run in parallel). The simulator's fast mode without
			// signatures makes the same routing decisions
			// (TestExperimentScaleFree).
			t.Parallel()
			net := New(Config{})
			if _, err := net.Build(c.graph, 1, 0); err != nil {
				t.Fatal(err)
			}
			treeTime := waitTree(t, net, time.Minute)
			pairs := func() []Pair { return net.AllPairs() }
			if c.pairs > 0 {
				sample := samplePairs(net, c.pairs, 99)
				pairs = func() []Pair { return sample }
			}
			snekTime, res := probeUntilOK(t, net, pairs, time.Minute)
			t.Logf("%d nodes, %d links: tree converged after %v, 100%% delivery from %v after that (%v in all); %v",
				c.graph.N(), len(c.graph.Edges), treeTime, snekTime, treeTime+snekTime, res)
			st := net.Stats()
			t.Logf("network: %d events, %d frames, %d root changes", st.Events, st.Frames, st.RootChanges)
			if st.Disconnects != 0 || st.DecodeErrors != 0 {
				t.Errorf("%d disconnects (last: %v), %d decode errors", st.Disconnects, st.LastDisconnect, st.DecodeErrors)
			}
		})
	}
}
