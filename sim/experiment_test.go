package sim

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/pineconed/pineconed/overlay/router"
	"github.com/pineconed/pineconed/overlay/wire"
)

// star is a hub (node 0) with n leaves.
func star(n int) Graph {
	g := Graph{Names: numbered(n + 1)}
	for i := 1; i <= n; i++ {
		g.Edges = append(g.Edges, [2]int{0, i})
	}
	return g
}

func TestDistances(t *testing.T) {
	net := New(Config{})
	nodes, err := net.Build(Grid(5, 4), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	// On a grid the shortest path is the Manhattan distance.
	d := net.Distances(nodes[0])
	for y := 0; y < 4; y++ {
		for x := 0; x < 5; x++ {
			if got := d[y*5+x]; got != x+y {
				t.Errorf("grid (0,0)→(%d,%d): %d hops, want %d", x, y, got, x+y)
			}
		}
	}
	ring := New(Config{})
	rn, err := ring.Build(Ring(10), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []int{0, 1, 2, 3, 4, 5, 4, 3, 2, 1}
	if got := ring.Distances(rn[0]); !slices.Equal(got, want) {
		t.Errorf("ring of 10: %v, want %v", got, want)
	}
	// Cutting the ring twice leaves 0–1–2 apart from the rest.
	ring.Disconnect(ring.LinkBetween(rn[2], rn[3]))
	ring.Disconnect(ring.LinkBetween(rn[9], rn[0]))
	want = []int{0, 1, 2, -1, -1, -1, -1, -1, -1, -1}
	if got := ring.Distances(rn[0]); !slices.Equal(got, want) {
		t.Errorf("cut ring: %v, want %v", got, want)
	}
	ring.RemoveNode(rn[1])
	if got := ring.Distances(rn[0]); got[1] != -1 || got[2] != -1 {
		t.Errorf("after removing node 1: %v", got)
	}
}

func TestCapDegree(t *testing.T) {
	// A hub with 6 leaves and links to 3 other hubs that each have 2
	// leaves: capped at 6, the hub keeps its leaves (the links to the
	// lowest-degree neighbours) and drops the hub–hub links.
	g := star(6)
	for h := 0; h < 3; h++ {
		id := len(g.Names)
		g.Names = append(g.Names, fmt.Sprint("hub", h), fmt.Sprint("a", h), fmt.Sprint("b", h))
		g.Edges = append(g.Edges, [2]int{0, id}, [2]int{id, id + 1}, [2]int{id, id + 2})
	}
	capped, dropped := g.CapDegree(6)
	if dropped != 3 || len(capped.Edges) != len(g.Edges)-3 {
		t.Fatalf("dropped %d, kept %d of %d", dropped, len(capped.Edges), len(g.Edges))
	}
	deg := capped.Degrees()
	if deg[0] != 6 {
		t.Errorf("hub keeps %d links", deg[0])
	}
	for i := 1; i <= 6; i++ {
		if deg[i] != 1 {
			t.Errorf("leaf %d lost its link", i)
		}
	}
	if same, n := g.CapDegree(253); n != 0 || len(same.Edges) != len(g.Edges) {
		t.Errorf("a cap above every degree dropped %d links", n)
	}
}

// converged builds g and runs it until every request and reply of all
// pairs gets through.
func converged(t *testing.T, g Graph) (*Network, []*Node) {
	t.Helper()
	return convergedWith(t, g, Config{})
}

func convergedWith(t *testing.T, g Graph, cfg Config) (*Network, []*Node) {
	t.Helper()
	net := New(cfg)
	nodes, err := net.Build(g, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	waitTree(t, net, time.Minute)
	probeUntilOK(t, net, net.AllPairs, 2*time.Minute)
	return net, nodes
}

// TestHopsOnALine: on a line there is one path, so the first packet (SNEK)
// and the reply (tree) between the ends cross exactly n-1 links: stretch 1.
func TestHopsOnALine(t *testing.T) {
	const n = 12
	net, nodes := converged(t, Line(n))
	a, z := nodes[0], nodes[n-1]
	for _, p := range []Pair{{a, z}, {z, a}, {nodes[3], nodes[8]}} {
		net.ForgetCoords()
		res := net.Probe([]Pair{p}, probeWindow)
		want := net.Distances(p.From)[p.To.ID]
		if res.RequestHops[0] != want || res.ReplyHops[0] != want {
			t.Errorf("%s→%s: request %d hops, reply %d, want %d both", p.From, p.To, res.RequestHops[0], res.ReplyHops[0], want)
		}
	}
	if d := net.Distances(a)[z.ID]; d != n-1 {
		t.Errorf("line ends %d hops apart", d)
	}
	// A node sending to itself crosses no link.
	net.Send(a, a.Key, []byte("self"))
	if d := net.TakeDeliveries(); len(d) != 1 || d[0].Hops != 0 {
		t.Errorf("send to self: %+v", d)
	}
}

// TestHopsOnAStar: every path in a star is at most 2 hops, and a leaf
// reaches the hub in 1; the hop counts must say so for both kinds of
// routing.
func TestHopsOnAStar(t *testing.T) {
	net, nodes := converged(t, star(10))
	net.ForgetCoords()
	pairs := net.AllPairs()
	res := net.Probe(pairs, probeWindow)
	if !res.OK() {
		t.Fatal(res)
	}
	for i, p := range pairs {
		want := 2
		if p.From == nodes[0] || p.To == nodes[0] {
			want = 1
		}
		if res.RequestHops[i] != want || res.ReplyHops[i] != want {
			t.Errorf("%s→%s: request %d hops, reply %d, want %d", p.From, p.To, res.RequestHops[i], res.ReplyHops[i], want)
		}
	}
}

// TestControlTrafficOfTwoNodes checks the accounting against the
// protocol's timers (docs/protocol.md §4.3, §5.1, §7) over 60 s of a converged pair, with
// the reference's timers: the non-root bootstraps every 5 s (12 frames) and
// the root never; each node floods its wakeup once a minute to its one
// peer, which does not send it back; the tree is quiet until the root's
// 30 min refresh. Keepalives are the link's and are not counted; traffic
// frames are counted apart.
func TestControlTrafficOfTwoNodes(t *testing.T) {
	net, nodes := convergedWith(t, Line(2), Config{Router: router.Options{ReferenceTimers: true}})
	net.RunFor(7*time.Second + 300*time.Millisecond)
	root, child := nodes[0], nodes[1]
	if !IsRoot(root) {
		root, child = child, root
	}
	before := map[*Node][numSentTypes]SentCount{root: root.sent, child: child.sent}
	net.RunFor(time.Minute)
	sent := func(n *Node, t wire.FrameType) SentCount {
		c := n.Sent(t)
		b := before[n][sentIndex(t)]
		return SentCount{c.Frames - b.Frames, c.Bytes - b.Bytes}
	}
	check := func(what string, n *Node, typ wire.FrameType, frames uint64) {
		t.Helper()
		c := sent(n, typ)
		if c.Frames != frames {
			t.Errorf("%s: %d %s frames in 60 s, want %d", what, c.Frames, typ, frames)
		}
		// Every frame of these types has one size here: the bytes must be
		// a whole number of frames of the encoded size.
		if frames > 0 && (c.Bytes%c.Frames != 0 || c.Bytes/c.Frames < 10) {
			t.Errorf("%s: %d bytes for %d %s frames", what, c.Bytes, c.Frames, typ)
		}
	}
	check("child", child, wire.TypeBootstrap, 12)
	check("root", root, wire.TypeBootstrap, 0)
	check("child", child, wire.TypeWakeupBroadcast, 1)
	check("root", root, wire.TypeWakeupBroadcast, 1)
	check("child", child, wire.TypeTreeAnnouncement, 0)
	check("root", root, wire.TypeTreeAnnouncement, 0)
	check("child", child, wire.TypeKeepalive, 0)
	// The bootstrap frame is the router's encoding: 10-byte header,
	// destination key, watermark, payload (docs/protocol.md §3.5).
	if got := sent(child, wire.TypeBootstrap).Bytes / 12; got < 10+32+32 {
		t.Errorf("bootstrap of %d bytes", got)
	}
}

// smallExperiment runs the standard experiment on g with short phases.
func smallExperiment(t *testing.T, g Graph, signatures bool) *Result {
	t.Helper()
	res, err := Experiment{Graph: g, Seed: 3, Pairs: 300, Signatures: signatures,
		Window: 20 * time.Second, Recovery: 20 * time.Second}.Run()
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestExperimentOnARing: a ring survives losing a link (it becomes a
// line, and the link was on many shortest paths and tree paths), so
// delivery must return to 100 %; removing a node of that line then cuts
// off the pairs on the short side, and the rest must deliver again.
func TestExperimentOnARing(t *testing.T) {
	res := smallExperiment(t, Ring(16), false)
	t.Logf("ring16: converged %.0f s, stretch SNEK %+v tree %+v; %s: 100 %% after %.1f s; %s: after %.1f s",
		res.ConvergeSeconds, res.StretchSNEK, res.StretchTree, res.LinkFailure.What, res.LinkFailure.Seconds100,
		res.NodeFailure.What, res.NodeFailure.Seconds100)
	if res.ConvergeSeconds < 0 || res.Largest != 16 || res.Diameter != 8 {
		t.Errorf("converged %v s, largest %d, longest shortest path %d", res.ConvergeSeconds, res.Largest, res.Diameter)
	}
	for _, rec := range []Recovery{res.LinkFailure, res.NodeFailure} {
		last := rec.Series[len(rec.Series)-1]
		if last.Ratio != 1 || rec.Seconds100 < 0 || rec.Seconds99 < 0 || rec.TreeSeconds < 0 || rec.CutOff > 0 && rec.What[:4] == "link" {
			t.Errorf("%s: %+v", rec.What, rec)
		}
	}
	checkExperiment(t, res)
}

// TestBootstrapsSettled: a line's nodes bootstrap fast while the tree
// forms and for the fast window after, then at the reference's interval;
// a cut opens the window again for the nodes whose place changed. With
// the reference's timers no window ever opens.
func TestBootstrapsSettled(t *testing.T) {
	net := New(Config{})
	nodes, err := net.Build(Line(6), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	waitTree(t, net, 10*time.Second)
	if net.BootstrapsSettled() {
		t.Fatal("settled as soon as the tree converged")
	}
	net.RunFor(router.DefaultFastBootstrapWindow + 5*time.Second)
	if !net.BootstrapsSettled() {
		t.Fatalf("not settled %v after the tree converged", router.DefaultFastBootstrapWindow+5*time.Second)
	}
	// Cutting the line in the middle gives one half a new root: its nodes
	// are each their own root for a moment (roots do not bootstrap), then
	// follow the half's highest key with their window open.
	net.Disconnect(net.LinkBetween(nodes[2], nodes[3]))
	cut := net.Elapsed()
	for net.BootstrapsSettled() {
		if net.Elapsed()-cut > 3*time.Second {
			t.Fatal("still settled 3 s after a cut")
		}
		net.RunFor(100 * time.Millisecond)
	}
	net.RunFor(router.DefaultFastBootstrapWindow + 5*time.Second)
	if !net.BootstrapsSettled() {
		t.Error("not settled again after the cut")
	}

	ref, _ := convergedWith(t, Line(6), Config{Router: router.Options{ReferenceTimers: true}})
	if !ref.BootstrapsSettled() {
		t.Error("reference timers: fast bootstraps")
	}
}

// checkExperiment holds for any topology.
func checkExperiment(t *testing.T, res *Result) {
	t.Helper()
	// The window starts after convergence, once the fast bootstraps are
	// over, and the cold start before it sent control traffic.
	if res.SettleTimedOut || res.SettledSeconds < res.ConvergeSeconds || res.ColdStartControl.FramesMean <= 0 {
		t.Errorf("steady state from %.1f s (timed out %v), converged %.1f s, cold-start control %+v",
			res.SettledSeconds, res.SettleTimedOut, res.ConvergeSeconds, res.ColdStartControl)
	}
	for _, s := range [][]float64{res.StretchSNEKSamples, res.StretchTreeSamples} {
		if len(s) == 0 || s[0] < 1 {
			t.Errorf("stretch below 1 or no samples: %v", s[:min(len(s), 5)])
		}
	}
	if res.SteadyRoundTrips < 0.99 || res.SteadyRoundTrips > 1 {
		t.Errorf("steady-state delivery %.4f", res.SteadyRoundTrips)
	}
	if res.ControlTotal.FramesMean <= 0 || res.Control["bootstrap"].FramesMean <= 0 || res.SNEKEntries.Max < 1 {
		t.Errorf("control %+v, SNEK entries %+v", res.Control, res.SNEKEntries)
	}
	if p := res.BootstrapPath; p.Hops < 1 || math.Abs(p.Up+p.Down+p.Across-1) > 1e-9 || p.SuccessorSamples == 0 || p.SuccessorShortest < 1 {
		t.Errorf("bootstrap path %+v", p)
	}
	// Each non-root node bootstraps every 5 s; the mean over all nodes
	// forwards more than that (paths are longer than one hop) but a node
	// originates exactly 0.2 per second.
	if b := res.Control["bootstrap"].FramesMean; b < 0.2*float64(res.Nodes-1)/float64(res.Nodes)*0.9 {
		t.Errorf("bootstraps %.3f per node per second, below one per 5 s", b)
	}
}

// TestExperimentScaleFree runs the whole experiment on a small scale-free
// graph, with and without signatures: the same routing decisions, so the
// figures that do not depend on timing of CPU work must match exactly.
func TestExperimentScaleFree(t *testing.T) {
	g := ScaleFree(120, 2, 9)
	fast := smallExperiment(t, g, false)
	checkExperiment(t, fast)
	if testing.Short() {
		return
	}
	real := smallExperiment(t, g, true)
	checkExperiment(t, real)
	if fast.ConvergeSeconds != real.ConvergeSeconds || fast.StretchSNEK != real.StretchSNEK ||
		fast.StretchTree != real.StretchTree || fast.SNEKEntries != real.SNEKEntries {
		t.Errorf("signatures change the figures:\nwithout %+v %+v %+v %+v\nwith    %+v %+v %+v %+v",
			fast.ConvergeSeconds, fast.StretchSNEK, fast.StretchTree, fast.SNEKEntries,
			real.ConvergeSeconds, real.StretchSNEK, real.StretchTree, real.SNEKEntries)
	}
	// Without signatures the 64-byte signature fields are zeros of the
	// same size, so the bytes match too.
	if fast.ControlTotal != real.ControlTotal {
		t.Errorf("control traffic differs: %+v vs %+v", fast.ControlTotal, real.ControlTotal)
	}
}

func TestSummarize(t *testing.T) {
	xs := make([]float64, 0, 200)
	for i := 200; i >= 1; i-- {
		xs = append(xs, float64(i))
	}
	s := Summarize(xs)
	if s.N != 200 || s.Mean != 100.5 || s.P50 != 100 || s.P99 != 198 || s.Max != 200 {
		t.Errorf("%+v", s)
	}
	if (Summarize(nil) != Summary{}) {
		t.Error("empty sample")
	}
}
